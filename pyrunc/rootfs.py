"""The container's filesystem view: runc's prepareRootfs, pivot and finalizeRootfs.

Runs in the container init, inside its new mount namespace. Order:
propagation of "/", the rootfs bound onto itself, config mounts in order,
/dev, [prestart/createRuntime/createContainer hooks], readonlyPaths and
maskedPaths, pivot_root, then a read-only root.
"""

import posix
import stat

from . import cgroups, mounts, paths, procfs
from . import linux as L
from .errors import ContainerError
from .linux import SyscallError
from .spec import PROPAGATION
from . import hostpath


def _find_mountpoint(procfd, path):
    """The mount point (in this namespace) holding `path`, from mountinfo."""
    info = cgroups.parse_mountinfo(procfs.read(procfd, f"{posix.getpid()}/mountinfo"))
    best = "/"
    for entry in info:
        mnt = entry[3]
        if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
            best = mnt
    return best


def prepare(spec, procfd, log):
    """Everything before pivot_root. Returns an fd of the new root mount.

    Without a mount namespace of its own the container shares the runtime's:
    nothing about "/" may change there, so the root is just the rootfs
    directory (entered with chroot, see pivot()).
    """
    linux = spec.linux
    rootpath = spec.root.path
    if not linux.has("mount"):
        return paths.open_dir(rootpath)
    prop = PROPAGATION.get(linux.rootfs_propagation or "", L.MS_SLAVE | L.MS_REC)
    if prop & L.MS_UNBINDABLE:
        # an unbindable tree cannot be cloned into the new root: keep the host
        # view rslave now, the new root gets "unbindable" after pivot_root (finalize)
        prop = L.MS_SLAVE | L.MS_REC
    with log.step("make / " + (linux.rootfs_propagation or "rslave")):
        L.mount(None, "/", None, prop)
    if prop & L.MS_SHARED:
        # pivot_root refuses a new root whose parent mount is shared
        parent = _find_mountpoint(procfd, rootpath)
        L.mount(None, parent, None, L.MS_PRIVATE)
    with log.step("bind rootfs"):
        hostfd = paths.open_dir(rootpath)
        try:
            # the clone's fd stays open: once attached it is the new root
            rootfd = mounts.clone_tree(hostfd, True, "bind rootfs")
            mounts.attach(rootfd, hostfd, "bind rootfs")
        finally:
            posix.close(hostfd)
    return rootfd


def mount_all(spec, rootfd, procfd, bundle, log, prepared_fds=None):
    """The config's mounts, in order. Returns the host paths of the mount points
    when the container shares the runtime's mount namespace (undone at delete)."""
    prepared_fds = prepared_fds or {}
    for i, m in enumerate(spec.mounts):
        if m.type == "cgroup":
            mount_cgroupfs(rootfd, m, procfd, spec.linux.has("cgroup"), log)
        else:
            mounts.mount_entry(rootfd, m, bundle, log, prepared_fds.get(i), spec.linux.mount_label)


# A container without a mount namespace of its own mounts into the runtime's:
# those mounts outlive the init and are undone by the parent (rollback) and
# by delete. Only mounts that were not there before create are touched.

def mounts_under(rootpath):
    """[(mount_id, mountpoint)] of this namespace's mounts strictly below rootpath, in mount order."""
    with open("/proc/self/mountinfo", "rb") as f:
        info = cgroups.parse_mountinfo(f.read())
    prefix = hostpath.realpath(rootpath).rstrip("/") + "/"
    return [(e[0], e[3]) for e in info if e[3].startswith(prefix)]


def unmount_new(rootpath, before_ids):
    """Detach the mounts below rootpath not in before_ids, newest first.

    Each is reached through the rootfs (RESOLVE_IN_ROOT) and unmounted through
    its fd, so a symlink the container planted in the path cannot send the
    unmount to a host mount.
    """
    before = set(before_ids)
    try:
        rootfd = paths.open_dir(rootpath)
    except OSError:
        return
    try:
        prefix = hostpath.realpath(rootpath).rstrip("/")
        for mid, mp in reversed(mounts_under(rootpath)):
            if mid in before:
                continue
            try:
                fd = paths.resolve(rootfd, mp[len(prefix):])
            except OSError:
                continue
            try:
                if _mount_id(fd) == mid:
                    L.umount2(f"/proc/self/fd/{fd}", L.MNT_DETACH)
            except OSError:
                pass  # already detached with a parent
            finally:
                posix.close(fd)
    finally:
        posix.close(rootfd)


