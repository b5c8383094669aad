"""The runtime side of `create` (runc's process_linux.go initProcess.start).

Validates everything first, then claims the state directory and forks
under a rollback stack: any failure — a bad mount reported by the init, a
hook, SIGTERM/SIGINT to the runtime — kills the children and removes the
state directory, so nothing is left behind. A `create` killed with
SIGKILL cannot run its rollback; its children see EOF on the sync channel
and exit, and its state directory (locked while it lived, without a
state.json) is collected by the next command that touches that ID.

The runtime process becomes a child subreaper: when stage 1 exits, the
container init is re-parented to it, so it can reap the init on failure,
wait for it in a foreground `run`, and hand it over to its own subreaper
(conmon, containerd-shim) when it exits.
"""

import posix
import time

from . import OCI_VERSION, capabilities, console, linux, namespaces, procfs, rootfs, signals, state, validate
from . import spec as specmod
from .errors import ConfigError, ContainerError, PyruncError
from .init import InitConfig, idmapped_mounts, preload, stage1, stage1_direct
from .rollback import Rollback
from .sync import Channel
from . import hostpath


class Interrupted(PyruncError):
    pass


class CreateOptions:
    __slots__ = ("root", "id", "bundle", "pid_file", "console_socket", "no_pivot",
                 "no_new_keyring", "preserve_fds", "listen_fds", "systemd_cgroup", "detach")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.pop(k, None))
        if kw:
            raise TypeError(sorted(kw))


class Created:
    """A container that `create` left waiting on its exec fifo."""

    __slots__ = ("dir", "state", "pid", "console")

    def __init__(self, d, st, pid, console=None):
        self.dir = d
        self.state = st
        self.pid = pid
        self.console = console  # foreground terminal: the console.Receiver


def abs_bundle(bundle):
    bundle = bundle or posix.getcwd()
    return hostpath.normpath(bundle if bundle.startswith("/") else hostpath.join(posix.getcwd(), bundle))


def hook_state(cid, bundle, annotations, pid, status):
    """The runtime-spec state given to hooks on stdin."""
    st = {"ociVersion": OCI_VERSION, "id": cid, "status": status, "bundle": bundle}
    if pid and status != state.STOPPED:
        st["pid"] = pid
    if annotations:
        st["annotations"] = annotations
    return st


def load_spec(opts, log):
    """config.json → validated Spec, with no side effects."""
    with log.step("load and validate config.json"):
        doc = validate.load_config(opts.bundle)
        spec = specmod.build(doc, opts.bundle)
        validate.check(spec, log)
    console.check_console(spec.process.terminal, opts.console_socket, opts.detach)
    return spec


def _raise_interrupted(signum, frame):
    raise Interrupted(f"interrupted by {signals.name(signum)}")


def create(opts, log, cgroup_warmup=None):
    """Create the container; returns Created. The caller's stdio becomes the init's."""
    spec = load_spec(opts, log)
    rules = device_rules(spec.linux)
    ns_fds = namespaces.open_paths(spec.linux)
    capsets = capabilities.CapSets(spec.process.capabilities, log.warn, user_ns=spec.linux.has("user"))
    old_handlers = {}
    for name in ("INT", "TERM", "HUP", "QUIT"):
        num = signals.NAMES[name]
        old_handlers[num] = signals.handle(num, _raise_interrupted)
    try:
        with Rollback(log) as rb:
            # _close_ns_fds empties the list once it has closed them: never twice
            rb.push("close namespace fds", _close_fd_list, ns_fds)
            return _create(opts, spec, rules, ns_fds, capsets, rb, log, cgroup_warmup)
    finally:
        for num, h in old_handlers.items():
            signals.handle(num, h)


