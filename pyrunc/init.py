"""The container side of `create`: code that runs in the forked children.

No Python is ever exec'd inside the container (CVE-2019-5736): the parent
forks, the children set up namespaces and the rootfs from the already
loaded interpreter, and the last step is execve of the user's program.

Each first child joins the container's cgroups itself before anything
else (see cgroups.manager.Join).

stage1 (runc's nsexec stage-1): joins namespaces by path, unshares the
user namespace and waits for the parent to write its id maps, unshares
the other namespaces, sets time offsets, forks the init and exits.

stage2 (the init, PID 1 of a new PID namespace): builds the rootfs, waits
for the parent's "go" (cgroup limits set; before the rootfs when it
carries network devices or idmapped mounts), lets the parent run the
prestart/createRuntime hooks, runs createContainer hooks, pivots, applies
the process attributes, reports "ready", and then blocks opening the exec
fifo until `start`; startContainer hooks; "0" on the fifo; waits for
`start` to let go of it (unless poststart hooks wait for the program);
execve.

Both stages talk to the parent only over the sync channel. EOF on it
means the parent died: the child exits, so a killed `create` leaves no
process behind. Children always leave through posix._exit, never by
returning into the parent's code.
"""

import posix
import sys

from . import devices, linux, namespaces, procfs, process, rootfs, signals
from .errors import ContainerError, PyruncError

# dispositions Python changes at start-up and that execve would keep
_PY_IGNORED = ("PIPE", "XFSZ")
_PARENT_HANDLED = ("INT", "TERM", "HUP", "QUIT")
# the longest the init waits, once released, for the fifo's reader to close it
HOLD_MS = 100


class InitConfig:
    """What the parent hands to its children through fork (nothing is serialised)."""

    __slots__ = ("spec", "cid", "bundle", "log", "chan", "fifo_fd", "preserve_fds",
                 "no_pivot", "no_new_keyring", "capsets", "ns_fds", "new_user", "state_for_hooks",
                 "keep_fds", "extra_env", "console_fd", "console_size", "seccomp", "cgroup_join")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.pop(k, None))
        if kw:
            raise TypeError(sorted(kw))


def preload(spec):
    """Import, in the parent, every module the children will use for this spec.

    The children never import anything: in a new user namespace the
    runtime's files may not be readable by the mapped root, and after
    pivot_root they are out of reach. Imports inside init code below only
    bind names that are already in sys.modules.
    """
    import stat  # noqa: F401 - mounts, process
    from . import paths  # noqa: F401
    lx = spec.linux
    if spec.hooks.create_container or spec.hooks.start_container:
        from . import hooks  # noqa: F401
    if spec.process.apparmor_profile or spec.process.selinux_label:
        from . import lsm  # noqa: F401
    if spec.process.terminal:
        import _socket  # noqa: F401
        from . import console, mounts, sync  # noqa: F401
    if lx.net_devices:
        from . import netdev
        netdev.preload()
    if lx.seccomp is not None:
        # seccomp: libseccomp is dlopen()ed here, before the init loses the host's root
        from . import seccomp
        seccomp.preload()


def _enter_cgroups(cfg):
    """First of all, while still root in the runtime's namespaces: join the
    container's v1 cgroups (see cgroups.manager.Join); the init inherits them."""
    if cfg.cgroup_join is not None:
        cfg.cgroup_join.enter()


def _reset_signals():
    for name in _PARENT_HANDLED + _PY_IGNORED:
        signals.default(signals.NAMES[name])


def _close_inherited(cfg):
    """Close every runtime fd the children have no use for.

    Above all the state directory, whose flock would otherwise be held by
    the waiting init and block every later command on this container.
    """
    first = 3 + (cfg.preserve_fds or 0)
    keep = sorted(fd for fd in cfg.keep_fds if fd >= first)
    for fd in keep:
        posix.closerange(first, fd)
        first = fd + 1
    posix.closerange(first, 1 << 20)


def stage1(cfg):
    """C1: namespaces. Never returns."""
    chan = cfg.chan
    code = 1
    try:
        _enter_cgroups(cfg)
        _reset_signals()
        _close_inherited(cfg)
        spec = cfg.spec
        lx = spec.linux
        log = cfg.log
        if cfg.ns_fds:
            with log.step("join namespaces " + ",".join(t for t, _ in cfg.ns_fds)):
                namespaces.join(cfg.ns_fds)
        joined_user = any(t == "user" for t, _ in cfg.ns_fds)
        if cfg.new_user:
            with log.step("unshare user namespace, wait for id maps"):
                linux.unshare(linux.CLONE_NEWUSER)
                chan.send({"type": "userns"})
                chan.expect("idmap-done")
        if cfg.new_user or joined_user:
            # become root of the user namespace (runc's nsexec does the same)
            posix.setresgid(0, 0, 0)
            posix.setresuid(0, 0, 0)
        flags = namespaces.new_flags(lx, exclude=linux.CLONE_NEWUSER | linux.CLONE_NEWCGROUP)
        if flags:
            with log.step(f"unshare {flags:#x}"):
                linux.unshare(flags)
        if flags & linux.CLONE_NEWTIME and lx.time_offsets:
            pfd = procfs.open_private()
            try:
                namespaces.set_time_offsets(pfd, lx.time_offsets)
            finally:
                posix.close(pfd)
        pid = posix.fork()
        if pid == 0:
            stage2(cfg)  # never returns
        log.debug(f"forked init {pid}")
        chan.send({"type": "pid", "pid": pid})
        code = 0
    except BaseException as e:  # noqa: BLE001 - every failure goes to the parent
        chan.send_failure(e, "container init")
    finally:
        posix._exit(code)


