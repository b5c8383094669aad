"""The cgroup v1 fs driver (runc's libcontainer/cgroups/fs), hybrid-aware.

One directory per mounted v1 hierarchy (controllers mounted together, like
"cpu,cpuacct", share one), plus the container's directory in the unified
hierarchy on a hybrid host, as runc joins it. Hierarchies the kernel lists
but that are mounted nowhere are skipped; asking for a resource of a
controller that is not mounted is an error naming the field.

cgroupsPath: absolute paths are below each hierarchy's root; relative
ones (and the default, the container ID) below the runtime's own cgroup.
Directories are recorded as they are made, so `destroy` removes exactly
those: the container's cgroup and any parent it had to create.
"""

import posix
import time

from . import CGROUP_ROOT, hierarchies, host_mode, parse_proc_cgroup
from .manager import CgroupError, Join, Manager, read_file, walk, write_file

# runc's subsystem order: cpuset first (its files must be set before tasks join)
SUBSYSTEMS = ("cpuset", "devices", "memory", "cpu", "cpuacct", "pids", "blkio", "hugetlb",
              "net_cls", "net_prio", "perf_event", "freezer", "rdma", "name=systemd")
UNIFIED = ""  # the key of the unified hierarchy on a hybrid host


def clean_path(p):
    """filepath.Clean, keeping absolute/relative; '..' never climbs above the start."""
    absolute = p.startswith("/")
    parts = []
    for c in p.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            if parts:
                parts.pop()
            continue
        parts.append(c)
    s = "/".join(parts)
    return "/" + s if absolute else s


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def new(cgroups_path, cid):
    inner = clean_path(cgroups_path) if cgroups_path else cid
    if not inner or inner == "/":
        raise CgroupError(f"invalid cgroupsPath {cgroups_path!r}")
    own = parse_proc_cgroup(_read("/proc/self/cgroup"))
    paths = {}
    mounts = {}
    hybrid = host_mode() == "hybrid"
    for h in hierarchies(_read("/proc/self/mountinfo")):
        if h.fstype == "cgroup":
            names = [c for c in h.controllers if c in SUBSYSTEMS]
            if not names:
                continue
        elif hybrid and h.mountpoint == CGROUP_ROOT + "/unified":
            names = [UNIFIED]
        else:
            continue
        if inner.startswith("/"):
            base = h.mountpoint
        else:
            mine = own.get(h.key, "/")
            # our cgroup as seen inside this mount (its root may be a subtree)
            if h.root != "/" and (mine == h.root or mine.startswith(h.root.rstrip("/") + "/")):
                mine = mine[len(h.root.rstrip("/")):] or "/"
            base = h.mountpoint.rstrip("/") + mine
        path = base.rstrip("/") + "/" + inner.lstrip("/")
        for n in names:
            paths[n] = path
        mounts[path] = h.mountpoint
    return Fs1Manager(paths, [], mounts)


def load(st):
    return Fs1Manager(dict(st["paths"]), list(st.get("created") or ()), {})