def _create(opts, spec, rules, ns_fds, capsets, rb, log, cgroup_warmup=None):
    lx = spec.linux
    d = state.create_dir(opts.root, opts.id)
    rb.push("remove state directory", _remove_dir, d)
    rb.push("reap children", _reap_children)
    posix.mkfifo(state.FIFO, 0o622, dir_fd=d.fd)
    # runc makes the fifo world-writable for non-root container users; the
    # umask must not take that away
    posix.chmod(state.FIFO, 0o622, dir_fd=d.fd)
    fifo_fd = posix.open(state.FIFO, posix.O_PATH | posix.O_CLOEXEC, dir_fd=d.fd)
    rb.push("close fifo", posix.close, fifo_fd)

    new_user = lx.has("user") and not lx.ns("user").path
    needs_fds = idmapped_mounts(spec)
    parent_chan, child_chan = Channel.pair(with_fds=needs_fds)
    rb.push("close sync channel", parent_chan.close)
    linux.set_child_subreaper()
    # Our children are Python processes until they exec, and may share a PID
    # namespace with container processes (a joined one): they must never be
    # ptrace-able or have their /proc/<pid>/exe opened (CVE-2019-5736). The
    # flag is inherited by fork and reset by execve.
    linux.set_dumpable(False)

    def state_for_hooks(pid, status):
        return hook_state(opts.id, opts.bundle, spec.annotations, pid, status)

    console_fd = receiver = None
    console_size = spec.process.console_size
    if spec.process.terminal:
        from . import console
        if opts.console_socket:
            console_fd = console.connect(opts.console_socket)
        else:
            receiver = console.Receiver()  # foreground run -t: we are the console socket
            rb.push("close console socket", receiver.parent.close)
            console_fd = receiver.child_fd
            console_size = receiver.initial_size(console_size)
        rb.push("close console socket", _close_quietly, console_fd)
    # seccomp: the filter validate.check built (cached); with SCMP_ACT_NOTIFY the
    # agent at listenerPath is connected to now, before any process exists
    filt = agent = None
    if lx.seccomp is not None:
        from . import seccomp
        filt = seccomp.prepare(lx.seccomp, log)
        if filt.notify:
            agent = seccomp.connect(filt.listener_path)
            rb.push("close seccomp agent socket", agent.close)
    preload(spec)
    premounted = None
    if not lx.has("mount"):
        premounted = [mid for mid, _ in rootfs.mounts_under(spec.root.path)]
        rb.push("unmount the container's mounts", rootfs.unmount_new, spec.root.path, premounted)
    from .cgroups.manager import new_manager
    with log.step("cgroup paths"):
        cgm = new_manager(lx.cgroups_path, opts.id, systemd=opts.systemd_cgroup,
                          annotations=spec.annotations)
    # before any kill is pushed: undone after the init is dead
    rb.push("remove cgroups", cgm.destroy)
    # for a create killed with -9, which runs no rollback (see state.collect_debris)
    undo = {"cgroup": cgm.state(), "rootfs": spec.root.path, "premounted": premounted}
    d.write(undo, name=state.UNDO_FILE)
    with log.step("cgroups: create"):
        join = cgm.prepare(lx.resources)
    if join is not None:
        rb.push("close cgroup fds", join.close)
        _record_cgroups(d, undo, cgm)
    if cgroup_warmup is not None:
        with log.step("wait for the cgroup lock warm-up"):
            cgroup_warmup.wait()  # no thread may run across fork
    cfg = InitConfig(spec=spec, cid=opts.id, bundle=opts.bundle, log=log, chan=child_chan,
                     fifo_fd=fifo_fd, no_pivot=opts.no_pivot,
                     # runc: stdio, then $LISTEN_FDS fds, then --preserve-fds ones, from fd 3
                     preserve_fds=(opts.listen_fds or 0) + (opts.preserve_fds or 0),
                     extra_env=(f"LISTEN_FDS={opts.listen_fds}", "LISTEN_PID=1") if opts.listen_fds else (),
                     no_new_keyring=opts.no_new_keyring, capsets=capsets, ns_fds=ns_fds,
                     new_user=new_user, state_for_hooks=state_for_hooks,
                     console_fd=console_fd, console_size=console_size, seccomp=filt, cgroup_join=join,
                     keep_fds=child_chan.fds() + [fifo_fd] + [fd for _, fd in ns_fds] + log.fds()
                     + ([console_fd] if console_fd is not None else [])
                     + (join.fds() if join is not None else []))
    # A user namespace (new or joined) must own the PID namespace it gets,
    # and new time offsets must be set before the init is forked: those
    # need runc's two stages. Everything else is one fork.
    if lx.has("user") or (lx.has("time") and not lx.ns("time").path):
        pid = _spawn_two_stage(cfg, parent_chan, child_chan, rb, log)
    else:
        pid = _spawn_direct(cfg, parent_chan, child_chan, rb, log)
    if spec.hooks.poststop:
        # a failed create continues the lifecycle at delete (runtime.md step 12),
        # so poststop hooks run once the init is gone
        rb.push("poststop hooks", _poststop, spec, state_for_hooks, log)
    rb.push("kill container init", _kill_reap, pid)
    start_time = state.proc_start_time(pid)
    if start_time is None:
        raise ContainerError("container init exited unexpectedly")
    start_time = start_time[0]

    with log.step("cgroups: apply and set resources"):
        if join is None:
            cgm.apply(pid, lx.resources)
            _record_cgroups(d, undo, cgm)
        else:
            join.move(pid)  # only if it could not be born in its v2 cgroup
            join.close()
        cgm.set(lx.resources, devices=rules)
    for w in cgm.warnings:
        log.warn(w)
    rdt_group = None
    if lx.intel_rdt is not None:
        from . import intelrdt
        rdt_group = intelrdt.apply(lx.intel_rdt, opts.id, pid, log)
        rb.push("remove intelRdt group", intelrdt.remove, rdt_group)
    moved = []
    if lx.net_devices:
        from . import netdev
        moved = netdev.move_all(lx.net_devices, pid, log)

    prepared_idx, prepared_fds = [], []
    if needs_fds:
        from . import idmap
        prepared_idx, prepared_fds = idmap.prepare(spec, opts.bundle, pid, log)
    # the init may be building its rootfs meanwhile, and may have failed at it
    parent_chan.tell({"type": "go", "prepared": prepared_idx, "netdevs": moved})
    if prepared_fds:
        try:
            parent_chan.send({"type": "mountfds"}, fds=prepared_fds)
        finally:
            for fd in prepared_fds:
                posix.close(fd)
    if spec.hooks.prestart or spec.hooks.create_runtime:
        from . import hooks
        parent_chan.expect("hooks")
        # "created", as runc reports it and runtime-tools' hooks_stdin expects
        st = state_for_hooks(pid, state.CREATED)
        # prestart is deprecated but still run, before createRuntime (runtime-spec v1.3)
        hooks.run_all(spec.hooks.prestart, st, "prestart", log)
        hooks.run_all(spec.hooks.create_runtime, st, "createRuntime", log)
        parent_chan.send({"type": "hooks-done"})
    if agent is not None:
        # seccomp notify: the init loaded its filter and announces the listener fd
        seccomp.forward_listener(parent_chan, parent_chan.expect("seccomp"), pid, agent, filt,
                                 hook_state(opts.id, opts.bundle, spec.annotations, pid, "creating"))
    parent_chan.expect("ready")

    st = {
        "ociVersion": OCI_VERSION,
        "id": opts.id,
        "pid": pid,
        "status": state.CREATED,
        "bundle": opts.bundle,
        "rootfs": spec.root.path,
        "created": state.rfc3339nano(time.time_ns()),
        "owner": "",
        "annotations": spec.annotations,
        "init_start_time": start_time,
        "intel_rdt": rdt_group,
        # no mount namespace: the container's mounts are in ours until delete,
        # which undoes every mount below the rootfs not listed here
        "premounted": premounted,
        "cgroup": cgm.state(),
        "paused_probe": cgm.freezer_probe(),
        "config": spec.raw,
    }
    d.write(st)
    posix.unlink(state.UNDO_FILE, dir_fd=d.fd)  # the state now says it all
    if opts.pid_file:
        state.write_pid_file(opts.pid_file, pid)
    parent_chan.send({"type": "commit"})
    rb.commit()
    parent_chan.close()
    if console_fd is not None:
        _close_quietly(console_fd)
    return Created(d, st, pid, receiver)


