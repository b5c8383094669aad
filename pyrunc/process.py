"""process.*: everything about the container process that is not a namespace or a mount.

Called by the container init, in runc's order: rlimits, personality,
scheduler, I/O priority, memory policy and the session keyring as root;
then the user switch with capabilities kept across it; then the final
capability sets and no_new_privs. Errors name the field.
"""

import posix

from . import capabilities, linux, procfs, signals
from .errors import ContainerError

RLIMITS = {
    "RLIMIT_AS": 9, "RLIMIT_CORE": 4, "RLIMIT_CPU": 0, "RLIMIT_DATA": 2, "RLIMIT_FSIZE": 1,
    "RLIMIT_LOCKS": 10, "RLIMIT_MEMLOCK": 8, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13,
    "RLIMIT_NOFILE": 7, "RLIMIT_NPROC": 6, "RLIMIT_RSS": 5, "RLIMIT_RTPRIO": 14,
    "RLIMIT_RTTIME": 15, "RLIMIT_SIGPENDING": 11, "RLIMIT_STACK": 3,
}
SCHED_POLICIES = {"SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3,
                  "SCHED_ISO": 4, "SCHED_IDLE": 5, "SCHED_DEADLINE": 6}
SCHED_FLAGS = {"SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02,
               "SCHED_FLAG_DL_OVERRUN": 0x04, "SCHED_FLAG_KEEP_POLICY": 0x08,
               "SCHED_FLAG_KEEP_PARAMS": 0x10, "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20,
               "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40}
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}
MPOL_MODES = {"MPOL_DEFAULT": 0, "MPOL_PREFERRED": 1, "MPOL_BIND": 2, "MPOL_INTERLEAVE": 3,
              "MPOL_LOCAL": 4, "MPOL_PREFERRED_MANY": 5, "MPOL_WEIGHTED_INTERLEAVE": 6}
MPOL_FLAGS = {"MPOL_F_NUMA_BALANCING": 1 << 13, "MPOL_F_RELATIVE_NODES": 1 << 14,
              "MPOL_F_STATIC_NODES": 1 << 15}
PERSONALITY = {"LINUX": 0x0000, "LINUX32": 0x0008}
_UNLIMITED = (1 << 64) - 1


def parse_cpus(s):
    """'0-3,7' -> {0,1,2,3,7} (cpuset list format)."""
    out = set()
    for part in s.split(","):
        part = part.strip()
        if not part:
            continue
        lo, dash, hi = part.partition("-")
        try:
            a = int(lo)
            b = int(hi) if dash else a
        except ValueError:
            raise ContainerError(f"invalid CPU list {s!r}") from None
        if a > b or a < 0:
            raise ContainerError(f"invalid CPU list {s!r}")
        out.update(range(a, b + 1))
    return out


def set_rlimits(rlimits):
    for r in rlimits:
        num = RLIMITS[r.type]
        try:
            linux.setrlimit(num, min(r.soft, _UNLIMITED), min(r.hard, _UNLIMITED))
        except OSError as e:
            raise ContainerError(f"error setting rlimit type {r.type}: {linux.go_strerror(e.errno)}") from None


def set_oom_score_adj(procfd, value):
    try:
        procfs.write(procfd, f"{posix.getpid()}/oom_score_adj", str(value))
    except OSError as e:
        raise ContainerError(f"set oom_score_adj to {value}: {linux.go_strerror(e.errno)}") from None


def set_personality(p):
    if not p:
        return
    dom = PERSONALITY[p["domain"]]
    for flag in p.get("flags") or ():
        # the spec names no flags yet; anything given is ours to refuse
        raise ContainerError(f"personality flag {flag!r} is not supported")
    try:
        linux.personality(dom)
    except OSError as e:
        raise ContainerError(f"personality: {e}") from None


def set_scheduler(s):
    if s is None:
        return
    flags = 0
    for f in s.flags:
        flags |= SCHED_FLAGS[f]
    try:
        linux.sched_setattr(SCHED_POLICIES[s.policy], flags, s.nice, s.priority, s.runtime,
                            s.deadline, s.period)
    except OSError as e:
        raise ContainerError(f"set scheduler {s.policy}: {e}") from None


def set_io_priority(p):
    if not p:
        return
    try:
        linux.ioprio_set(IOPRIO_CLASSES[p["class"]], p.get("priority", 0))
    except OSError as e:
        raise ContainerError(f"set I/O priority {p['class']}: {e}") from None


