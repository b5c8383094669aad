"""The one kernel-facing layer: every syscall that `os` does not offer.

Nothing else in pyrunc calls ctypes, libc or a raw syscall number; modules
import the functions below. Failures raise `SyscallError` (an OSError) whose
text reads like Go's, e.g. ``mount_setattr /proc: operation not permitted``,
because clients such as podman grep runtime errors for errno strings.

Only x86_64 and aarch64 numbers are listed for the few syscalls that are
not in glibc 2.36; every syscall added after 5.1 has one number on every
architecture.
"""

import posix

import _prctl

from . import cabi as ctypes

_libc = ctypes.libc
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

_NR_ARCH = {
    "x86_64": {"pivot_root": 155, "keyctl": 250, "sched_setattr": 314, "ioprio_set": 251,
               "set_mempolicy": 238, "kcmp": 312, "ppoll": 271},
    "aarch64": {"pivot_root": 41, "keyctl": 219, "sched_setattr": 274, "ioprio_set": 30,
                "set_mempolicy": 237, "kcmp": 272, "ppoll": 73},
}.get(posix.uname().machine, {})
NR_pidfd_send_signal = 424
NR_open_tree = 428
NR_move_mount = 429
NR_fsopen = 430
NR_fsconfig = 431
NR_fsmount = 432
NR_pidfd_open = 434
NR_pidfd_getfd = 438
NR_close_range = 436
NR_openat2 = 437
NR_mount_setattr = 442
NR_clone3 = 435
_NR_BPF = {"x86_64": 321, "aarch64": 280}.get(posix.uname().machine)

# Namespaces (include/uapi/linux/sched.h)
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount(2) flags
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_SYNCHRONOUS = 0x10
MS_REMOUNT = 0x20
MS_MANDLOCK = 0x40
MS_DIRSYNC = 0x80
MS_NOSYMFOLLOW = 0x100
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_SILENT = 0x8000
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2

# new mount API (include/uapi/linux/mount.h)
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = posix.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40
FSOPEN_CLOEXEC = 1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 1
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR__ATIME = 0x70
MOUNT_ATTR_RELATIME = 0x0
MOUNT_ATTR_NOATIME = 0x10
MOUNT_ATTR_STRICTATIME = 0x20
MOUNT_ATTR_NODIRATIME = 0x80
MOUNT_ATTR_IDMAP = 0x100000
MOUNT_ATTR_NOSYMFOLLOW = 0x200000
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
AT_SYMLINK_NOFOLLOW = 0x100
AT_FDCWD = -100

# openat2 resolve flags
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

CLOSE_RANGE_CLOEXEC = 1 << 2

# prctl options python-prctl does not name
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

PROC_SUPER_MAGIC = 0x9FA0


class SyscallError(OSError):
    """An OSError whose str() is 'what: errno text' in Go's lowercase style."""

    def __init__(self, err, what):
        super().__init__(err, go_strerror(err))
        self.what = what

    def __str__(self):
        return f"{self.what}: {self.strerror}"


def go_strerror(err):
    """strerror as Go prints it ("no such file or directory")."""
    s = posix.strerror(err)
    return s[:1].lower() + s[1:]


def _check(ret, what):
    if ret < 0:
        raise SyscallError(ctypes.get_errno(), what)
    return ret


def _b(s):
    if s is None:
        return None
    return s if isinstance(s, bytes) else s.encode("utf-8", "surrogateescape")


# --- namespaces -------------------------------------------------------------

def unshare(flags):
    _check(_libc.unshare(ctypes.c_int(flags)), f"unshare {flags:#x}")


def setns(fd, nstype, what="setns"):
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), what)


CLONE_INTO_CGROUP = 0x200000000
_SIGCHLD = 17
_CLONE_ARGS_SIZE = 88  # struct clone_args up to .cgroup (CLONE_ARGS_SIZE_VER2)


