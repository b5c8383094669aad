"""The one interface every cgroup driver implements (runc's cgroups.Manager).

Drivers: `fs1` (cgroup v1, and v1 on hybrid hosts), `fs2` (unified v2),
`systemd` (transient scopes over D-Bus, on either). `new_manager` picks
one from the host and `--systemd-cgroup`; `load_manager` rebuilds the
same one from what `Manager.state()` stored in state.json, so later
commands (delete, pause, update, ps, events, kill --all) never re-read
config.json.

A manager only ever creates, writes and removes the container's own
cgroups: never the host's hierarchies or another container's.
"""

import errno
import posix
import time

from ..errors import ContainerError


class CgroupError(ContainerError):
    """A cgroup operation failed; the message names the file and the value.

    `errno` is the kernel's errno when there was one (EBUSY, EINVAL, ...).
    """

    def __init__(self, msg, errno=None):
        super().__init__(msg)
        self.errno = errno


def write_file(path, value):
    """Write one value to a cgroup file; errors name the file and the value."""
    data = value if isinstance(value, bytes) else str(value).encode()
    try:
        fd = posix.open(path, posix.O_WRONLY | posix.O_CLOEXEC)
    except OSError as e:
        raise CgroupError(f"open {path}: {_err(e)}", e.errno) from None
    try:
        posix.write(fd, data)
    except OSError as e:
        raise CgroupError(f"write {value!r} to {path}: {_err(e)}", e.errno) from None
    finally:
        posix.close(fd)


def write_procs(path, pid):
    """Move `pid` through a cgroup.procs file. EINVAL while the task is still
    TASK_NEW (just forked) is retried, as runc does."""
    for attempt in range(5):
        try:
            write_file(path, pid)
            return
        except CgroupError as e:
            if e.errno != errno.EINVAL or attempt == 4:
                raise
        time.sleep(0.03)


class Join:
    """How a process not forked yet enters the container's cgroups by itself.

    A parent writing the child's pid to cgroup.procs takes the kernel's
    global cgroup_threadgroup_rwsem for writing, which waits for an RCU
    grace period (7-20 ms on the reference VM; runc pays it). Two ways in
    skip that lock: a process born in its cgroup v2 directory
    (`clone_fd`, see linux.fork_into_cgroup), and a thread writing "0" -
    itself - to a v1 `tasks` file, which for a single-threaded process
    moves the whole process. The child calls enter() before anything else;
    `procs` is the v2 cgroup.procs the parent writes instead when the
    kernel could not clone into it (move()).
    """

    __slots__ = ("clone_fd", "tasks", "procs")

    def __init__(self, v2_dir=None, v1_dirs=()):
        self.clone_fd = None
        self.tasks = []  # (path, fd)
        self.procs = None
        try:
            if v2_dir is not None:
                self.procs = v2_dir + "/cgroup.procs"
                self.clone_fd = _open(v2_dir, posix.O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC)
            for d in v1_dirs:
                path = d + "/tasks"
                self.tasks.append((path, _open(path, posix.O_WRONLY | posix.O_CLOEXEC)))
        except BaseException:
            self.close()
            raise

    def fds(self):
        """What the child must keep open until enter()."""
        return [fd for _, fd in self.tasks]

    def enter(self):
        """In the new, single-threaded child: join every v1 hierarchy."""
        while self.tasks:
            path, fd = self.tasks.pop(0)
            try:
                posix.write(fd, b"0")
            except OSError as e:
                raise CgroupError(f"join cgroup {path}: {_err(e)}", e.errno) from None
            finally:
                posix.close(fd)

    def fork(self, log, after_failed_clone=None):
        """posix.fork(), the child born in the v2 directory when there is one.

        `after_failed_clone` runs before the fallback fork: a clone the kernel
        refused may have spent the first pid of a new PID namespace, and the
        kernel then refuses every later fork into it (the caller makes a new one).
        """
        if self.clone_fd is not None:
            from .. import linux
            try:
                pid = linux.fork_into_cgroup(self.clone_fd)
            except OSError as e:
                log.debug(f"{e}: the child is moved into its cgroup instead")
                if after_failed_clone is not None:
                    after_failed_clone()
            else:
                self.procs = None  # born there: nothing left to move
                return pid
        return posix.fork()

    def by_itself(self):
        """Whether the child is in every cgroup once it has called enter()."""
        return self.procs is None

    def move(self, pid):
        """The parent's part when the child was not born in its v2 cgroup."""
        if self.procs is not None:
            write_procs(self.procs, pid)

    def close(self):
        for _, fd in self.tasks:
            posix.close(fd)
        self.tasks = []
        if self.clone_fd is not None:
            posix.close(self.clone_fd)
            self.clone_fd = None


