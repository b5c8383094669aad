"""A private procfs handle for every /proc read or write the runtime makes.

A /proc reached by path can be a container-controlled mount (a bind over
/proc/self/attr, a fake /proc/sys, ...: CVE-2019-16884, CVE-2025-52881).
Instead the runtime mounts a fresh procfs instance with fsopen/fsmount —
never attached anywhere, so nothing can be mounted over it — and opens
files beneath it with openat2(RESOLVE_BENEATH | RESOLVE_NO_XDEV |
RESOLVE_NO_MAGICLINKS). Where the new mount API is refused, /proc is used
after checking it is the root of a real procfs.

A procfs instance shows the PID namespace of the process that mounted it:
the container init makes its own handle once it is PID 1 of its namespace.
"""

import posix

from . import linux, state
from .linux import SyscallError

_BENEATH = linux.RESOLVE_BENEATH | linux.RESOLVE_NO_XDEV | linux.RESOLVE_NO_MAGICLINKS


def open_private():
    """fd of a detached procfs mount root (or of a verified /proc)."""
    try:
        fsfd = linux.fsopen("proc")
        try:
            linux.fsconfig(fsfd, linux.FSCONFIG_CMD_CREATE, what="create procfs")
            return linux.fsmount(fsfd, linux.MOUNT_ATTR_NOSUID | linux.MOUNT_ATTR_NODEV |
                                 linux.MOUNT_ATTR_NOEXEC, what="fsmount procfs")
        finally:
            posix.close(fsfd)
    except SyscallError as e:
        if e.errno not in (38, 1):  # ENOSYS, EPERM
            raise
    fd = posix.open("/proc", posix.O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC)
    ftype, _ = linux.fstatfs(fd)
    if ftype != linux.PROC_SUPER_MAGIC or posix.fstat(fd).st_ino != 1:
        posix.close(fd)
        raise SyscallError(22, "/proc is not the root of a procfs mount")
    return fd


def open_file(procfd, rel, flags, mode=0):
    """Open `rel` (e.g. "1/oom_score_adj", "sys/net/ipv4/ip_forward") beneath procfd."""
    return linux.openat2(procfd, rel, flags, mode, _BENEATH)


def write(procfd, rel, data):
    fd = open_file(procfd, rel, posix.O_WRONLY)
    try:
        posix.write(fd, data.encode() if isinstance(data, str) else data)
    except OSError as e:
        raise SyscallError(e.errno, f"write /proc/{rel}") from None
    finally:
        posix.close(fd)


def read(procfd, rel):
    fd = open_file(procfd, rel, posix.O_RDONLY)
    try:
        return state.read_all(fd)
    finally:
        posix.close(fd)


def open_ns(procfd, pid, name):
    """/proc/<pid>/ns/<name> of our private procfs (a magic link, followed on purpose)."""
    return posix.open(f"{pid}/ns/{name}", posix.O_RDONLY | posix.O_CLOEXEC, dir_fd=procfd)


def open_root(procfd, pid):
    """/proc/<pid>/root of our private procfs: that process's root directory, O_PATH."""
    return posix.open(f"{pid}/root", posix.O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC, dir_fd=procfd)


def reopen_fd(procfd, fd, flags):
    """Re-open one of our own fds (e.g. an O_PATH fifo) with new flags.

    Goes through the /proc/<pid>/fd magic link of a procfs the runtime
    mounted itself, so the link cannot be redirected.
    """
    return posix.open(f"{posix.getpid()}/fd/{fd}", flags | posix.O_CLOEXEC, dir_fd=procfd)
