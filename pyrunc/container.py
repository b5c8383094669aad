"""A container under --root and its state machine (runc's state_linux.go).

    creating ──create──▶ created ──start──▶ running ──(exit)──▶ stopped
                            │                  │                  │
                            └──────kill───────▶┴──delete --force──┴──delete──▶ (gone)

Status is never trusted from disk: it is derived from the init process
(alive, same start time, not a zombie) and the exec fifo. Each command
checks the transition it wants against the current status; `destroy` is
the one way a container goes away (poststop hooks, then the state dir).
"""

import _signal
import posix
import time

from . import OCI_VERSION, signals, state, stay
from .errors import NotExistError, PyruncError, StateError


class Container:
    __slots__ = ("dir", "st", "held")

    def __init__(self, d, st):
        self.dir = d
        self.st = st
        self.held = None  # the exec fifo of start(hold=True)

    @classmethod
    def load(cls, root, cid, lock=True, name=None):
        """By ID, or by state directory name (`list`)."""
        d = state.open_dir(root, cid, lock=lock, name=name)
        st = d.read()
        if st is None:
            # no state: either a create still running, or the debris of a dead one
            d.close()
            state.collect_debris(root, name or state.dir_name(cid))
            raise NotExistError()
        if d.id is None:
            d.id = st.get("id")
        return cls(d, st)

    @property
    def id(self):
        return self.dir.id

    @property
    def pid(self):
        return self.st.get("pid", 0)

    def status(self):
        return state.status_of(self.st, self.dir)

    def close(self):
        if self.held is not None:
            posix.close(self.held)
            self.held = None
        self.dir.close()

    # --- views -------------------------------------------------------------

    def oci_state(self, status=None, owner=""):
        """The state as runc prints it (key order included)."""
        status = status or self.status()
        st = self.st
        out = {
            "ociVersion": OCI_VERSION,
            "id": st["id"],
            "pid": st["pid"] if status != state.STOPPED else 0,
            "status": status,
            "bundle": st["bundle"],
            "rootfs": st["rootfs"],
            "created": st["created"],
        }
        if st.get("annotations"):
            out["annotations"] = st["annotations"]
        out["owner"] = owner
        return out

    def hook_state(self, status):
        st = {"ociVersion": OCI_VERSION, "id": self.st["id"], "status": status,
              "bundle": self.st["bundle"]}
        if status != state.STOPPED:
            st["pid"] = self.pid
        if self.st.get("annotations"):
            st["annotations"] = self.st["annotations"]
        return st

    def _hooks(self, kind):
        """The config's hooks of one kind ("poststart", "poststop"); () without loading the model."""
        raw = (self.st.get("config") or {}).get("hooks") or {}
        if not raw.get(kind):
            return ()
        from . import spec
        return getattr(spec.build_hooks(raw), kind)

    # --- transitions -------------------------------------------------------

    def start(self, log, hold=False):
        """Run the user program.

        hold: keep the init waiting until close() (`pyrunc start`, which
        closes as it exits): the program then runs after `start` has
        returned. runc's `start` also returns before its init's execve has
        completed (measured: /proc/PID/comm still "runc:[2:INIT]" right
        after `runc start` in 6 runs of 20; its Go init's exec takes 1-4 ms
        more, the program ran 1-3.5 ms after `start` exited in podman
        traces); pyrunc's init execs in well under 1 ms. Callers that read its output
        right after `start` rely on that: podman attaches its stdin only
        once `start` returned, and conmon closing the attach socket with
        that input unread makes podman drop the output it had queued.
        """
        status = self.status()
        if status == state.STOPPED:
            raise StateError("cannot start a container that has stopped")
        if status != state.CREATED:
            raise StateError("cannot start an already running container")
        poststart = self._hooks("poststart")
        with log.step("open exec fifo"):
            fifo = self._exec_fifo(wait_exec=bool(poststart))
        if fifo is not None:
            if hold:
                self.held = fifo
            else:
                posix.close(fifo)
        if poststart:
            from . import hooks as hookrun
            try:
                hookrun.run_all(poststart, self.hook_state(state.RUNNING), "poststart", log)
            except PyruncError:
                # runtime-spec v1.3: a failing poststart hook stops the container
                self._signal_init(signals.SIGKILL)
                raise

    def _exec_fifo(self, wait_exec):
        """Release the init through the exec fifo.

        The init blocks opening the fifo for writing; our open lets it go on.
        It writes "0" (or "E<reason>" if a startContainer hook failed). With
        wait_exec (poststart hooks follow: they run once the program does)
        it execs at once, which closes its end: EOF means the program is
        running. Otherwise it waits, before its exec, until the fifo has no
        reader (if its seccomp profile lets it make that wait), and the fifo
        is returned open: closing it lets the program run
        (init._wait_and_exec).
        Until the init has connected, a non-blocking read says "no writer"
        (b"") and we check it is alive between short sleeps; once it has
        (EAGAIN, or data), reads block. No select/poll: `select` is a
        shared library whose import costs more than this whole wait.
        """
        d = self.dir
        if not self._alive():
            raise StateError("cannot start a container that has stopped")
        try:
            fd = posix.open(state.FIFO, posix.O_RDONLY | posix.O_NONBLOCK | posix.O_CLOEXEC, dir_fd=d.fd)
        except FileNotFoundError:
            raise StateError("cannot start an already running container") from None
        data = b""
        try:
            delay = 0.0001
            while True:
                try:
                    chunk = posix.read(fd, 4096)
                except BlockingIOError:
                    break  # connected, nothing written yet
                if chunk:
                    data = chunk
                    break
                if not self._alive():
                    break
                time.sleep(delay)
                delay = min(delay * 2, 0.01)
            posix.set_blocking(fd, True)
            if not data:
                data = posix.read(fd, 1)
            held = data[:1] == b"0" and not wait_exec
            if not held:
                data += state.read_all(fd)
            try:
                posix.unlink(state.FIFO, dir_fd=d.fd)
            except FileNotFoundError:
                pass
        except BaseException:
            posix.close(fd)
            raise
        if held:
            return fd
        posix.close(fd)
        if data[:1] == b"0":
            return None
        if data[:1] == b"E":
            raise PyruncError(data[1:].decode(errors="replace"))
        raise PyruncError("container init exited before starting the container process")

    def _alive(self):
        return state.process_alive(self.pid, self.st.get("init_start_time"))

    def _pidfd(self):
        """A pidfd for the init, or None if it is gone (start time checked after opening)."""
        pid = self.pid
        if not pid:
            return None
        try:
            fd = posix.pidfd_open(pid)
        except ProcessLookupError:
            return None
        if not state.process_alive(pid, self.st.get("init_start_time")):
            posix.close(fd)
            return None
        return fd

    def _signal_init(self, sig):
        fd = self._pidfd()
        if fd is None:
            return False
        try:
            _signal.pidfd_send_signal(fd, sig)
        except ProcessLookupError:
            return False
        finally:
            posix.close(fd)
        return True

    def signal(self, sig, all_processes=False):
        status = self.status()
        if status == state.STOPPED:
            if all_processes:
                return  # containerd's shim sends `kill --all` to stopped tasks: not an error
            raise StateError("container not running")
        if all_processes:
            cgm = self.cgroup_manager()
            if cgm is not None:
                kill_cgroup(cgm, sig, wait=False)
            else:
                self._signal_all(sig)
            return
        if not self._signal_init(sig):
            raise StateError("container not running")

    def _signal_all(self, sig):
        """Every process of the container: all members of its PID namespace."""
        pid = self.pid
        try:
            ns = posix.readlink(f"/proc/{pid}/ns/pid")
        except OSError:
            return
        if ns == posix.readlink("/proc/self/ns/pid"):
            # shares the host PID namespace: only the init is known to be ours
            self._signal_init(sig)
            return
        if sig == signals.SIGKILL:
            # the kernel kills every member when PID 1 of a namespace dies
            self._signal_init(sig)
            return
        for name in posix.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                if posix.readlink(f"/proc/{name}/ns/pid") != ns:
                    continue
                fd = posix.pidfd_open(int(name))
            except OSError:
                continue
            try:
                _signal.pidfd_send_signal(fd, sig)
            except OSError:
                pass
            finally:
                posix.close(fd)

    def _wait_gone(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while self._alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return True

    def delete(self, force, log):
        status = self.status()
        if status != state.STOPPED:
            if not force:
                raise StateError(f"cannot delete container {self.id} that is not stopped: {status}")
            cgm = self.cgroup_manager()
            if cgm is not None:
                # kills every member, thawing a paused container so the kill lands
                kill_cgroup(cgm, signals.SIGKILL)
            else:
                self._signal_init(signals.SIGKILL)
            if not self._wait_gone():
                raise StateError(f"container {self.id} init did not exit after SIGKILL")
        self.destroy(log)

    # --- cgroup-backed operations -------------------------------------------

    def _need_cgroup(self):
        cgm = self.cgroup_manager()
        if cgm is None:
            raise StateError(f"container {self.id} has no cgroup")
        return cgm

    def pause(self):
        status = self.status()
        if status not in (state.RUNNING, state.CREATED):
            raise StateError("container not running" if status != state.PAUSED else "container already paused")
        self._need_cgroup().freeze()

    def resume(self):
        if self.status() != state.PAUSED:
            raise StateError("container not paused")
        self._need_cgroup().thaw()

    def pids(self):
        if self.status() == state.STOPPED:
            return []
        cgm = self.cgroup_manager()
        return sorted(cgm.pids()) if cgm is not None else [self.pid]

    def update(self, resources, log):
        """Apply new resource limits and remember them in the state."""
        if self.status() == state.STOPPED:
            raise StateError("container not running")
        cgm = self._need_cgroup()
        saved = ((self.st.get("config") or {}).get("linux") or {}).get("resources") or {}
        if resources.get("memory") and (saved.get("memory") or {}).get("checkBeforeUpdate"):
            resources = dict(resources, memory=dict(resources["memory"], checkBeforeUpdate=True))
        cgm.set(resources)
        cfg = self.st.setdefault("config", {})
        lx = cfg.setdefault("linux", {})
        cur = lx.setdefault("resources", {})
        for k, v in resources.items():
            if isinstance(v, dict) and isinstance(cur.get(k), dict):
                cur[k].update(v)
            else:
                cur[k] = v
        self.dir.write(self.st)

    def stats(self):
        if self.status() == state.STOPPED:
            raise StateError("container not running")
        return self._need_cgroup().stats()

    def destroy(self, log):
        """stopped → gone: poststop hooks (failures only warn), then the state."""
        poststop = self._hooks("poststop")
        if poststop:
            from . import hooks as hookrun
            hookrun.run_all(poststop, self.hook_state(state.STOPPED), "poststop", log, fatal=False)
        cgm = self.cgroup_manager()
        if cgm is not None:
            # without a PID namespace of its own, the init's death does not end
            # the rest of the container: everything left in the cgroup goes
            kill_cgroup(cgm, signals.SIGKILL)
            cgm.destroy()
            for w in cgm.warnings:
                log.warn(w)
        if self.st.get("intel_rdt"):
            from . import intelrdt
            intelrdt.remove(self.st["intel_rdt"])
        if self.st.get("premounted") is not None:
            from . import rootfs
            rootfs.unmount_new(self.st["rootfs"], self.st["premounted"])
        self.dir.remove()
        self.close()

    def cgroup_manager(self):
        st = self.st.get("cgroup")
        if not st:
            return None
        from .cgroups.manager import load_manager
        return load_manager(st)


def wait_exit(pid):
    """Foreground `run`/`exec`: wait for our child `pid`; its exit code as runc's.
    The caller forwards signals to it (signals.Forwarder) from before it ran."""
    stay()
    while True:
        try:
            got, status = posix.waitpid(-1, 0)
        except ChildProcessError:
            return 0
        if got == pid:
            code = posix.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code
        # an orphan re-parented to us (we are a subreaper): reaped, keep waiting


def owner_name(uid):
    import pwd
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def list_containers(root):
    """[(Container-less oci_state dict with owner)] for every container under root."""
    out = []
    for name in state.list_names(root):
        try:
            c = Container.load(root, None, lock=False, name=name)
        except (NotExistError, PyruncError):
            continue
        try:
            uid = posix.fstat(c.dir.fd).st_uid
            out.append(c.oci_state(owner=owner_name(uid)))
        finally:
            c.close()
    return out


def kill_cgroup(cgm, sig, wait=True):
    """Signal every process of the cgroup. SIGKILL is sent frozen, as runc
    does, so nothing can fork past it; then wait until the cgroup is empty."""
    me = posix.getpid()
    if not any(pid != me for pid in cgm.pids()):
        return  # the usual case at delete: the PID namespace took everyone with it
    freeze = sig == signals.SIGKILL and cgm.freezer_probe() is not None
    if freeze:
        try:
            cgm.freeze()
        except PyruncError:
            freeze = False
    try:
        for pid in cgm.pids():
            if pid != me:
                try:
                    posix.kill(pid, sig)
                except ProcessLookupError:
                    pass
    finally:
        if freeze:
            cgm.thaw()
    if wait and sig == signals.SIGKILL:
        deadline = time.monotonic() + 10
        while cgm.pids() and time.monotonic() < deadline:
            time.sleep(0.002)