def _record_cgroups(d, undo, cgm):
    """Rewrite the undo file if making the cgroups made ancestors too."""
    st = cgm.state()
    if st != undo["cgroup"]:
        undo["cgroup"] = st
        d.write(undo, name=state.UNDO_FILE)


def device_rules(lx):
    """The device cgroup rules, as runc derives them: linux.resources.devices in
    order, then runc's default allowed devices (those linux.devices does not
    redefine). ConfigError for rules that cannot be expressed."""
    from .cgroups import devices
    try:
        return devices.rules_for_container((lx.resources or {}).get("devices"), lx.devices)
    except ValueError as e:
        raise ConfigError(f"linux.resources.devices: {e}") from None


def _spawn_two_stage(cfg, parent_chan, child_chan, rb, log):
    """runc's nsexec: stage 1 makes the user (and time) namespace, the parent
    writes the id maps, stage 1 forks the init into the new PID namespace.

    A new user namespace must exist before the other namespaces so that it
    owns them, and its maps can only be written from outside; a time
    namespace's offsets must be set before its first member is forked.
    """
    lx = cfg.spec.linux
    c1 = _fork(cfg, log)
    if c1 == 0:
        parent_chan.close()
        stage1(cfg)  # never returns
    log.debug(f"forked stage 1 {c1}")
    child_chan.close()
    rb.push("reap stage 1", _kill_reap, c1)
    _close_ns_fds(cfg)
    if cfg.new_user:
        parent_chan.expect("userns")
        with log.step("write uid/gid maps"):
            pfd = procfs.open_private()
            try:
                namespaces.write_id_maps(pfd, c1, lx.uid_mappings, lx.gid_mappings)
            finally:
                posix.close(pfd)
        parent_chan.send({"type": "idmap-done"})
    pid = parent_chan.expect("pid")["pid"]
    # stage 1 exits once the init is forked; we are a subreaper, so the init
    # is now our child
    rb.push("kill container init", _kill_reap, pid)
    _, status = posix.waitpid(c1, 0)
    if status != 0:
        raise ContainerError("container init stage 1 failed")
    return pid


