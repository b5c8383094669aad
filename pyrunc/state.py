"""The state store: `<root>/<id>/state.json`, the exec fifo and the lock.

This module is on the hot path of every command (`state`, `kill`, `start`,
`delete`, `list`): it imports nothing heavy — `posix` instead of `os`,
whose import costs about 1 ms without `site` — and reads at most two small
files per container.

- A container directory is created with mkdir(2), which is atomic: of N
  concurrent `create`s of one ID exactly one gets it, and the others fail
  before touching anything.
- Every command that reads-modifies-writes takes an exclusive flock on the
  directory itself, so commands on one ID are serialised. A lock on a
  directory that has meanwhile been removed is detected (st_nlink == 0).
- state.json is written to a temporary name and renamed: readers see the
  old or the new state, never half of one.
- A directory with no state.json whose lock is free is the debris of a
  `create` that was killed (-9) before it finished: `collect_debris`
  undoes what its creating.json lists (cgroups, host mounts) and removes
  it, so a later command finds the environment as if nothing was attempted.
"""

import posix
import time

from . import fastjson
from .errors import ExistsError, NotExistError, PyruncError

STATE_FILE = "state.json"
FIFO = "exec.fifo"
# what a create has made outside its directory so far (cgroups, host mounts):
# if it is killed before writing STATE_FILE, collect_debris undoes it
UNDO_FILE = "creating.json"
DEFAULT_ROOT = "/run/pyrunc"

CREATING = "creating"
CREATED = "created"
RUNNING = "running"
PAUSED = "paused"
STOPPED = "stopped"

_MAX_ID = 1024
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def _join(a, b):
    # os.path is not imported on the hot path (os costs ~1 ms with -S)
    return a.rstrip("/") + "/" + b if a else b


def read_all(fd):
    """Everything until EOF (blocking fds)."""
    data = b""
    while True:
        chunk = posix.read(fd, 65536)
        if not chunk:
            return data
        data += chunk


def check_id(cid):
    """runc's validateID (`^[\\w+-.]+$`, not "." or ".."), plus a length cap."""
    if not cid or cid in (".", "..") or len(cid) > _MAX_ID or not _ID_CHARS.issuperset(cid):
        raise PyruncError("invalid container ID format")


def rfc3339nano(ns):
    """Go's time.RFC3339Nano in UTC: trailing zeros of the fraction dropped."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    if frac:
        base += "." + f"{frac:09d}".rstrip("0")
    return base + "Z"


def proc_start_time(pid):
    """(starttime in clock ticks, state letter; "X" once exiting) of a process, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm may hold spaces and parens: fields resume after the last ')'
    rest = data[data.rfind(b")") + 2:].split()
    try:
        # a process that has begun exiting (PF_EXITING) is no longer anyone's
        # container init: PID 1 of a namespace lingers there while the
        # kernel kills the rest of its namespace
        state = rest[0].decode() if not int(rest[6]) & 0x4 else "X"
        return int(rest[19]), state
    except (IndexError, ValueError):
        return None


def process_alive(pid, start_time):
    """True if `pid` is still the process started at `start_time` and not a zombie."""
    if not pid:
        return False
    st = proc_start_time(pid)
    if st is None or st[0] != start_time:
        return False
    # An exited init lingers as a zombie until its reaper gets to it (~1.7 s
    # on the reference VM); for the runtime it has stopped.
    return st[1] not in ("Z", "X", "x")


_NAME_MAX = 200


def dir_name(cid):
    """The state directory's name: the ID, or a digest of an ID too long for a file name.

    IDs may have up to 1024 characters, file names only 255 bytes. "=" is
    not an ID character, so a digest name never equals a real ID.
    """
    if len(cid) <= _NAME_MAX:
        return cid
    import hashlib
    return "=" + hashlib.sha256(cid.encode()).hexdigest()


