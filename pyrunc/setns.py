"""`pyrunc exec`: a new process in a running container (runc's setnsProcess and setns_init).

The runtime joins nothing itself. It points its pid_for_children at the
container's PID namespace (through a pidfd of the init, which cannot be a
recycled PID), forks, and points it back; the child joins every other
namespace of the container with one setns(pidfd, flags) — the kernel
orders the user namespace first — waits until the runtime has put it in
the container's cgroups, applies the process attributes and execs.

The runtime is non-dumpable before it forks, so the Python child, visible
in the container's PID namespace until its execve, can never be ptraced
or have its /proc/<pid>/exe opened by the container (CVE-2019-5736);
execve makes the user's program dumpable again.
"""

import posix

from . import capabilities, linux, procfs, process, signals, state
from . import spec as specmod
from .errors import ContainerError, PyruncError, StateError
from .sync import STARTING, Channel


class ExecOptions:
    __slots__ = ("process_file", "args", "env", "cwd", "user", "additional_gids", "caps", "no_new_privs",
                 "tty", "detach", "pid_file", "console_socket", "preserve_fds", "cgroup", "ignore_paused",
                 "apparmor", "process_label")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.pop(k, None))
        if kw:
            raise TypeError(sorted(kw))


def _user(s):
    uid, _, gid = s.partition(":")
    try:
        return int(uid), (int(gid) if gid else None)
    except ValueError:
        raise PyruncError(f"parsing {s} as uid[:gid] failed: numeric uid and gid are required") from None


def process_dict(config, opts):
    """The runtime-spec process for the exec: --process, or the container's with runc's flags."""
    if opts.process_file:
        from . import fastjson, schemacheck
        try:
            with open(opts.process_file, "rb") as f:
                doc = fastjson.loads(f.read())
        except OSError as e:
            raise PyruncError(f"open {opts.process_file}: {linux.go_strerror(e.errno)}") from None
        except ValueError as e:
            raise PyruncError(f"{opts.process_file}: invalid JSON: {e}") from None
        schemacheck.validate(doc, "process", "process.json")
        return doc
    base = config.get("process") or {}
    p = {k: v for k, v in base.items()}
    if not opts.args:
        raise PyruncError("process args cannot be empty")
    p["args"] = list(opts.args)
    p["env"] = list(base.get("env") or ()) + list(opts.env or ())
    p["terminal"] = bool(opts.tty)
    if opts.cwd:
        p["cwd"] = opts.cwd
    user = dict(base.get("user") or {})
    if opts.user:
        uid, gid = _user(opts.user)
        user["uid"] = uid
        if gid is not None:
            user["gid"] = gid
    if opts.additional_gids:
        try:
            user["additionalGids"] = [int(g) for g in opts.additional_gids]
        except ValueError:
            raise PyruncError("additional gids must be numeric") from None
    p["user"] = user
    if opts.caps:
        caps = {k: list(v) for k, v in (base.get("capabilities") or {}).items()}
        for c in opts.caps:
            for k in ("bounding", "effective", "permitted"):
                caps.setdefault(k, []).append(c)
            # ambient needs inheritable, which --cap does not set (runc)
            if caps.get("inheritable"):
                caps.setdefault("ambient", []).append(c)
        p["capabilities"] = caps
    if opts.no_new_privs:
        p["noNewPrivileges"] = True
    if opts.apparmor:
        p["apparmorProfile"] = opts.apparmor
    if opts.process_label:
        p["selinuxLabel"] = opts.process_label
    return p


def _check(proc):
    if not proc.args:
        raise PyruncError("args must not be empty")
    if not proc.cwd.startswith("/"):
        raise PyruncError(f"cwd {proc.cwd!r} is not an absolute path")


def _own_ns(kind):
    try:
        return posix.stat(f"/proc/self/ns/{kind}").st_ino
    except OSError:
        return None


def exec_process(root, cid, opts, log):
    """Run the exec; returns the exit code (0 once started with --detach)."""
    from .container import Container, wait_exit
    c = Container.load(root, cid, lock=False)
    try:
        status = c.status()
        if status == state.STOPPED:
            raise StateError("cannot exec in a stopped container")
        if status == state.PAUSED and not opts.ignore_paused:
            raise StateError("cannot exec in a paused container (use --ignore-paused to override)")
        config = c.st.get("config") or {}
        proc = specmod.build_process(process_dict(config, opts))
        _check(proc)
        from .console import check_console
        check_console(proc.terminal, opts.console_socket, opts.detach)
        lx = specmod.build_linux(config.get("linux") or {})
        pidfd = c._pidfd()
        if pidfd is None:
            raise StateError("cannot exec in a stopped container")
        try:
            return _spawn(c, proc, lx, pidfd, opts, log, wait_exit)
        finally:
            posix.close(pidfd)
    finally:
        c.close()