def set_memory_policy(mp):
    if not mp:
        return
    mode = MPOL_MODES[mp["mode"]]
    for f in mp.get("flags") or ():
        mode |= MPOL_FLAGS[f]
    nodes = parse_cpus(mp["nodes"]) if mp.get("nodes") else ()
    try:
        linux.set_mempolicy(mode, sorted(nodes))
    except OSError as e:
        raise ContainerError(f"set memory policy {mp['mode']}: {e}") from None


def set_cpu_affinity(cpus, which):
    if not cpus:
        return
    try:
        posix.sched_setaffinity(0, parse_cpus(cpus))
    except OSError as e:
        raise ContainerError(f"set {which} CPU affinity {cpus!r}: {linux.go_strerror(e.errno)}") from None


def join_session_keyring(cid):
    """A fresh session keyring named after the container (runc: keys.JoinSessionKeyring)."""
    try:
        key = linux.join_session_keyring(f"_ses.{cid}")
        # possessor: all; user: view/read/link/setattr — runc's 0x3f1f0000 | 0x00080000
        linux.keyctl_setperm(key, 0x3F1F0000 | 0x00080000 | 0x0000000B)
    except OSError as e:
        # ENOSYS: keyrings compiled out; EACCES/EDQUOT under restrictive hosts: like runc, warn-free skip
        if e.errno not in (38, 13, 122):
            raise ContainerError(f"could not create session key: {e}") from None


def fix_stdio_permissions(uid, gid):
    """runc's fixStdioPermissions: stdio belongs to the container user.

    Otherwise a non-root process cannot reopen its own stdout through
    /proc/self/fd/1 (`echo > /dev/stdout`) or its pty. /dev/null is shared
    and left alone.
    """
    null = posix.makedev(1, 3)
    for fd in (0, 1, 2):
        try:
            st = posix.fstat(fd)
        except OSError:
            continue
        if st.st_rdev == null or (st.st_uid == uid and st.st_gid == gid):
            continue
        try:
            posix.fchown(fd, uid, gid)
        except OSError as e:
            # a read-only file system or a file we may not own: as runc, not fatal
            if e.errno not in (1, 22, 30):
                raise ContainerError(f"fix permissions of fd {fd}: {linux.go_strerror(e.errno)}") from None


def switch_user(user, capsets, cwd_fd, bounding):
    """runc's finalizeNamespace: bounding set, setgroups/setgid/setuid, caps.

    `bounding` is the bounding set the process holds now (read beforehand:
    a seccomp filter may already be in place and forbid the read).
    """
    fix_stdio_permissions(user.uid, user.gid)
    capabilities.drop_bounding(capsets, bounding)
    linux.set_keepcaps(True)
    try:
        groups = list(user.additional_gids)
        try:
            posix.setgroups(groups)
        except PermissionError:
            # setgroups is denied in a user namespace with setgroups=deny
            if groups:
                raise ContainerError("cannot set additional groups: setgroups is denied") from None
        posix.setresgid(user.gid, user.gid, user.gid)
        posix.setresuid(user.uid, user.uid, user.uid)
    except OSError as e:
        raise ContainerError(f"cannot set uid/gid to {user.uid}/{user.gid}: {linux.go_strerror(e.errno)}") from None
    if cwd_fd is not None:
        posix.fchdir(cwd_fd)
    linux.set_keepcaps(False)
    try:
        capabilities.apply(capsets)
    except OSError as e:
        raise ContainerError(f"unable to apply capabilities: {e}") from None


def home_of(uid, rootfd):
    """HOME for a uid from the container's /etc/passwd, "/" if it has none."""
    from . import paths
    try:
        fd = paths.resolve(rootfd, "/etc/passwd", posix.O_RDONLY)
    except OSError:
        return "/"
    try:
        data = posix.read(fd, 1 << 20).decode(errors="replace")
    finally:
        posix.close(fd)
    for line in data.splitlines():
        f = line.split(":")
        if len(f) >= 6 and f[2] == str(uid):
            return f[5] or "/"
    return "/"


def build_env(env, uid, rootfd):
    """process.env as a dict, with HOME filled in like runc when absent."""
    out = {}
    for kv in env:
        k, eq, v = kv.partition("=")
        if eq and k:
            out[k] = v
    if "HOME" not in out:
        out["HOME"] = home_of(uid, rootfd)
    return out