def _mount_id(fd):
    with open(f"/proc/self/fdinfo/{fd}") as f:
        for line in f:
            if line.startswith("mnt_id:"):
                return int(line.split()[1])
    return None


def mount_cgroupfs(rootfd, m, procfd, cgroupns, log):
    """The container's view of the host cgroup hierarchies (runc's mountCgroupV1/V2).

    v1: a tmpfs with one mount per hierarchy — a fresh cgroup mount inside a
    cgroup namespace, else a bind of the init's own cgroup directory.
    v2: one cgroup2 mount (fresh with a cgroup namespace, else a bind).
    """
    what = f'mount cgroup to rootfs at "{m.destination}"'
    pid = posix.getpid()
    hs = cgroups.hierarchies(procfs.read(procfd, f"{pid}/mountinfo"))
    mine = cgroups.parse_proc_cgroup(procfs.read(procfd, f"{pid}/cgroup"))
    v1 = [h for h in hs if h.fstype == "cgroup"]
    try:
        with log.step(what):
            if not v1:
                v2 = [h for h in hs if h.fstype == "cgroup2"]
                if not v2:
                    raise ContainerError("no cgroup hierarchy is mounted on the host")
                _mount_hierarchy(rootfd, m.destination, v2[0], mine.get("", "/"), m, cgroupns, what)
                return
            destfd = paths.mkdir_all(rootfd, m.destination)
            try:
                mounts.attach_new(mounts.new_fs("tmpfs", "tmpfs", L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC,
                                                "mode=755", what), destfd, what)
            finally:
                posix.close(destfd)
            for h in v1:
                name = hostpath.basename(h.mountpoint)
                path = mine.get(h.key)
                if path is None:
                    continue
                _mount_hierarchy(rootfd, m.destination.rstrip("/") + "/" + name, h, path, m, cgroupns, what)
                # "cpu,cpuacct" mounted as one: the familiar names as symlinks
                if "," in name:
                    parent = paths.resolve(rootfd, m.destination)
                    try:
                        for c in name.split(","):
                            try:
                                posix.symlink(name, c, dir_fd=parent)
                            except FileExistsError:
                                pass
                    finally:
                        posix.close(parent)
            if m.flags & L.MS_RDONLY:
                fd = paths.resolve(rootfd, m.destination)
                try:
                    L.mount_setattr(fd, False, L.MOUNT_ATTR_RDONLY, what=what)
                finally:
                    posix.close(fd)
    except SyscallError as e:
        raise ContainerError(f'error mounting "cgroup" to rootfs at "{m.destination}": {e}') from None


def _mount_hierarchy(rootfd, dest, h, cgpath, m, cgroupns, what):
    destfd = paths.mkdir_all(rootfd, dest)
    try:
        if cgroupns:
            data = ",".join(h.controllers) if h.fstype == "cgroup" else ""
            mfd = mounts.new_fs(h.fstype, h.fstype, m.flags & ~L.MS_BIND, data, what)
        else:
            # the init's cgroup, relative to what this mount shows
            rel = cgpath
            if h.root != "/" and (rel == h.root or rel.startswith(h.root.rstrip("/") + "/")):
                rel = rel[len(h.root.rstrip("/")):]
            src = h.mountpoint.rstrip("/") + "/" + rel.lstrip("/")
            hostfd = paths.open_dir(src)
            try:
                mfd = mounts.clone_tree(hostfd, False, what)
            finally:
                posix.close(hostfd)
            try:
                mounts.set_bind_flags(mfd, m.flags | L.MS_BIND, m.clear_flags, what)
            except OSError:
                posix.close(mfd)
                raise
        mounts.attach_new(mfd, destfd, what)
    finally:
        posix.close(destfd)


def _is_null(fd):
    st = posix.fstat(fd)
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == posix.makedev(1, 3)