def stage1_direct(cfg):
    """The init, forked straight into its PID namespace by the parent: joins and
    unshares its other namespaces itself, then goes on as stage 2. Never returns."""
    chan = cfg.chan
    try:
        _enter_cgroups(cfg)
        _reset_signals()
        _close_inherited(cfg)
        log = cfg.log
        others = [(t, fd) for t, fd in cfg.ns_fds if t != "pid"]
        if others:
            with log.step("join namespaces " + ",".join(t for t, _ in others)):
                namespaces.join(others)
        flags = namespaces.new_flags(cfg.spec.linux, exclude=linux.CLONE_NEWPID | linux.CLONE_NEWCGROUP)
        if flags:
            with log.step(f"unshare {flags:#x}"):
                linux.unshare(flags)
    except BaseException as e:  # noqa: BLE001
        chan.send_failure(e, "container init")
        posix._exit(1)
    stage2(cfg)


def stage2(cfg):
    """C2: the container init. Never returns."""
    chan = cfg.chan
    try:
        _stage2(cfg)
    except BaseException as e:  # noqa: BLE001
        chan.send_failure(e, "container init")
    posix._exit(1)


def idmapped_mounts(spec):
    """Whether the parent must make detached idmapped mount trees for the init."""
    return any(m.uid_mappings or "idmap" in m.extensions or "ridmap" in m.extensions
               for m in spec.mounts)


def _stage2(cfg):
    chan = cfg.chan
    spec = cfg.spec
    lx = spec.linux
    log = cfg.log
    proc = spec.process
    # The parent's "go": the cgroups' limits are set, and it carries moved
    # network devices and idmapped mount trees. An init that joined its
    # cgroups itself (see _enter_cgroups) and needs neither mounts its rootfs,
    # in its own mount namespace, while the parent sets the limits, and waits
    # only before its device nodes and anything of the user's: hooks, the program.
    ahead = (cfg.cgroup_join is not None and cfg.cgroup_join.by_itself() and lx.has("mount")
             and not lx.ns("mount").path and not lx.net_devices and not idmapped_mounts(spec))
    msg = {} if ahead else chan.expect("go")
    posix.setsid()
    if proc.exec_cpu_affinity:
        process.set_cpu_affinity(proc.exec_cpu_affinity.get("initial"), "initial")
    if lx.has("cgroup") and not lx.ns("cgroup").path:
        linux.unshare(linux.CLONE_NEWCGROUP)
    procfd = procfs.open_private()
    if lx.has("network") and not lx.ns("network").path:
        with log.step("loopback up"):
            namespaces.loopback_up()
    if msg.get("netdevs"):
        from . import netdev
        with log.step("configure network devices"):
            netdev.restore_all(msg["netdevs"], log)
    if proc.oom_score_adj is not None:
        process.set_oom_score_adj(procfd, proc.oom_score_adj)

    with log.step("prepare rootfs"):
        rootfd = rootfs.prepare(spec, procfd, log)
        prepared = _recv_prepared_mounts(chan, msg)
        rootfs.mount_all(spec, rootfd, procfd, cfg.bundle, log, prepared)
    if ahead:
        chan.expect("go")
    # after "go" in both modes: the parent's device rules start with a deny of
    # everything ("a" in v1, a new eBPF program in v2), and a mknod racing
    # that gets EPERM even for a device the rules end up allowing
    if devices.needs_setup_dev(spec):
        with log.step("device nodes"):
            devices.setup_dev(rootfd, lx.devices, cfg.new_user or any(
                t == "user" for t, _ in (cfg.ns_fds or ())), log)

    if spec.hooks.prestart or spec.hooks.create_runtime:
        chan.send({"type": "hooks"})
        chan.expect("hooks-done")
    if spec.hooks.create_container:
        from . import hooks
        hooks.run_all(spec.hooks.create_container, cfg.state_for_hooks(posix.getpid(), "created"),
                      "createContainer", log)

    _make_cwd(rootfd, proc.cwd)
    rootfs.restrict_paths(spec, rootfd, log)
    rootfs.pivot(rootfd, cfg.no_pivot, log, shared_mount_ns=not lx.has("mount"))
    if spec.hostname is not None and lx.has("uts"):
        linux.sethostname(spec.hostname)
    if spec.domainname is not None and lx.has("uts"):
        linux.setdomainname(spec.domainname)
    for key, value in lx.sysctl.items():
        with log.step(f"sysctl {key}"):
            try:
                procfs.write(procfd, "sys/" + key.replace(".", "/"), value)
            except OSError as e:
                raise ContainerError(f"write sysctl {key}={value}: {linux.go_strerror(e.errno)}") from None
    if cfg.console_fd is not None:
        # before the read-only remount: /dev/console may have to be created
        from . import console
        with log.step("console"):
            # runc binds /dev/console only in a mount namespace of the container's own
            console.setup(rootfd, cfg.console_fd, cfg.console_size, dev_console=lx.has("mount"))
    rootfs.finalize(spec, rootfd, log)

    # seccomp (runc's order): without noNewPrivileges the filter is loaded just
    # before the user switch, while we still have CAP_SYS_ADMIN; with it, as late
    # as possible: after the user switch, capabilities, no_new_privs and the
    # PATH lookup. Either way before "ready", so that a notify listener fd
    # reaches the agent during `create`, as with runc.
    early = late = None
    if cfg.seccomp is not None:
        from . import seccomp
        if proc.no_new_privileges:
            late = cfg.seccomp
        else:
            early = lambda: seccomp.load(cfg.seccomp, chan, log)  # noqa: E731
    path, env = process.finish(proc, cfg.capsets, rootfd, procfd, cid=cfg.cid,
                               new_keyring=not cfg.no_new_keyring,
                               close_fds_from=3 + (cfg.preserve_fds or 0), extra_env=cfg.extra_env,
                               personality=lx.personality, memory_policy=lx.memory_policy,
                               before_user_switch=early)
    posix.close(rootfd)
    if late is not None:
        seccomp.load(late, chan, log)

    chan.send({"type": "ready"})
    chan.expect("commit")
    chan.close()
    _wait_and_exec(cfg, procfd, path, env)