def _open(path, flags):
    try:
        return posix.open(path, flags)
    except OSError as e:
        raise CgroupError(f"open {path}: {_err(e)}", e.errno) from None


def read_file(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode()
    except OSError as e:
        raise CgroupError(f"read {path}: {_err(e)}", e.errno) from None


def _err(e):
    from ..linux import go_strerror
    return go_strerror(e.errno) if e.errno else str(e)


class Manager:
    """The container's cgroup(s). Subclasses implement every method."""

    driver = ""
    # what runc would log at warning level (systemd driver); the caller prints them
    warnings = ()

    def apply(self, pid, resources=None):
        """Create the cgroup(s) and move `pid` into them.

        `resources` (the config's linux.resources) lets a driver prepare what
        must exist before the move (v2: threaded parents, controllers).
        """
        raise NotImplementedError

    def add(self, pid, sub=None):
        """Move `pid` into the existing cgroup(s) (exec); `sub` is runc exec's
        --cgroup "[controller:]path": a sub-cgroup that must already exist."""
        raise NotImplementedError

    def prepare(self, resources=None):
        """create: make the cgroup(s) before the fork and return the Join the
        child enters them by; None when this driver can only move a running
        process (then apply)."""
        return None

    def prepare_add(self, sub=None):
        """exec: the Join into the existing cgroup(s) that add(pid, sub) would
        move a process into, or None (then add)."""
        return None

    def set(self, resources, devices=None):
        """Apply runtime-spec linux.resources (a validated dict); also used by `update`.

        `devices`: device cgroup rules (cgroups.devices.Rule) to enforce, or
        None to leave the device rules as they are (update).
        """
        raise NotImplementedError

    def pids(self):
        """Every process in the container's cgroup(s), recursively."""
        raise NotImplementedError

    def freeze(self):
        raise NotImplementedError

    def thaw(self):
        raise NotImplementedError

    def frozen(self):
        raise NotImplementedError

    def stats(self):
        """runc's `events --stats` "data" object (cpu, memory, pids, blkio, hugetlb)."""
        raise NotImplementedError

    def oom_kills(self):
        """How many processes the OOM killer has killed in the cgroup so far."""
        raise NotImplementedError

    def destroy(self):
        """Remove the cgroup(s); the processes in them must already be gone."""
        raise NotImplementedError

    def exists(self):
        raise NotImplementedError

    def state(self):
        """JSON-able dict for state.json; `load_manager` turns it back into a Manager."""
        raise NotImplementedError

    def freezer_probe(self):
        """The file `state` reads to tell paused from running ("FROZEN" or "1"), or None."""
        raise NotImplementedError


def new_manager(cgroups_path, cid, systemd=False, annotations=None):
    """The driver for this host and flag, for the container `cid`.

    `annotations`: the systemd driver turns org.systemd.property.* ones into
    unit properties, as runc does.
    """
    from . import host_mode
    if systemd:
        from . import systemd as drv
        return drv.new(cgroups_path, cid, annotations)
    if host_mode() == "v2":
        from . import fs2 as drv
    else:
        from . import fs1 as drv
    return drv.new(cgroups_path, cid)


def load_manager(st):
    """The manager described by Manager.state(), or None when there was none."""
    if not st:
        return None
    kind = st.get("driver")
    if kind == "fs1":
        from . import fs1 as drv
    elif kind == "fs2":
        from . import fs2 as drv
    elif kind == "systemd":
        from . import systemd as drv
    else:
        raise CgroupError(f"unknown cgroup driver {kind!r} in the container state")
    return drv.load(st)


def walk(d, topdown=True):
    """d and its sub-directories (cgroups), parents first or children first.

    Not os.walk: the drivers are loaded by create, delete and `kill --all`,
    which import no `os` (~2.5 ms).
    """
    try:
        subs = [e.path for e in posix.scandir(d) if e.is_dir(follow_symlinks=False)]
    except OSError:
        subs = []
    if topdown:
        yield d
    for sub in subs:
        yield from walk(sub, topdown)
    if not topdown:
        yield d