def _ns_flags(lx, init_pid):
    """The container's namespaces that differ from ours (joining our own user ns is EINVAL)."""
    flags = 0
    for ns in lx.namespaces:
        kind = specmod.NAMESPACE_PROC[ns.type]
        try:
            theirs = posix.stat(f"/proc/{init_pid}/ns/{kind}").st_ino
        except FileNotFoundError:
            raise StateError("cannot exec in a stopped container") from None  # it is exiting
        except OSError as e:
            raise ContainerError(f"open {ns.type} namespace of the container: {linux.go_strerror(e.errno)}") from None
        if theirs != _own_ns(kind):
            flags |= ns.flag
    return flags


def _spawn(c, proc, lx, pidfd, opts, log, wait_exit):
    capsets = capabilities.CapSets(proc.capabilities, log.warn, user_ns=lx.has("user"))
    flags = _ns_flags(lx, c.pid)
    cgm = c.cgroup_manager()
    console_fd = receiver = None
    console_size = proc.console_size
    if proc.terminal:
        from . import console
        if opts.console_socket:
            console_fd = console.connect(opts.console_socket)
        else:
            receiver = console.Receiver()
            console_fd = receiver.child_fd
            console_size = receiver.initial_size(console_size)
        import _socket  # noqa: F401 - the child cannot import inside the container
        from . import mounts, sync  # noqa: F401 - likewise
    # seccomp: the container's profile applies to exec'd processes too (runc); the
    # filter is built (and libseccomp loaded) here, the child only loads it
    filt = agent = None
    if lx.seccomp is not None:
        from . import seccomp
        filt = seccomp.prepare(lx.seccomp, log, warn=False)  # create warned already
        if filt.notify:
            agent = seccomp.connect(filt.listener_path)
    parent_chan, child_chan = Channel.pair()
    linux.set_child_subreaper()
    # the child is visible in the container until execve: never dumpable (CVE-2019-5736)
    linux.set_dumpable(False)
    import stat  # noqa: F401 - the child cannot import once it is in the container's mounts
    from . import paths  # noqa: F401 - likewise (process.finish resolves the cwd with it)
    if proc.apparmor_profile or proc.selinux_label:
        from . import lsm  # noqa: F401
    root_fd = None if lx.has("mount") else _init_root(pidfd, c.pid)
    join = cgm.prepare_add(opts.cgroup) if cgm is not None else None
    own = None
    if flags & linux.CLONE_NEWPID:
        own = posix.open("/proc/self/ns/pid", posix.O_RDONLY | posix.O_CLOEXEC)
    fwd = None if opts.detach else signals.Forwarder()
    try:
        if own is not None:
            linux.setns(pidfd, linux.CLONE_NEWPID, "setns pid")
        pid = join.fork(log) if join is not None else posix.fork()
        if pid == 0:
            parent_chan.close()
            if fwd is not None:
                fwd.reset()
            _child(child_chan, pidfd, flags & ~linux.CLONE_NEWPID, proc, capsets, opts, c.id, log,
                   console_fd, console_size, filt, root_fd, join)
    except BaseException:
        if fwd is not None:
            fwd.restore()
        raise
    finally:
        if join is not None:
            join.close()
        if own is not None:
            linux.setns(own, linux.CLONE_NEWPID, "setns back to the runtime's PID namespace")
            posix.close(own)
    child_chan.close()
    if root_fd is not None:
        posix.close(root_fd)
    if console_fd is not None:
        posix.close(console_fd)
    try:
        if join is not None:
            join.move(pid)  # only if it could not be born in its v2 cgroup
        elif cgm is not None:
            with log.step("join the container's cgroups"):
                cgm.add(pid, opts.cgroup)
        parent_chan.tell({"type": "go"})  # the child may have failed joining its cgroups
        msg = parent_chan.recv()
        if agent is not None and msg is not None and msg.get("type") == "seccomp":
            # seccomp notify: the child loaded its filter and announces the listener fd
            from .parent import hook_state
            seccomp.forward_listener(parent_chan, msg, pid, agent, filt,
                                     hook_state(c.id, c.st.get("bundle"), c.st.get("annotations"),
                                                c.pid, state.RUNNING))
            msg = parent_chan.recv()
        if msg is not None:
            # anything but EOF (the close-on-exec pipe closing at execve) is a failure
            raise ContainerError(STARTING + msg.get("msg", "exec failed"))
    except BaseException:
        _kill(pid)
        if fwd is not None:
            fwd.restore()
        raise
    finally:
        parent_chan.close()
        if agent is not None:
            agent.close()
    try:
        if fwd is not None:
            fwd.to(pid)
        if opts.pid_file:
            state.write_pid_file(opts.pid_file, pid)
        if fwd is None:
            return 0
        if receiver is not None:
            from . import console
            return console.proxy(receiver.receive(), pid, wait_exit)
        return wait_exit(pid)
    except BaseException:
        _kill(pid)  # runc's terminate(): a process it failed to follow does not stay
        raise
    finally:
        if fwd is not None:
            fwd.restore()