def fork_into_cgroup(cgroup_fd):
    """posix.fork(), with the child born in the cgroup v2 directory `cgroup_fd`
    (clone3 CLONE_INTO_CGROUP, Linux 5.7). Returns the pid; 0 in the child.

    Moving a running process (a write to cgroup.procs) takes the kernel's
    global cgroup_threadgroup_rwsem for writing, and that waits for an RCU
    grace period: 7-20 ms on the reference VM, more than the rest of a
    `create`. A process born in its cgroup only takes it for reading.

    This is what os.fork() does with clone3 in place of glibc's fork(): the
    same interpreter hooks (so os.register_at_fork callbacks run), the
    syscall made with the GIL held. What glibc's fork() adds repairs state
    that other threads held (malloc and stdio locks, their stacks), so the
    caller must have no other thread (checked). glibc's cached thread id
    stays the parent's; nothing on the way to execve reads it. SyscallError
    if the kernel refuses (ENOSYS before 5.7, a cgroup that cannot take the
    process) or another thread runs: fork plainly and move the child.
    """
    global _clone3
    if len(posix.listdir("/proc/self/task")) != 1:
        raise SyscallError(22, "clone3 into cgroup: the runtime has more than one thread")  # EINVAL
    if _clone3 is None:
        _clone3 = (ctypes.python_function("syscall", ctypes.c_long),
                   ctypes.python_function("PyOS_BeforeFork", None),
                   ctypes.python_function("PyOS_AfterFork_Child", None),
                   ctypes.python_function("PyOS_AfterFork_Parent", None))
    syscall, before, after_child, after_parent = _clone3
    args = ctypes.array(ctypes.c_uint64, 11)()
    args[0] = CLONE_INTO_CGROUP
    args[4] = _SIGCHLD  # exit_signal
    args[10] = cgroup_fd
    import _signal
    # Until the interpreter's after-fork hook has run, no Python signal
    # handler may: the syscall returns into bytecode, where a handler could
    # raise in a child that still runs the parent's code (os.fork has no
    # such gap). Pending signals stay the parent's; the child starts without.
    mask = _signal.pthread_sigmask(_signal.SIG_BLOCK, _signal.valid_signals())
    try:
        before()
        pid = syscall(ctypes.c_long(NR_clone3), ctypes.byref(args), ctypes.c_ulong(_CLONE_ARGS_SIZE))
        if pid == 0:
            after_child()
            return 0
        err = ctypes.get_errno()
        after_parent()
    finally:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, mask)
    if pid < 0:
        raise SyscallError(err, "clone3 into cgroup")
    return pid


_clone3 = None


# --- mounts -----------------------------------------------------------------

def mount(source, target, fstype, flags, data=None):
    ret = _libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags), _b(data))
    _check(ret, f"mount {source or fstype} to {target}")


def umount2(target, flags):
    _check(_libc.umount2(_b(target), ctypes.c_int(flags)), f"umount {target}")


def pivot_root(new_root, put_old):
    nr = _NR_ARCH["pivot_root"]
    _check(_syscall(ctypes.c_long(nr), _b(new_root), _b(put_old)), "pivot_root")


def open_tree(dirfd, path, flags, what=None):
    ret = _syscall(ctypes.c_long(NR_open_tree), ctypes.c_int(dirfd), _b(path), ctypes.c_uint(flags))
    return _check(ret, what or f"open_tree {path}")


def move_mount(from_fd, to_fd, what):
    ret = _syscall(ctypes.c_long(NR_move_mount), ctypes.c_int(from_fd), b"",
                   ctypes.c_int(to_fd), b"",
                   ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH))
    _check(ret, what)


def fsopen(fstype):
    ret = _syscall(ctypes.c_long(NR_fsopen), _b(fstype), ctypes.c_uint(FSOPEN_CLOEXEC))
    return _check(ret, f"fsopen {fstype}")


def fsconfig(fd, cmd, key=None, value=None, what="fsconfig"):
    ret = _syscall(ctypes.c_long(NR_fsconfig), ctypes.c_int(fd), ctypes.c_uint(cmd),
                   _b(key), _b(value), ctypes.c_int(0))
    _check(ret, what)


def fsmount(fd, attr_flags, what="fsmount"):
    ret = _syscall(ctypes.c_long(NR_fsmount), ctypes.c_int(fd), ctypes.c_uint(FSMOUNT_CLOEXEC),
                   ctypes.c_uint(attr_flags))
    return _check(ret, what)


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(fd, recursive, attr_set=0, attr_clr=0, propagation=0, userns_fd=0,
                  what="mount_setattr"):
    attr = _MountAttr(attr_set, attr_clr, propagation, userns_fd)
    flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    ret = _syscall(ctypes.c_long(NR_mount_setattr), ctypes.c_int(fd), b"", ctypes.c_uint(flags),
                   ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)))
    _check(ret, what)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd, path, flags, mode, resolve):
    """openat2(2); returns the fd. Raises SyscallError (ENOSYS on old kernels)."""
    how = _OpenHow(flags | posix.O_CLOEXEC, mode, resolve)
    while True:
        ret = _syscall(ctypes.c_long(NR_openat2), ctypes.c_int(dirfd), _b(path),
                       ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
        if ret >= 0:
            return ret
        err = ctypes.get_errno()
        # EAGAIN: a rename or mount raced with RESOLVE_IN_ROOT; the kernel asks us to retry.
        if err != 11:
            raise SyscallError(err, f"openat2 {path}")


class _Statfs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("f_bsize", ctypes.c_long),
                ("f_blocks", ctypes.c_ulong), ("f_bfree", ctypes.c_ulong),
                ("f_bavail", ctypes.c_ulong), ("f_files", ctypes.c_ulong),
                ("f_ffree", ctypes.c_ulong), ("f_fsid", ctypes.array(ctypes.c_int, 2)),
                ("f_namelen", ctypes.c_long), ("f_frsize", ctypes.c_long),
                ("f_flags", ctypes.c_long), ("f_spare", ctypes.array(ctypes.c_long, 4))]