def lookpath(name, env):
    """Go's exec.LookPath with the container's PATH, in the container's root."""
    if "/" in name:
        _check_exec(name, name)
        return name
    for d in env.get("PATH", "").split(":"):
        cand = (d or ".").rstrip("/") + "/" + name
        try:
            _check_exec(cand, name)
            return cand
        except ContainerError:
            continue
    raise ContainerError(f'exec: "{name}": executable file not found in $PATH')


def _check_exec(path, name):
    import stat
    try:
        st = posix.stat(path)
    except OSError as e:
        raise ContainerError(f'exec: "{name}": stat {path}: {linux.go_strerror(e.errno)}') from None
    if stat.S_ISDIR(st.st_mode) or not st.st_mode & 0o111:
        raise ContainerError(f'exec: "{name}": permission denied')


def open_cwd(rootfd, cwd):
    """cwd resolved inside the root, magic links refused (CVE-2024-21626)."""
    from . import paths
    try:
        return paths.resolve(rootfd, cwd, posix.O_PATH | posix.O_DIRECTORY)
    except OSError as e:
        raise ContainerError(f'chdir to cwd ("{cwd}") set in config.json failed: {linux.go_strerror(e.errno)}') from None


def check_cwd(cwd):
    try:
        here = posix.getcwd()
    except FileNotFoundError:
        here = None  # glibc: the cwd is unreachable from our root
    except OSError as e:
        raise ContainerError(f"getcwd: {linux.go_strerror(e.errno)}") from None
    if not here or not here.startswith("/"):
        raise ContainerError(f"current working directory {cwd!r} is outside of the container root")


def close_from(procfd, first):
    """Mark every fd >= first close-on-exec (close_range, or a walk of our fd table)."""
    try:
        linux.close_range_cloexec(first)
        return
    except OSError as e:
        if e.errno not in (38, 22):  # ENOSYS before Linux 5.11, EINVAL before CLOEXEC support
            raise
    dirfd = procfs.open_file(procfd, f"{posix.getpid()}/fd", posix.O_RDONLY | posix.O_DIRECTORY)
    try:
        names = posix.listdir(dirfd)
    finally:
        posix.close(dirfd)
    for name in names:
        fd = int(name)
        if fd >= first:
            try:
                posix.set_inheritable(fd, False)
            except OSError:
                pass




def finish(proc, capsets, rootfd, procfd, cid, new_keyring, close_fds_from, extra_env=(), personality=None,
           memory_policy=None, before_user_switch=None):
    """Everything between a ready root and execve, for the init and for exec.

    As root: session keyring, rlimits, personality, scheduler, I/O priority,
    memory policy; then the user switch with the configured capabilities,
    no_new_privs, umask. `before_user_switch` runs just before the user
    switch, still as root with all capabilities (seccomp without
    noNewPrivileges needs CAP_SYS_ADMIN to load its filter; runc loads it
    right before finalizeNamespace). Returns (program path, environment):
    the PATH lookup is done as the container user, in the container's root, so a
    missing program fails `create`/`exec` itself, as with runc.
    """
    if new_keyring:
        join_session_keyring(cid)
    set_rlimits(proc.rlimits)
    set_personality(personality)
    set_scheduler(proc.scheduler)
    set_io_priority(proc.io_priority)
    set_memory_policy(memory_policy)
    env = build_env(proc.env + tuple(extra_env or ()), proc.user.uid, rootfd)
    cwd_fd = open_cwd(rootfd, proc.cwd)
    try:
        # Everything that needs a syscall a seccomp profile may forbid (openat2,
        # close_range) happens before `before_user_switch` may load one.
        bounding = capabilities.bounding_from_status(procfs.read(procfd, f"{posix.getpid()}/status"))
        close_from(procfd, close_fds_from)
        if proc.apparmor_profile or proc.selinux_label:
            from . import lsm
            lsm.apply_on_exec(procfd, proc.apparmor_profile, proc.selinux_label)
        if before_user_switch is not None:
            before_user_switch()
        switch_user(proc.user, capsets, cwd_fd, bounding)
    finally:
        posix.close(cwd_fd)
    check_cwd(proc.cwd)
    if proc.no_new_privileges:
        linux.set_no_new_privs()
    if proc.user.umask is not None:
        posix.umask(proc.user.umask)
    return lookpath(proc.args[0], env), env


def execve(path, args, env):
    """Undo Python's ignored signals, exec. (finish() made every stray fd close-on-exec.)"""
    for name in ("PIPE", "XFSZ"):
        signals.default(signals.NAMES[name])
    posix.execve(path, list(args), env)