def _init_root(pidfd, pid):
    """The init's root directory, for a container without a mount namespace.

    It shares ours and lives in a chroot, so joining its namespaces would
    leave an exec'd process in the host's file system (where runc 1.1 leaves
    it); the child chroots into this instead.
    """
    import _signal
    procfd = procfs.open_private()
    try:
        fd = procfs.open_root(procfd, pid)
    finally:
        posix.close(procfd)
    try:
        # the pidfd pins the init: still alive now means `pid` was not reused
        # before the open, so this is the container's root
        _signal.pidfd_send_signal(pidfd, 0)
    except OSError:
        posix.close(fd)
        raise StateError("cannot exec in a stopped container") from None
    return fd


def _kill(pid):
    try:
        posix.kill(pid, signals.SIGKILL)
        posix.waitpid(pid, 0)
    except OSError:
        pass


def _child(chan, pidfd, flags, proc, capsets, opts, cid, log, console_fd, console_size, filt=None,
           root_fd=None, join=None):
    """The exec'd process until execve. Never returns.

    root_fd: the init's root directory when the container has no mount
    namespace of its own (see _init_root); the process chroots into it.
    join: how it enters the container's cgroups, before any setns (see
    cgroups.manager.Join).
    """
    try:
        if join is not None:
            join.enter()
        for name in ("INT", "TERM", "HUP", "QUIT"):
            signals.default(signals.NAMES[name])
        first = 3 + (opts.preserve_fds or 0)
        keep = sorted(fd for fd in (*chan.fds(), pidfd, *log.fds(), console_fd, root_fd)
                      if fd is not None and fd >= first)
        for fd in keep:
            posix.closerange(first, fd)
            first = fd + 1
        posix.closerange(first, 1 << 20)
        if flags:
            linux.setns(pidfd, flags, "join the container's namespaces")
        if chan.recv() is None:
            posix._exit(1)  # the runtime died
        posix.setsid()
        procfd = procfs.open_private()
        if root_fd is not None:
            posix.fchdir(root_fd)
            posix.chroot(".")
            posix.chdir("/")
            posix.close(root_fd)
        rootfd = posix.open("/", posix.O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC)
        if proc.exec_cpu_affinity:
            process.set_cpu_affinity(proc.exec_cpu_affinity.get("initial"), "initial")
        if proc.oom_score_adj is not None:
            process.set_oom_score_adj(procfd, proc.oom_score_adj)
        if console_fd is not None:
            from . import console
            console.setup(rootfd, console_fd, console_size, dev_console=False)
        # seccomp, in runc's order (see init._stage2): without noNewPrivileges just
        # before the user switch (CAP_SYS_ADMIN), otherwise as late as possible
        early = None
        if filt is not None:
            from . import seccomp  # already imported by the runtime: binds the name only
            if not proc.no_new_privileges:
                early = lambda: seccomp.load(filt, chan, log)  # noqa: E731
        path, env = process.finish(proc, capsets, rootfd, procfd, cid=cid, new_keyring=False,
                                   close_fds_from=3 + (opts.preserve_fds or 0),
                                   before_user_switch=early)
        if proc.exec_cpu_affinity:
            process.set_cpu_affinity(proc.exec_cpu_affinity.get("final"), "final")
        posix.close(rootfd)
        posix.close(procfd)
        posix.close(pidfd)
        if filt is not None and proc.no_new_privileges:
            seccomp.load(filt, chan, log)
        process.execve(path, proc.args, env)
    except BaseException as e:  # noqa: BLE001 - every failure goes to the runtime
        chan.send_failure(e, "exec")
    posix._exit(1)