def fstatfs(fd):
    """(f_type, f_flags) of the filesystem behind fd."""
    st = _Statfs()
    _check(_libc.fstatfs(ctypes.c_int(fd), ctypes.byref(st)), "fstatfs")
    return st.f_type, st.f_flags


RENAME_NOREPLACE = 1


def rename_noreplace(old, new):
    ret = _libc.renameat2(ctypes.c_int(AT_FDCWD), _b(old), ctypes.c_int(AT_FDCWD), _b(new),
                          ctypes.c_uint(RENAME_NOREPLACE))
    if ret < 0:
        err = ctypes.get_errno()
        if err == 17:
            raise FileExistsError(err, go_strerror(err), new)
        raise SyscallError(err, f"rename {old} to {new}")


# --- processes --------------------------------------------------------------

def pidfd_open(pid):
    ret = _syscall(ctypes.c_long(NR_pidfd_open), ctypes.c_int(pid), ctypes.c_uint(0))
    return _check(ret, f"pidfd_open {pid}")


def pidfd_getfd(pidfd, fd):
    """A copy, in this process, of another process's fd (pidfd_getfd(2), Linux 5.6)."""
    ret = _syscall(ctypes.c_long(NR_pidfd_getfd), ctypes.c_int(pidfd), ctypes.c_int(fd), ctypes.c_uint(0))
    return _check(ret, "pidfd_getfd")


def close_range_cloexec(first):
    """Mark every fd >= first close-on-exec: one syscall instead of a /proc walk."""
    ret = _syscall(ctypes.c_long(NR_close_range), ctypes.c_uint(first), ctypes.c_uint(0xFFFFFFFF),
                   ctypes.c_uint(CLOSE_RANGE_CLOEXEC))
    _check(ret, "close_range")


def prctl(option, arg):
    """prctl for the options python-prctl knows (PR_SET_*)."""
    try:
        return _prctl.prctl(option, arg)
    except OSError as e:
        raise SyscallError(e.errno, f"prctl {option}") from None


def prctl_raw(option, arg2=0, arg3=0, arg4=0, arg5=0):
    ret = _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                      ctypes.c_ulong(arg4), ctypes.c_ulong(arg5))
    return _check(ret, f"prctl {option}")


PR_SET_PDEATHSIG = _prctl.PR_SET_PDEATHSIG
PR_SET_DUMPABLE = _prctl.PR_SET_DUMPABLE
PR_SET_KEEPCAPS = _prctl.PR_SET_KEEPCAPS
PR_SET_NO_NEW_PRIVS = _prctl.PR_SET_NO_NEW_PRIVS
PR_SET_CHILD_SUBREAPER = _prctl.PR_SET_CHILD_SUBREAPER
PR_CAPBSET_DROP = _prctl.PR_CAPBSET_DROP
PR_CAPBSET_READ = _prctl.PR_CAPBSET_READ


def set_child_subreaper():
    prctl_raw(PR_SET_CHILD_SUBREAPER, 1)


def set_pdeathsig(sig):
    prctl_raw(PR_SET_PDEATHSIG, sig)


def set_dumpable(on):
    prctl_raw(PR_SET_DUMPABLE, 1 if on else 0)


def set_keepcaps(on):
    prctl_raw(PR_SET_KEEPCAPS, 1 if on else 0)


def set_no_new_privs():
    prctl_raw(PR_SET_NO_NEW_PRIVS, 1)


def capbset_read(cap):
    return _libc.prctl(ctypes.c_int(PR_CAPBSET_READ), ctypes.c_ulong(cap), 0, 0, 0) == 1