class ContainerDir:
    """An open, optionally locked, container directory."""

    __slots__ = ("root", "id", "path", "fd")

    def __init__(self, root, cid, fd, name=None):
        self.root = root
        self.id = cid
        self.path = _join(root, name or dir_name(cid))
        self.fd = fd

    def lock(self, blocking=True):
        """Exclusive lock; False if not blocking and held elsewhere, or if the dir is gone."""
        import fcntl  # only the commands that lock pay for it
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        return posix.fstat(self.fd).st_nlink > 0

    def _load(self, name):
        try:
            fd = posix.open(name, posix.O_RDONLY | posix.O_CLOEXEC, dir_fd=self.fd)
        except FileNotFoundError:
            return None
        try:
            return read_all(fd)
        finally:
            posix.close(fd)

    def read(self):
        """The stored state dict, or None if there is none (creating, or debris)."""
        data = self._load(STATE_FILE)
        if data is None:
            return None
        try:
            return fastjson.loads(data)
        except ValueError:
            raise PyruncError(f"corrupt state file {self.path}/{STATE_FILE}") from None

    def write(self, state, name=STATE_FILE):
        tmp = f".{name}.{posix.getpid()}"
        fd = posix.open(tmp, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_CLOEXEC, 0o600, dir_fd=self.fd)
        try:
            posix.write(fd, fastjson.dumps(state).encode())
        finally:
            posix.close(fd)
        posix.rename(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    def read_undo(self):
        """What a create that died before committing had made (see UNDO_FILE), or None."""
        data = self._load(UNDO_FILE)
        try:
            return None if data is None else fastjson.loads(data)
        except ValueError:
            return None

    def has_fifo(self):
        try:
            posix.stat(FIFO, dir_fd=self.fd, follow_symlinks=False)
            return True
        except FileNotFoundError:
            return False

    def remove(self):
        """Remove the directory and what it holds (only files the runtime made)."""
        for name in posix.listdir(self.fd):
            try:
                posix.unlink(name, dir_fd=self.fd)
            except FileNotFoundError:
                pass
        try:
            posix.rmdir(self.path)
        except FileNotFoundError:
            pass

    def close(self):
        if self.fd is not None:
            posix.close(self.fd)
            self.fd = None


def ensure_root(root):
    """mkdir -p, mode 0700 (os.makedirs without `import os`)."""
    try:
        _mkdir_all(root.rstrip("/") or "/")
    except OSError as e:
        raise PyruncError(f"cannot create root directory {root}: {e.strerror.lower()}") from None


def _mkdir_all(path):
    try:
        posix.mkdir(path, 0o700)
    except FileExistsError:
        if not _is_dir(path):
            raise
    except FileNotFoundError:
        parent = path.rpartition("/")[0]
        if not parent or parent == path:
            raise
        _mkdir_all(parent)
        try:
            posix.mkdir(path, 0o700)
        except FileExistsError:
            if not _is_dir(path):
                raise


def _is_dir(path):
    from .hostpath import isdir  # create only: state and list never get here
    return isdir(path)


def create_dir(root, cid):
    """Claim `cid` atomically. Returns a locked ContainerDir.

    The directory is made under a private name, locked, and renamed into
    place with RENAME_NOREPLACE: nobody can ever see `<root>/<cid>` unlocked
    while its creator lives, so debris collection cannot race a create.
    """
    check_id(cid)
    ensure_root(root)
    from . import linux  # ctypes; create pays for it anyway

    name = dir_name(cid)
    tmp = _join(root, f".new-{name[:64]}-{posix.getpid()}")
    posix.mkdir(tmp, 0o711)
    fd = posix.open(tmp, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
    d = ContainerDir(root, cid, fd, name)
    try:
        d.lock()
        for attempt in (0, 1):
            try:
                linux.rename_noreplace(tmp, d.path)
                return d
            except FileExistsError:
                if attempt or not collect_debris(root, name):
                    break
        raise ExistsError(f"container with id exists: {cid}")
    except BaseException:
        try:
            posix.rmdir(tmp)
        except OSError:
            pass
        d.close()
        raise


def open_dir(root, cid, lock=True, name=None):
    """The directory of an existing container; NotExistError otherwise.

    `name` opens by directory name (what `list` sees) instead of by ID.
    """
    if name is None:
        check_id(cid)
        name = dir_name(cid)
    try:
        fd = posix.open(_join(root, name), posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        raise NotExistError() from None
    d = ContainerDir(root, cid, fd, name)
    if lock and not d.lock():
        d.close()
        raise NotExistError()
    return d


def collect_debris(root, name):
    """Remove `<root>/<name>` if it is an abandoned create; True if it was removed."""
    try:
        fd = posix.open(_join(root, name), posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC)
    except OSError:
        return False
    d = ContainerDir(root, None, fd, name)
    try:
        if not d.lock(blocking=False):
            return False
        try:
            posix.stat(STATE_FILE, dir_fd=d.fd)
            return False
        except FileNotFoundError:
            pass
        # the creator holds the lock for its whole life; a free lock and no
        # state means it died before committing (kill -9): undo what it made
        undo = d.read_undo()
        if undo is not None and not _undo(undo):
            return False  # its init is still on its way out: the next command retries
        d.remove()
        return True
    finally:
        d.close()


def _undo(undo):
    """Remove the cgroups and the host mounts of a killed create; False if they are still busy."""
    try:
        if undo.get("premounted") is not None:
            from . import rootfs
            rootfs.unmount_new(undo["rootfs"], undo["premounted"])
        if undo.get("cgroup"):
            from .cgroups.manager import load_manager
            from .container import kill_cgroup
            cgm = load_manager(undo["cgroup"])
            if cgm.exists():
                from .signals import SIGKILL
                kill_cgroup(cgm, SIGKILL)  # its init may still be on its way out
                cgm.destroy()
    except OSError:
        return False
    except PyruncError:
        return False
    return True


def list_names(root):
    """State directory names under root (IDs, or digests of long IDs)."""
    try:
        names = posix.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if not n.startswith("."))


def status_of(state, d):
    """runc's currentStatus: derived from the live init, never trusted from disk."""
    pid = state.get("pid", 0)
    if not process_alive(pid, state.get("init_start_time")):
        return STOPPED
    # paused before created, as runc: a created container can be paused too
    if state.get("paused_probe") and _is_frozen(state["paused_probe"]):
        return PAUSED
    if d.has_fifo():
        return CREATED
    return RUNNING


def _is_frozen(probe):
    try:
        with open(probe, "rb") as f:
            return f.read().strip() in (b"FROZEN", b"FREEZING", b"1")
    except OSError:
        return False


def write_pid_file(path, pid):
    """runc's createPidFile: bare decimal PID, no newline, renamed into place."""
    from . import hostpath
    from .linux import go_strerror  # create and exec, which load it anyway
    path = hostpath.abspath(path)
    head, tail = hostpath.split(path)
    tmp = hostpath.join(head, "." + tail)
    try:
        fd = posix.open(tmp, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_CLOEXEC, 0o666)
        try:
            posix.write(fd, str(pid).encode())
        finally:
            posix.close(fd)
        posix.rename(tmp, path)
    except OSError as e:
        raise PyruncError(f"write pid file {path}: {go_strerror(e.errno)}") from None