class Fs1Manager(Manager):
    driver = "fs1"

    def __init__(self, paths, created, mounts):
        self.paths = paths
        self.created = created  # directories we made, parents before children
        self.mounts = mounts  # container dir -> its hierarchy's mount point (create only)

    # --- helpers ------------------------------------------------------------

    def _dirs(self):
        """Unique directories, cpuset's first."""
        seen = []
        for n in SUBSYSTEMS + (UNIFIED,):
            p = self.paths.get(n)
            if p and p not in seen:
                seen.append(p)
        return seen

    def path(self, subsystem):
        return self.paths.get(subsystem)

    def _need(self, subsystem, field):
        p = self.paths.get(subsystem)
        if not p:
            raise CgroupError(f"linux.resources.{field}: the {subsystem} cgroup controller "
                              "is not available on this host")
        return p

    # --- lifecycle ----------------------------------------------------------

    def apply(self, pid, resources=None):
        for d in self._dirs():
            self._mkdir(d)
            write_file(d + "/cgroup.procs", pid)

    def prepare(self, resources=None):
        for d in self._dirs():
            self._mkdir(d)
        return self._join(self.paths)

    def add(self, pid, sub=None):
        for d in dict.fromkeys(self._add_targets(sub).values()):
            write_file(d + "/cgroup.procs", pid)

    def prepare_add(self, sub=None):
        return self._join(self._add_targets(sub))

    @staticmethod
    def _join(targets):
        """The unified directory is born into (hybrid); every other one joined by its tasks file."""
        v2 = targets.get(UNIFIED)
        return Join(v2, [d for d in dict.fromkeys(targets.values()) if d != v2])

    def _add_targets(self, sub):
        """exec: hierarchy -> directory, `sub` applied; each must exist."""
        targets = {}
        for name in SUBSYSTEMS + (UNIFIED,):
            if self.paths.get(name):
                targets[name] = self.paths[name]
        if sub:
            ctrl, colon, rel = sub.partition(":")
            if not colon:
                ctrl, rel = None, sub
            rel = clean_path("/" + rel).lstrip("/")
            for name in list(targets):
                if ctrl is None or name in ctrl.split(","):
                    targets[name] = targets[name] + "/" + rel
        for d in dict.fromkeys(targets.values()):
            if not _isdir(d):
                raise CgroupError(f"cgroup {d} does not exist")
        return targets

    def _mkdir(self, d):
        mount = self.mounts.get(d) or _mount_of(d)
        todo = []
        cur = d
        while cur != mount and not _isdir(cur):
            todo.append(cur)
            cur = _dirname(cur)
        is_cpuset = d == self.paths.get("cpuset")
        for p in reversed(todo):
            try:
                posix.mkdir(p, 0o755)
            except FileExistsError:
                continue
            except OSError as e:
                raise CgroupError(f"create cgroup {p}: {e.strerror.lower()}") from None
            self.created.append(p)
            if is_cpuset:
                # a new cpuset cgroup starts empty and refuses tasks: inherit
                for f in ("cpuset.cpus", "cpuset.mems"):
                    if not read_file(f"{p}/{f}").strip():
                        write_file(f"{p}/{f}", read_file(f"{_dirname(p)}/{f}").strip())

    def exists(self):
        return any(_isdir(d) for d in self._dirs())

    def destroy(self):
        """Remove the container's cgroups (children first), then the parents we made."""
        for d in self._dirs():
            _rmtree(d)
        for p in reversed(self.created):
            try:
                posix.rmdir(p)
            except FileNotFoundError:
                pass
            except OSError:
                pass  # a parent another container now uses: not ours to remove any more

    def state(self):
        return {"driver": self.driver, "paths": dict(self.paths), "created": list(self.created)}

    # --- resources ----------------------------------------------------------

    def set(self, resources, devices=None):
        r = resources or {}
        if r.get("unified"):
            raise CgroupError("linux.resources.unified: unified resources need cgroup v2; "
                              "this host uses cgroup v1")
        cpu = r.get("cpu") or {}
        if cpu.get("cpus") or cpu.get("mems"):
            p = self._need("cpuset", "cpu.cpus")
            if cpu.get("cpus"):
                write_file(p + "/cpuset.cpus", cpu["cpus"])
            if cpu.get("mems"):
                write_file(p + "/cpuset.mems", cpu["mems"])
        if devices is not None and self.paths.get("devices"):
            from . import devices as devmod
            devmod.apply_v1(self.paths["devices"], devices)
        if r.get("memory"):
            self._set_memory(r["memory"])
        if cpu:
            self._set_cpu(cpu)
        pids = r.get("pids")
        if pids is not None and "limit" in pids:
            p = self._need("pids", "pids.limit")
            limit = pids["limit"]
            # runtime-spec v1.3: -1 means no limit; 0 is a (harsh) limit like any other
            if limit < -1:
                raise CgroupError(f"linux.resources.pids.limit: {limit} is invalid (use -1 for no limit)")
            write_file(p + "/pids.max", "max" if limit == -1 else limit)
        if r.get("blockIO"):
            self._set_blkio(r["blockIO"])
        for h in r.get("hugepageLimits") or ():
            p = self._need("hugetlb", "hugepageLimits")
            write_file(f"{p}/hugetlb.{h['pageSize']}.limit_in_bytes", h["limit"])
            # config-linux.md v1.3: the limit is on reservations where the kernel has them
            rsvd = f"{p}/hugetlb.{h['pageSize']}.rsvd.limit_in_bytes"
            if _exists(rsvd):
                write_file(rsvd, h["limit"])
        net = r.get("network") or {}
        if "classID" in net:
            write_file(self._need("net_cls", "network.classID") + "/net_cls.classid", net["classID"])
        for prio in net.get("priorities") or ():
            write_file(self._need("net_prio", "network.priorities") + "/net_prio.ifpriomap",
                       f"{prio['name']} {prio['priority']}")
        for dev, lim in (r.get("rdma") or {}).items():
            parts = [dev]
            if "hcaHandles" in lim:
                parts.append(f"hca_handle={lim['hcaHandles']}")
            if "hcaObjects" in lim:
                parts.append(f"hca_object={lim['hcaObjects']}")
            write_file(self._need("rdma", "rdma") + "/rdma.max", " ".join(parts))

    def _set_memory(self, m):
        p = self._need("memory", "memory")
        limit = m.get("limit", 0)
        swap = m.get("swap", 0)
        memsw = p + "/memory.memsw.limit_in_bytes"
        if limit == -1 and not swap and _exists(memsw):
            swap = -1
        if m.get("checkBeforeUpdate") and limit > 0:
            usage = int(read_file(p + "/memory.usage_in_bytes"))
            if limit < usage:
                raise CgroupError(f"linux.resources.memory.limit: {limit} is below the current "
                                  f"usage {usage}")
        if swap and not _exists(memsw):
            raise CgroupError("linux.resources.memory.swap: swap accounting is not enabled on this host")
        # the kernel wants memory <= memory+swap at every step: raise memsw first when growing
        if limit and swap:
            cur = int(read_file(p + "/memory.limit_in_bytes"))
            if swap == -1 or cur < swap:
                write_file(memsw, swap)
                self._set_mem_limit(p, limit)
            else:
                self._set_mem_limit(p, limit)
                write_file(memsw, swap)
        else:
            if limit:
                self._set_mem_limit(p, limit)
            if swap:
                write_file(memsw, swap)
        if m.get("reservation"):
            write_file(p + "/memory.soft_limit_in_bytes", m["reservation"])
        if m.get("disableOOMKiller"):
            write_file(p + "/memory.oom_control", 1)
        sw = m.get("swappiness")
        if sw is not None and sw != -1:
            if not 0 <= sw <= 100:
                raise CgroupError(f"linux.resources.memory.swappiness: {sw} is outside 0-100")
            write_file(p + "/memory.swappiness", sw)
        if m.get("useHierarchy") is False:
            # hierarchy is always on in current kernels; asking for "off" cannot be honoured
            if read_file(p + "/memory.use_hierarchy").strip() != "0":
                raise CgroupError("linux.resources.memory.useHierarchy: false is not supported by this kernel")

    def _set_mem_limit(self, p, limit):
        try:
            write_file(p + "/memory.limit_in_bytes", limit)
        except CgroupError:
            usage = read_file(p + "/memory.usage_in_bytes").strip()
            peak = read_file(p + "/memory.max_usage_in_bytes").strip()
            raise CgroupError(f"unable to set memory limit to {limit} (current usage: {usage}, "
                              f"peak usage: {peak})") from None

    def _set_cpu(self, c):
        keys = ("shares", "quota", "period", "burst", "realtimeRuntime", "realtimePeriod", "idle")
        if not any(k in c for k in keys):
            return
        p = self._need("cpu", "cpu")
        if c.get("shares"):
            write_file(p + "/cpu.shares", c["shares"])
            got = int(read_file(p + "/cpu.shares"))
            if got != c["shares"]:
                raise CgroupError(f"linux.resources.cpu.shares: the kernel clamped {c['shares']} to {got}")
        # the period first: a quota is checked against it
        if c.get("period"):
            write_file(p + "/cpu.cfs_period_us", c["period"])
        if c.get("quota"):
            write_file(p + "/cpu.cfs_quota_us", c["quota"])
        if c.get("burst") is not None:
            write_file(p + "/cpu.cfs_burst_us", c["burst"])
        if c.get("realtimePeriod"):
            write_file(p + "/cpu.rt_period_us", c["realtimePeriod"])
        if c.get("realtimeRuntime"):
            write_file(p + "/cpu.rt_runtime_us", c["realtimeRuntime"])
        if c.get("idle") is not None:
            write_file(p + "/cpu.idle", c["idle"])

    def _set_blkio(self, b):
        p = self._need("blkio", "blockIO")

        def weight_file(name):
            # no blkio.weight without CFQ: BFQ's file takes the same values
            for f in (f"blkio.{name}", f"blkio.bfq.{name}"):
                if _exists(f"{p}/{f}"):
                    return f"{p}/{f}"
            raise CgroupError(f"linux.resources.blockIO: this kernel has no blkio.{name} file")

        if b.get("weight"):
            write_file(weight_file("weight"), b["weight"])
        if b.get("leafWeight"):
            write_file(p + "/blkio.leaf_weight", b["leafWeight"])
        for d in b.get("weightDevice") or ():
            if d.get("weight"):
                write_file(weight_file("weight_device"), f"{d['major']}:{d['minor']} {d['weight']}")
            if d.get("leafWeight"):
                write_file(p + "/blkio.leaf_weight_device", f"{d['major']}:{d['minor']} {d['leafWeight']}")
        for key, f in (("throttleReadBpsDevice", "read_bps_device"), ("throttleWriteBpsDevice", "write_bps_device"),
                       ("throttleReadIOPSDevice", "read_iops_device"), ("throttleWriteIOPSDevice", "write_iops_device")):
            for d in b.get(key) or ():
                write_file(f"{p}/blkio.throttle.{f}", f"{d['major']}:{d['minor']} {d['rate']}")

    # --- processes and freezing ---------------------------------------------

    def pids(self):
        for n in ("pids", "devices", "memory", "freezer", "cpu"):
            if self.paths.get(n):
                return _procs_under(self.paths[n])
        dirs = self._dirs()
        return _procs_under(dirs[0]) if dirs else []

    def freeze(self):
        p = self._need("freezer", "freezer") + "/freezer.state"
        # runc: FREEZING can linger while tasks are in uninterruptible sleep; retry
        for attempt in range(1000):
            write_file(p, "FROZEN")
            if read_file(p).strip() == "FROZEN":
                return
            if attempt % 25 == 24:
                write_file(p, "THAWED")
            time.sleep(0.001)
        write_file(p, "THAWED")
        raise CgroupError("unable to freeze the container: processes keep the cgroup FREEZING")

    def thaw(self):
        write_file(self._need("freezer", "freezer") + "/freezer.state", "THAWED")

    def frozen(self):
        p = self.paths.get("freezer")
        return bool(p) and read_file(p + "/freezer.state").strip() == "FROZEN"

    def freezer_probe(self):
        p = self.paths.get("freezer")
        return (p + "/freezer.state") if p else None

    # --- stats --------------------------------------------------------------

    def oom_kills(self):
        p = self.paths.get("memory")
        if not p:
            return 0
        for line in read_file(p + "/memory.oom_control").splitlines():
            k, _, v = line.partition(" ")
            if k == "oom_kill":
                return int(v)
        return 0

    def stats(self):
        from . import stats
        return stats.v1(self.paths)