def open_dev_null(rootfd):
    """An O_PATH fd of a verified 1:3 character device to mask files with.

    The container's own /dev/null (made by us on its /dev tmpfs) when it is
    one, so masks look like runc's from inside; the host's otherwise. It is
    resolved without following any symlink and checked through the very fd
    that is then cloned (CVE-2025-31133: a /dev/null swapped for a symlink
    or another node must never be what a mask exposes).
    """
    try:
        fd = L.openat2(rootfd, "dev/null", posix.O_PATH | posix.O_NOFOLLOW, 0,
                       L.RESOLVE_IN_ROOT | L.RESOLVE_NO_SYMLINKS)
        if _is_null(fd):
            return fd
        posix.close(fd)
    except SyscallError:
        pass
    fd = posix.open("/dev/null", posix.O_PATH | posix.O_CLOEXEC)
    if not _is_null(fd):
        posix.close(fd)
        raise ContainerError("/dev/null is not the null device")
    return fd


def pivot(rootfd, no_pivot, log, shared_mount_ns=False):
    posix.fchdir(rootfd)
    if shared_mount_ns:
        with log.step("chroot (no mount namespace)"):
            posix.chroot(".")
            posix.chdir("/")
        return
    if no_pivot:
        with log.step("move rootfs to / (no pivot)"):
            L.mount(".", "/", None, L.MS_MOVE)
            posix.chroot(".")
            posix.chdir("/")
        return
    with log.step("pivot_root"):
        oldroot = posix.open("/", posix.O_DIRECTORY | posix.O_RDONLY | posix.O_CLOEXEC)
        try:
            L.pivot_root(".", ".")
            # the old root is stacked under the new one; detach it without
            # letting the unmount propagate to the host
            posix.fchdir(oldroot)
            L.mount(None, ".", None, L.MS_SLAVE | L.MS_REC)
            L.umount2(".", L.MNT_DETACH)
        finally:
            posix.close(oldroot)
        posix.chdir("/")


def restrict_paths(spec, rootfd, log):
    """readonlyPaths then maskedPaths, through rootfd, before pivot_root.

    Done before pivot_root, while the host's /dev/null is still reachable as
    a fallback: masks are clones of one verified 1:3 node (CVE-2025-31133).
    """
    linux = spec.linux
    for p in linux.readonly_paths:
        with log.step(f"readonly path {p}"):
            _readonly_path(rootfd, p)
    if not linux.masked_paths:
        return
    nullfd = open_dev_null(rootfd)
    try:
        for p in linux.masked_paths:
            with log.step(f"masked path {p}"):
                _mask_path(rootfd, p, nullfd)
    finally:
        posix.close(nullfd)


def finalize(spec, rootfd, log):
    """After pivot_root: a read-only root, the root's configured propagation."""
    linux = spec.linux
    if spec.root.readonly:
        with log.step("read-only rootfs"):
            L.mount_setattr(rootfd, False, L.MOUNT_ATTR_RDONLY, what="remount / read-only")
    if linux.rootfs_propagation:
        prop = PROPAGATION[linux.rootfs_propagation]
        L.mount_setattr(rootfd, bool(prop & L.MS_REC), propagation=prop & ~L.MS_REC,
                        what=f"make / {linux.rootfs_propagation}")


def _open_existing(rootfd, p):
    try:
        return paths.resolve(rootfd, p)
    except SyscallError as e:
        if e.errno == 2:
            return None
        raise


def _readonly_path(rootfd, p):
    fd = _open_existing(rootfd, p)
    if fd is None:
        return
    try:
        mounts.bind_fd(fd, fd, f"make {p} read-only", recursive=True, readonly=True)
    finally:
        posix.close(fd)


def _mask_path(rootfd, p, nullfd):
    fd = _open_existing(rootfd, p)
    if fd is None:
        return
    try:
        if stat.S_ISDIR(posix.fstat(fd).st_mode):
            mounts.attach_new(mounts.new_fs("tmpfs", "tmpfs", L.MS_RDONLY, "", f"mask {p}"), fd, f"mask {p}")
        else:
            mounts.bind_fd(nullfd, fd, f"mask {p}")
    finally:
        posix.close(fd)