def capbset_drop(cap):
    prctl_raw(PR_CAPBSET_DROP, cap)


def ambient_clear():
    prctl_raw(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)


def ambient_raise(cap):
    prctl_raw(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capset(effective, permitted, inheritable):
    """Set the three 64-bit capability masks of the calling thread."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = ctypes.array(_CapData, 2)()
    for i in (0, 1):
        sh = 32 * i
        data[i].effective = (effective >> sh) & 0xFFFFFFFF
        data[i].permitted = (permitted >> sh) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> sh) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(hdr), data), "capset")


def capget(pid=0):
    """(effective, permitted, inheritable) 64-bit masks of a thread."""
    hdr = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = ctypes.array(_CapData, 2)()
    _check(_libc.capget(ctypes.byref(hdr), data), "capget")
    return tuple(getattr(data[0], f) | (getattr(data[1], f) << 32)
                 for f in ("effective", "permitted", "inheritable"))


def sethostname(name):
    b = _b(name)
    _check(_libc.sethostname(b, ctypes.c_size_t(len(b))), "sethostname")


def setdomainname(name):
    b = _b(name)
    _check(_libc.setdomainname(b, ctypes.c_size_t(len(b))), "setdomainname")


def personality(persona):
    ret = _libc.personality(ctypes.c_ulong(persona))
    _check(ret, "personality")


KEYCTL_JOIN_SESSION_KEYRING = 1
KEYCTL_SETPERM = 5
KEY_SPEC_SESSION_KEYRING = -3


def join_session_keyring(name):
    nr = _NR_ARCH["keyctl"]
    ret = _syscall(ctypes.c_long(nr), ctypes.c_int(KEYCTL_JOIN_SESSION_KEYRING), _b(name))
    return _check(ret, "join session keyring")


def keyctl_setperm(key, perm):
    nr = _NR_ARCH["keyctl"]
    _check(_syscall(ctypes.c_long(nr), ctypes.c_int(KEYCTL_SETPERM), ctypes.c_int(key),
                    ctypes.c_uint32(perm)), "keyctl setperm")


class _SchedAttr(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint32), ("sched_policy", ctypes.c_uint32),
                ("sched_flags", ctypes.c_uint64), ("sched_nice", ctypes.c_int32),
                ("sched_priority", ctypes.c_uint32), ("sched_runtime", ctypes.c_uint64),
                ("sched_deadline", ctypes.c_uint64), ("sched_period", ctypes.c_uint64)]


def sched_setattr(policy, flags, nice, priority, runtime, deadline, period):
    attr = _SchedAttr(ctypes.sizeof(_SchedAttr), policy, flags, nice, priority,
                      runtime, deadline, period)
    nr = _NR_ARCH["sched_setattr"]
    _check(_syscall(ctypes.c_long(nr), ctypes.c_int(0), ctypes.byref(attr), ctypes.c_uint(0)),
           "sched_setattr")


class _Rlimit(ctypes.Structure):
    _fields_ = [("cur", ctypes.c_ulong), ("max", ctypes.c_ulong)]


RLIM_INFINITY = (1 << 64) - 1


def setrlimit(resource, soft, hard):
    """prlimit(2) on ourselves (the `resource` module is a shared library to load)."""
    new = _Rlimit(soft, hard)
    _check(_libc.prlimit(ctypes.c_int(0), ctypes.c_int(resource), ctypes.byref(new), None),
           f"setrlimit {resource}")


def ioctl_int(fd, request):
    """An ioctl taking no argument and returning an int (NS_GET_NSTYPE and friends)."""
    return _check(_libc.ioctl(ctypes.c_int(fd), ctypes.c_ulong(request), None), f"ioctl {request:#x}")


def ioctl_int_arg(fd, request, value):
    """An ioctl taking an int by value (TIOCGPTPEER, TIOCSCTTY); returns the result."""
    return _check(_libc.ioctl(ctypes.c_int(fd), ctypes.c_ulong(request), ctypes.c_long(value)),
                  f"ioctl {request:#x}")


def ioctl_ptr_int(fd, request, value):
    """An ioctl taking a pointer to an int (TIOCSPTLCK)."""
    v = ctypes.c_int(value)
    return _check(_libc.ioctl(ctypes.c_int(fd), ctypes.c_ulong(request), ctypes.byref(v)),
                  f"ioctl {request:#x}")


class _Winsize(ctypes.Structure):
    _fields_ = [("rows", ctypes.c_ushort), ("cols", ctypes.c_ushort),
                ("xpixel", ctypes.c_ushort), ("ypixel", ctypes.c_ushort)]


def get_winsize(fd):
    ws = _Winsize()
    _check(_libc.ioctl(ctypes.c_int(fd), ctypes.c_ulong(0x5413), ctypes.byref(ws)), "TIOCGWINSZ")
    return ws.rows, ws.cols


def set_winsize(fd, rows, cols):
    ws = _Winsize(rows, cols, 0, 0)
    _check(_libc.ioctl(ctypes.c_int(fd), ctypes.c_ulong(0x5414), ctypes.byref(ws)), "TIOCSWINSZ")


class _PollFd(ctypes.Structure):
    _fields_ = [("fd", ctypes.c_int), ("events", ctypes.c_short), ("revents", ctypes.c_short)]


class _Timespec(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]


def wait_hangup(fd, timeout_ms):
    """Block until fd reports POLLERR/POLLHUP (for a pipe's write end: its
    last reader closed) or timeout_ms passed; True if it did. The raw ppoll
    syscall on every arch (libc's poll() is `poll` on some): a seccomp
    profile is asked about this one name (seccomp.RUNTIME_CALLS)."""
    nr = _NR_ARCH.get("ppoll")
    if nr is None:
        return False  # an arch without a number here: no wait rather than no exec
    pfd = _PollFd(fd, 0, 0)  # no events asked: only the ones poll always reports
    ts = _Timespec(timeout_ms // 1000, timeout_ms % 1000 * 1000000)
    n = _syscall(ctypes.c_long(nr), ctypes.byref(pfd), ctypes.c_ulong(1), ctypes.byref(ts), None, ctypes.c_ulong(8))
    return n > 0


class _IfReqFlags(ctypes.Structure):
    _fields_ = [("name", ctypes.array(ctypes.c_char, 16)), ("flags", ctypes.c_short),
                ("pad", ctypes.array(ctypes.c_char, 22))]


SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def link_up(name):
    """Set IFF_UP on an interface of our network namespace (ioctl on a datagram socket)."""
    fd = _check(_libc.socket(ctypes.c_int(2), ctypes.c_int(2 | posix.O_CLOEXEC), ctypes.c_int(0)),
                "socket")  # AF_INET, SOCK_DGRAM | SOCK_CLOEXEC
    try:
        req = _IfReqFlags()
        req.name = _b(name)
        _check(_libc.ioctl(ctypes.c_int(fd), ctypes.c_ulong(SIOCGIFFLAGS), ctypes.byref(req)),
               f"get flags of {name}")
        if not req.flags & IFF_UP:
            req.flags |= IFF_UP
            _check(_libc.ioctl(ctypes.c_int(fd), ctypes.c_ulong(SIOCSIFFLAGS), ctypes.byref(req)),
                   f"bring {name} up")
    finally:
        posix.close(fd)


IOPRIO_WHO_PROCESS = 1


def ioprio_set(klass, level):
    nr = _NR_ARCH["ioprio_set"]
    _check(_syscall(ctypes.c_long(nr), ctypes.c_int(IOPRIO_WHO_PROCESS), ctypes.c_int(0),
                    ctypes.c_int((klass << 13) | level)), "ioprio_set")


def set_mempolicy(mode, nodes):
    """mode includes the MPOL_F_* flags; nodes is an iterable of node numbers."""
    nodes = list(nodes)
    maxnode = (max(nodes) + 1) if nodes else 0
    words = (maxnode + 63) // 64 or 1
    mask = ctypes.array(ctypes.c_ulong, words)()
    for n in nodes:
        mask[n // 64] |= 1 << (n % 64)
    nr = _NR_ARCH["set_mempolicy"]
    arg = ctypes.byref(mask) if nodes else None
    # maxnode counts bits including one past the highest, as libnuma passes it
    _check(_syscall(ctypes.c_long(nr), ctypes.c_int(mode), arg, ctypes.c_ulong(maxnode + 1 if nodes else 0)),
           "set_mempolicy")


# --- bpf ----------------------------------------------------------------------

def bpf(cmd, attr, what="bpf"):
    """bpf(2) with `attr` a ctypes object (union bpf_attr member); returns the result.

    The attribute layouts live with their user (cgroups.ebpf); this is only
    the syscall.
    """
    ret = _syscall(ctypes.c_long(_NR_BPF), ctypes.c_int(cmd), ctypes.byref(attr),
                   ctypes.c_uint(ctypes.sizeof(attr)))
    return _check(ret, what)
