"""Device nodes in the container's /dev: runc's defaults plus linux.devices.

Outside a user namespace nodes are made with mknodat on an fd of their
parent directory (resolved inside the rootfs). In a user namespace mknod
is not allowed, so, as runc does, the host's node is bind-mounted over an
empty file instead.
"""

import posix
import stat

from . import mounts, paths
from .errors import ContainerError
from .linux import SyscallError
from .spec import Device
from . import hostpath

DEFAULT_DEVICES = tuple(
    Device(path=p, type="c", major=ma, minor=mi, file_mode=0o666, uid=0, gid=0)
    for p, ma, mi in (("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7),
                      ("/dev/tty", 5, 0), ("/dev/urandom", 1, 9), ("/dev/random", 1, 8)))

DEFAULT_SYMLINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
                    ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"))

_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}


def needs_setup_dev(spec):
    """runc: /dev is populated unless the config bind-mounts something over it."""
    return not any(m.destination.rstrip("/") == "/dev" and m.is_bind for m in spec.mounts)


def create_device(rootfd, dev, bind, log):
    if not dev.path.startswith("/dev/"):
        raise ContainerError(f"device path {dev.path!r} must be under /dev")
    parent, name = paths.parent_and_name(rootfd, dev.path)
    try:
        mode = (dev.file_mode if dev.file_mode is not None else 0o666) & 0o7777
        if bind:
            _bind_host_node(rootfd, dev, log)
            return
        kind = _TYPES[dev.type]
        rdev = posix.makedev(dev.major, dev.minor) if kind != stat.S_IFIFO else 0
        try:
            posix.mknod(name, mode | kind, rdev, dir_fd=parent)
        except FileExistsError:
            st = posix.stat(name, dir_fd=parent, follow_symlinks=False)
            if stat.S_IFMT(st.st_mode) == kind and st.st_rdev == rdev:
                pass
            elif stat.S_ISDIR(st.st_mode):
                raise ContainerError(f"cannot create device {dev.path}: a directory is in the way") from None
            else:
                posix.unlink(name, dir_fd=parent)
                posix.mknod(name, mode | kind, rdev, dir_fd=parent)
        # The mode is exact: setup_dev runs with umask 0. No chmod by name: it
        # follows symlinks, and a process sharing this rootfs can swap one in
        # (pointing at a host file, before pivot_root). chown never follows.
        posix.chown(name, dev.uid or 0, dev.gid or 0, dir_fd=parent, follow_symlinks=False)
    except OSError as e:
        raise ContainerError(f"create device {dev.path}: {SyscallError(e.errno, 'mknod').strerror}") from None
    finally:
        posix.close(parent)


def _bind_host_node(rootfd, dev, log):
    try:
        hostfd = posix.open(dev.path, posix.O_PATH | posix.O_CLOEXEC)
    except OSError as e:
        raise SyscallError(e.errno, f"open host device {dev.path}") from None
    try:
        st = posix.fstat(hostfd)
        if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
            raise ContainerError(f"host {dev.path} is not a device node")
        destfd = paths.mkfile(rootfd, dev.path, 0o000)
        try:
            mounts.bind_fd(hostfd, destfd, f"bind {dev.path}")
        finally:
            posix.close(destfd)
    finally:
        posix.close(hostfd)


def setup_dev(rootfd, devices, bind, log):
    """Default nodes, the config's devices, the /dev symlinks and /dev/ptmx."""
    old = posix.umask(0)
    try:
        seen = set()
        for dev in tuple(devices) + DEFAULT_DEVICES:
            if dev.path in seen:
                continue
            seen.add(dev.path)
            with log.step(f"create device {dev.path}"):
                create_device(rootfd, dev, bind, log)
    finally:
        posix.umask(old)
    devfd = paths.mkdir_all(rootfd, "/dev")
    try:
        links = DEFAULT_SYMLINKS
        if hostpath.exists("/proc/kcore"):
            links = links + (("/proc/kcore", "/dev/core"),)
        for target, link in links:
            try:
                posix.symlink(target, link[5:], dir_fd=devfd)
            except FileExistsError:
                pass
        # /dev/ptmx must be the container's own devpts instance
        try:
            posix.unlink("ptmx", dir_fd=devfd)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            raise ContainerError("/dev/ptmx is a directory") from None
        posix.symlink("pts/ptmx", "ptmx", dir_fd=devfd)
        for d in ("pts", "shm"):
            try:
                posix.mkdir(d, 0o755, dir_fd=devfd)
            except FileExistsError:
                pass
    finally:
        posix.close(devfd)
