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

import posix

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