def _mount_of(d):
    """The hierarchy mount point holding d (stop point for mkdir -p)."""
    best = CGROUP_ROOT
    for h in hierarchies(_read("/proc/self/mountinfo")):
        if d.startswith(h.mountpoint.rstrip("/") + "/") and len(h.mountpoint) > len(best):
            best = h.mountpoint
    return best


def _isdir(p):
    try:
        return posix.stat(p).st_mode & 0o170000 == 0o040000
    except OSError:
        return False


def _exists(p):
    try:
        posix.stat(p)
        return True
    except OSError:
        return False


def _dirname(p):
    return p.rstrip("/").rpartition("/")[0] or "/"


def _procs_under(d):
    out = []
    for root in walk(d, topdown=True):
        try:
            data = read_file(root + "/cgroup.procs")
        except CgroupError:
            continue
        out.extend(int(x) for x in data.split())
    return out


def _rmtree(d):
    """rmdir d and its child cgroups, deepest first; EBUSY (tasks leaving) is retried."""
    if not _isdir(d):
        return
    for root in walk(d, topdown=False):
        _rmdir_retry(root)


def _rmdir_retry(p):
    delay = 0.001
    for _ in range(12):
        try:
            posix.rmdir(p)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != 16:  # EBUSY
                raise CgroupError(f"remove cgroup {p}: {e.strerror.lower()}") from None
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
    raise CgroupError(f"remove cgroup {p}: device or resource busy")
