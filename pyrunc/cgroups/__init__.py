"""cgroup discovery shared by the drivers and by the container's cgroupfs mount.

Only parsing lives here: which hierarchies are mounted where, and where a
process sits in each. Hierarchies that /proc/<pid>/cgroup lists but that
are mounted nowhere (hugetlb bound to v1 on a hybrid host) are tolerated:
they simply have no mount point.

The driver interface is in `manager`; the drivers are `fs1`, `fs2` and
`systemd`.
"""

import posix


class Hierarchy:
    __slots__ = ("mountpoint", "root", "fstype", "controllers")

    def __init__(self, mountpoint, root, fstype, controllers):
        self.mountpoint = mountpoint
        self.root = root
        self.fstype = fstype
        self.controllers = controllers  # tuple, e.g. ("cpu", "cpuacct") or ("name=systemd",)

    @property
    def key(self):
        return ",".join(sorted(self.controllers))

    def __repr__(self):
        return f"Hierarchy({self.mountpoint!r}, {self.fstype}, {self.controllers})"


def _unescape(s):
    # mountinfo escapes space, tab, newline and backslash as \ooo
    if "\\" not in s:
        return s
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) + 0 and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def parse_mountinfo(data):
    """[(mount_id, parent_id, root, mountpoint, mount_options, fstype, source, super_options)]"""
    out = []
    for line in data.decode(errors="replace").splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        f = left.split()
        r = right.split()
        if len(f) < 6 or len(r) < 3:
            continue
        out.append((int(f[0]), int(f[1]), _unescape(f[3]), _unescape(f[4]), f[5], r[0],
                    _unescape(r[1]), r[2]))
    return out


def hierarchies(mountinfo):
    """The cgroup hierarchies mounted in a mount namespace, first mount of each wins."""
    seen = {}
    for _mid, _pid, root, mnt, _mopts, fstype, _src, sopts in parse_mountinfo(mountinfo):
        if fstype == "cgroup":
            ctrls = tuple(o for o in sopts.split(",") if o not in ("rw", "ro") and not o.startswith("xattr")
                          and o not in ("clone_children", "noprefix", "cpuset_v2_mode")
                          and not o.startswith("release_agent="))
        elif fstype == "cgroup2":
            ctrls = ()
        else:
            continue
        h = Hierarchy(mnt, root, fstype, ctrls)
        seen.setdefault((fstype, h.key), h)
    return list(seen.values())


def parse_proc_cgroup(data):
    """{controllers key ('' for v2): path} from /proc/<pid>/cgroup."""
    out = {}
    for line in data.decode(errors="replace").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, ctrls, path = parts
        out[",".join(sorted(c for c in ctrls.split(",") if c))] = path
    return out


def is_v2_only(hs):
    return bool(hs) and all(h.fstype == "cgroup2" for h in hs)


CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP2_SUPER_MAGIC = 0x63677270
_mode = None


def host_mode():
    """"v2" (unified), "hybrid" (v1 controllers plus an empty cgroup2 at
    /sys/fs/cgroup/unified) or "v1", as runc's IsCgroup2UnifiedMode decides."""
    global _mode
    if _mode is None:
        from .. import linux
        def magic(path):
            try:
                fd = posix.open(path, posix.O_PATH | posix.O_CLOEXEC)
            except OSError:
                return None
            try:
                return linux.fstatfs(fd)[0]
            finally:
                posix.close(fd)
        if magic(CGROUP_ROOT) == CGROUP2_SUPER_MAGIC:
            _mode = "v2"
        elif magic(CGROUP_ROOT + "/unified") == CGROUP2_SUPER_MAGIC:
            _mode = "hybrid"
        else:
            _mode = "v1"
    return _mode


class _Warmup:
    __slots__ = ("lock",)

    def wait(self):
        self.lock.acquire()
        self.lock.release()


def warm_up():
    """Start paying, on a thread, the RCU grace period of the first cgroup attach.

    Moving a task between cgroups takes cgroup_threadgroup_rwsem for
    writing, and the first writer after a quiet spell waits for an RCU
    grace period: 7–20 ms on the reference VM, a third of a whole `run`.
    Later writers within the next grace period pass straight through. The
    fs drivers avoid the move altogether (cgroups.manager.Join); with the
    systemd driver, systemd moves the init, so `create --systemd-cgroup`
    starts by moving itself into the cgroup it is already in (a no-op move
    that takes the lock) on a thread, while the main thread imports and
    validates; `wait()` before forking. Any failure is harmless: the real
    move just pays the wait itself.
    """
    import _thread
    w = _Warmup()
    w.lock = _thread.allocate_lock()
    w.lock.acquire()

    def run():
        try:
            with open("/proc/self/cgroup", "rb") as f:
                for line in f:
                    _, ctrls, path = line.decode().rstrip("\n").split(":", 2)
                    name = ctrls.split(",")[0] if ctrls else "unified"
                    if name.startswith("name="):
                        name = name[5:]
                    base = CGROUP_ROOT if (not ctrls and host_mode() == "v2") else f"{CGROUP_ROOT}/{name}"
                    try:
                        fd = posix.open(f"{base}{path.rstrip('/')}/cgroup.procs", posix.O_WRONLY | posix.O_CLOEXEC)
                    except OSError:
                        continue
                    try:
                        posix.write(fd, str(posix.getpid()).encode())
                    finally:
                        posix.close(fd)
                    return
        except Exception:  # noqa: BLE001 - an optimisation only
            pass
        finally:
            w.lock.release()

    _thread.start_new_thread(run, ())
    return w