def _spawn_direct(cfg, parent_chan, child_chan, rb, log):
    """Without a new user or time namespace one fork is enough.

    The parent points its own pid_for_children at the container's PID
    namespace (new or joined), forks the init into it, and points it back
    at its own; the init then joins and unshares the other namespaces
    itself. This saves a process and a round trip on every plain create.
    """
    lx = cfg.spec.linux
    pidns = lx.ns("pid")
    own = None
    new_pidns = False
    if pidns is not None:
        own = posix.open("/proc/self/ns/pid", posix.O_RDONLY | posix.O_CLOEXEC)
    try:
        if pidns is not None:
            joined = [fd for t, fd in cfg.ns_fds if t == "pid"]
            if joined:
                namespaces.join([("pid", joined[0])], close=False)
            else:
                linux.unshare(linux.CLONE_NEWPID)
                new_pidns = True
        pid = _fork(cfg, log, (lambda: _fresh_pid_ns(own)) if new_pidns else None)
        if pid == 0:
            parent_chan.close()
            stage1_direct(cfg)  # never returns
    finally:
        if own is not None:
            # the runtime's later children (hooks) stay in the runtime's namespace
            linux.setns(own, linux.CLONE_NEWPID, "setns back to the runtime's PID namespace")
            posix.close(own)
    log.debug(f"forked init {pid}")
    child_chan.close()
    _close_ns_fds(cfg)
    return pid


def _fresh_pid_ns(own):
    """Another new PID namespace for the init: a failed clone spent the first
    pid of the last one, and the kernel refuses every later fork into it."""
    linux.setns(own, linux.CLONE_NEWPID, "setns back to the runtime's PID namespace")
    linux.unshare(linux.CLONE_NEWPID)


def _fork(cfg, log, after_failed_clone=None):
    """The first child, born in the container's cgroups when the driver allows."""
    if cfg.cgroup_join is None:
        return posix.fork()
    return cfg.cgroup_join.fork(log, after_failed_clone)


def _close_ns_fds(cfg):
    _close_fd_list(cfg.ns_fds)


def _close_fd_list(ns_fds):
    while ns_fds:
        _, fd = ns_fds.pop()
        posix.close(fd)


def _close_quietly(fd):
    try:
        posix.close(fd)
    except OSError:
        pass


def _poststop(spec, state_for_hooks, log):
    from . import hooks
    hooks.run_all(spec.hooks.poststop, state_for_hooks(0, state.STOPPED), "poststop", log, fatal=False)


def _remove_dir(d):
    d.remove()
    d.close()


def _kill_reap(pid):
    """SIGKILL and reap a child of ours; quiet if it is already gone."""
    try:
        posix.kill(pid, signals.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 5
    while True:
        try:
            got, _ = posix.waitpid(pid, posix.WNOHANG)
        except ChildProcessError:
            return
        if got:
            return
        if time.monotonic() > deadline:
            return
        time.sleep(0.001)


def _reap_children():
    """Reap what was re-parented to us (a killed init whose stage 1 exited)."""
    while True:
        try:
            got, _ = posix.waitpid(-1, posix.WNOHANG)
        except ChildProcessError:
            return
        if not got:
            return