def _recv_prepared_mounts(chan, go_msg):
    """Detached (idmapped) mount trees made by the parent, keyed by mount index."""
    idx = go_msg.get("prepared") or []
    if not idx:
        return {}
    msg, fds = chan.recv(want_fds=True)
    if msg is None or len(fds) != len(idx):
        raise ContainerError("did not receive the prepared mounts from the parent")
    return dict(zip(idx, fds))


def _make_cwd(rootfd, cwd):
    """Create a missing cwd, as runc does, while the rootfs is still writable."""
    from . import paths
    try:
        posix.close(paths.mkdir_all(rootfd, cwd))
    except OSError as e:
        raise ContainerError(f"mkdir cwd ({cwd!r}) set in config.json failed: {linux.go_strerror(e.errno)}") from None


def _wait_and_exec(cfg, procfd, path, env):
    spec = cfg.spec
    proc = spec.process
    linux.set_dumpable(False)
    # blocks until `start` opens the read side
    fifo = procfs.reopen_fd(procfd, cfg.fifo_fd, posix.O_WRONLY)
    posix.close(cfg.fifo_fd)
    try:
        if spec.hooks.start_container:
            from . import hooks
            hooks.run_all(spec.hooks.start_container, cfg.state_for_hooks(posix.getpid(), "created"),
                          "startContainer", cfg.log)
        if proc.exec_cpu_affinity:
            process.set_cpu_affinity(proc.exec_cpu_affinity.get("final"), "final")
        posix.close(procfd)
    except BaseException as e:  # noqa: BLE001
        _fifo_error(fifo, e)
        posix._exit(1)
    cfg.log.debug(f"exec {path}")
    posix.write(fifo, b"0")
    if not spec.hooks.poststart and (cfg.seccomp is None or cfg.seccomp.allows("ppoll")):
        # `start` lets go of the fifo as it returns (Container.start, hold);
        # bounded, for other readers such as `cat exec.fifo`
        linux.wait_hangup(fifo, HOLD_MS)
    try:
        process.execve(path, proc.args, env)
    except OSError as e:
        # fifo is close-on-exec: `start` already saw "0"; all we can do is say why
        sys.stderr.write(f"pyrunc: exec {path}: {linux.go_strerror(e.errno)}\n")
        sys.stderr.flush()
        posix._exit(127 if e.errno == 2 else 126)


def _fifo_error(fifo, exc):
    msg = str(exc) if isinstance(exc, PyruncError) else f"error during container init: {exc}"
    try:
        posix.write(fifo, b"E" + msg.encode(errors="replace"))
    except OSError:
        pass
