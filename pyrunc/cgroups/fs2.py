"""The cgroup v2 fs driver (runc v1.1.5 libcontainer/cgroups/fs2).

One directory in the unified hierarchy at /sys/fs/cgroup. cgroupsPath as
runc's fs2 reads it: absolute below /sys/fs/cgroup; relative (and the
default, the container ID) below the *parent* of the runtime's own cgroup
from /proc/self/cgroup, because the runtime's own cgroup has processes in it
and so could not enable domain controllers for a child.

`apply` makes the directories, enabling every available controller in the
cgroup.subtree_control of each ancestor (runc CreateCgroupPath), and records
the directories it made so `destroy` removes those and nothing else. `set`
writes runtime-spec linux.resources in runc's order and file names (pids,
memory, io, cpu, devices, cpuset, hugetlb, rdma, unified), after checking
every value first, so an invalid field fails before anything is written.
`set` is also `update`: absent fields leave their files alone, and a half
given cpu quota/period or a swap without a memory limit is completed from
what the cgroup holds now, as runc completes it from its saved config.
"""

import errno
import posix
import time

from . import CGROUP_ROOT, convert
from .manager import CgroupError, Join, Manager, read_file, walk, write_file, write_procs
from .. import hostpath

PREFIX = convert.PREFIX
FREEZE_TIMEOUT = 10.0  # runc waitFrozen: 1000 polls of 10 ms
DESTROY_TIMEOUT = 2.0  # tasks still leaving after SIGKILL keep rmdir busy (EBUSY)


def _errno(e):
    """The errno behind a CgroupError from manager.read_file/write_file.

    They raise `from None` inside the `except OSError`, which hides the
    OSError from tracebacks but still keeps it as __context__."""
    return getattr(e, "errno", None) or getattr(e.__context__, "errno", None)


def _strerror(e):
    from ..linux import go_strerror
    return go_strerror(e.errno) if e.errno else str(e)


# --- paths --------------------------------------------------------------------

def default_dir_path(cgroups_path, cid, proc_self_cgroup=None):
    """runc fs2 defaultDirPath with Path = cgroupsPath, Name = the container ID."""
    inner = convert.clean_path(cgroups_path or "")
    if not inner:
        inner = convert.clean_path(cid or "")
    if inner in ("", ".", "/"):
        # runc would put the container in the cgroup root or in the runtime's
        # parent cgroup, and its delete would then rmdir other cgroups
        raise CgroupError(f"linux.cgroupsPath: {cgroups_path!r} names no cgroup of the container's own")
    if inner.startswith("/"):
        return convert.go_clean(CGROUP_ROOT + inner)
    if proc_self_cgroup is None:
        with open("/proc/self/cgroup", "rb") as f:
            proc_self_cgroup = f.read().decode()
    own = hostpath.dirname(convert.own_cgroup_v2(proc_self_cgroup))
    return convert.go_clean(f"{CGROUP_ROOT}/{own}/{inner}")


def new(cgroups_path, cid):
    return Fs2Manager(default_dir_path(cgroups_path, cid))


def _inside(path):
    return (isinstance(path, str) and path.startswith(CGROUP_ROOT + "/")
            and convert.go_clean(path) == path)


def load(st):
    path = st.get("path")
    if not _inside(path):
        raise CgroupError(f"invalid cgroup v2 path {path!r} in the container state")
    # only the cgroup itself and its ancestors may be removed later
    created = [p for p in st.get("created") or () if _inside(p) and (p == path or path.startswith(p + "/"))]
    return Fs2Manager(path, created)


def _contains_domain_controller(r):
    """runc containsDomainController: memory, io, cpu or hugetlb asked for.
    Unknown resources (None) count as yes: better an error than silently
    switching a cgroup to threaded mode."""
    if r is None:
        return True
    m = r.get("memory") or {}
    b = r.get("blockIO") or {}
    c = r.get("cpu") or {}
    io_lists = ("weightDevice",) + tuple(k for k, _ in convert.IO_MAX_KEYS)
    return bool(any(m.get(k) for k in ("limit", "reservation", "swap"))
                or b.get("weight") or any(b.get(k) for k in io_lists)
                or any(c.get(k) for k in ("shares", "quota", "period"))
                or c.get("idle") is not None or c.get("burst") is not None
                or r.get("hugepageLimits"))


class Fs2Manager(Manager):
    driver = "fs2"

    def __init__(self, path, created=()):
        self.path = path
        self.created = list(created)  # directories apply made, parents first
        self._ctrls = None

    def __repr__(self):
        return f"Fs2Manager({self.path!r})"

    def _file(self, name):
        return f"{self.path}/{name}"

    def controllers(self):
        """cgroup.controllers of the container's cgroup (runc getControllers)."""
        if self._ctrls is None:
            self._ctrls = frozenset(read_file(self._file("cgroup.controllers")).split())
        return self._ctrls

    # --- lifecycle ------------------------------------------------------------

    def add(self, pid, sub=None):
        """exec: move `pid` into the container's cgroup, or an existing sub-cgroup of it
        (runc's --cgroup: on v2 a plain path, or "controller:path" where the path is used)."""
        write_file(self._add_target(sub) + "/cgroup.procs", pid)

    def prepare_add(self, sub=None):
        return Join(self._add_target(sub))

    def _add_target(self, sub):
        d = self.path
        if sub:
            _ctrl, colon, rel = sub.rpartition(":")
            rel = rel if colon else sub
            parts = [c for c in rel.split("/") if c not in ("", ".")]
            if ".." in parts:
                raise CgroupError(f"--cgroup {sub!r}: '..' is not allowed")
            d = "/".join([self.path] + parts)
        if not hostpath.isdir(d):
            raise CgroupError(f"cgroup {d} does not exist")
        return d

    def prepare(self, resources=None):
        self.apply(-1, resources)
        return Join(self.path)

    def apply(self, pid, resources=None):
        """Create the cgroup (runc CreateCgroupPath) and move `pid` (-1: none) in."""
        for attempt in range(5):
            try:
                self._create_path(resources)
                break
            except FileNotFoundError:
                # an ancestor vanished between our EEXIST and the child's mkdir:
                # another container's delete removed a parent it had made
                if attempt == 4:
                    raise CgroupError(f"create cgroup {self.path}: an ancestor keeps disappearing") from None
        if pid is None or pid == -1:
            return
        write_procs(self._file("cgroup.procs"), pid)

    def _create_path(self, resources):
        if not _inside(self.path):
            raise CgroupError(f"invalid cgroup path {self.path}")
        enable = " ".join("+" + c for c in read_file(CGROUP_ROOT + "/cgroup.controllers").split())
        elems = self.path[len(CGROUP_ROOT) + 1:].split("/")
        made = []
        cur = CGROUP_ROOT
        try:
            for i in range(len(elems) + 1):
                if i > 0:
                    cur = f"{cur}/{elems[i - 1]}"
                    try:
                        posix.mkdir(cur, 0o755)
                        made.append(cur)
                    except FileExistsError:
                        pass
                    except FileNotFoundError:
                        raise
                    except OSError as e:
                        raise CgroupError(f"mkdir {cur}: {_strerror(e)}") from None
                    self._check_type(cur, resources)
                if i < len(elems) and enable:
                    # every available controller, so children can use any of them;
                    # one by one when the lot fails, ignoring what cannot be enabled
                    # (set then reports the missing file of a controller asked for)
                    try:
                        write_file(cur + "/cgroup.subtree_control", enable)
                    except CgroupError:
                        for c in enable.split():
                            try:
                                write_file(cur + "/cgroup.subtree_control", c)
                            except CgroupError:
                                pass
        except BaseException:
            for d in reversed(made):
                try:
                    posix.rmdir(d)
                except OSError:
                    pass
            raise
        self.created.extend(made)

    @staticmethod
    def _check_type(cur, resources):
        try:
            kind = read_file(cur + "/cgroup.type").strip()
        except CgroupError:
            return
        if kind == "domain invalid":
            # a cgroup under an already populated one: only thread-aware
            # controllers can work, and only after switching it to threaded
            if _contains_domain_controller(resources):
                raise CgroupError(f"cannot enter cgroupv2 {cur!r} with domain controllers -- "
                                  "it is in an invalid state")
            try:
                write_file(cur + "/cgroup.type", "threaded")
            except CgroupError:
                pass
        elif kind in ("domain threaded", "threaded"):
            if _contains_domain_controller(resources):
                raise CgroupError(f"cannot enter cgroupv2 {cur!r} with domain controllers -- "
                                  f"it is in {kind} mode")

    def exists(self):
        return hostpath.exists(self.path)

    def state(self):
        return {"driver": self.driver, "path": self.path, "created": list(self.created)}

    def destroy(self):
        """Remove the cgroup, child cgroups first (runc RemovePath), retrying
        while exiting tasks keep it busy; then the ancestors `apply` made, if
        nobody else uses them by now."""
        deadline = time.monotonic() + DESTROY_TIMEOUT
        delay = 0.001
        while True:
            try:
                _remove_tree(self.path)
                break
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() >= deadline:
                    left = _procs_under(self.path)
                    more = f" (processes still in it: {' '.join(map(str, left[:10]))})" if left else ""
                    raise CgroupError(f"remove cgroup {e.filename or self.path}: {_strerror(e)}{more}") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        for d in reversed(self.created):
            if d == self.path:
                continue
            try:
                posix.rmdir(d)
            except OSError:
                pass  # another container's cgroup lives there now: not ours to remove
        self.created = []

    # --- processes and freezing ----------------------------------------------

    def pids(self):
        return _procs_under(self.path)

    def freezer_probe(self):
        return self._file("cgroup.freeze")

    def freeze(self):
        p = self._file("cgroup.freeze")
        if not hostpath.exists(p):
            raise CgroupError(f"freezer not supported: {p} does not exist (kernel < 5.2)")
        write_file(p, "1")
        try:
            self._wait_frozen()
        except CgroupError:
            # do not leave it half frozen: a later thaw could not tell
            try:
                write_file(p, "0")
            except CgroupError:
                pass
            raise

    def thaw(self):
        p = self._file("cgroup.freeze")
        if not hostpath.exists(p):
            return  # nothing can be frozen without the file (runc does the same)
        write_file(p, "0")
        got = read_file(p).strip()
        if got != "0":
            raise CgroupError(f'expected "cgroup.freeze" to be in state "0" but was in {got!r}')

    def frozen(self):
        try:
            v = read_file(self._file("cgroup.freeze")).strip()
        except CgroupError as e:
            if _errno(e) in (errno.ENOENT, errno.ENODEV):
                return False
            raise
        if v == "0":
            return False
        if v != "1":
            raise CgroupError(f'unknown "cgroup.freeze" state: {v!r}')
        # asked to freeze: frozen once every task has stopped (runc waitFrozen)
        self._wait_frozen()
        return True

    def _wait_frozen(self):
        ev = self._file("cgroup.events")
        deadline = time.monotonic() + FREEZE_TIMEOUT
        delay = 0.0005
        while True:
            events = convert.parse_keyed(read_file(ev))
            if "frozen" not in events:
                raise CgroupError(f"{ev} has no \"frozen\" entry (kernel < 5.2)")
            if events["frozen"] == 1:
                return
            if time.monotonic() >= deadline:
                raise CgroupError(f"timeout of {FREEZE_TIMEOUT:g}s reached waiting for the cgroup to freeze")
            time.sleep(delay)
            delay = min(delay * 2, 0.01)

    # --- stats ----------------------------------------------------------------

    def oom_kills(self):
        try:
            data = read_file(self._file("memory.events"))
        except CgroupError as e:
            if _errno(e) == errno.ENOENT and hostpath.isdir(self.path):
                return 0  # no memory controller here: nothing was ever OOM-killed by it
            raise
        return convert.parse_keyed(data).get("oom_kill", 0)

    def stats(self):
        """runc's `events --stats` data for a v2 cgroup (runc 1.1.5 fs2 GetStats +
        types/events.go): Go omits zero `omitempty` fields and sorts map keys."""
        from . import stats as shape
        if not hostpath.isdir(self.path):
            raise CgroupError(f"cgroup {self.path} does not exist")
        s = shape.empty()
        s["pids"] = self._stat_pids()
        s["memory"] = self._stat_memory(shape.memory_entry)
        s["blkio"] = self._stat_io()
        s["cpu"] = self._stat_cpu()
        s["hugetlb"] = self._stat_hugetlb()
        return s

    def _read_opt(self, name):
        """File content, or None when it does not exist (a controller not enabled)."""
        try:
            return read_file(self._file(name))
        except CgroupError as e:
            if _errno(e) == errno.ENOENT:
                return None
            raise

    def _stat_pids(self):
        cur = self._read_opt("pids.current")
        if cur is None:
            # no pids controller: count the processes instead (runc statPidsFromCgroupProcs)
            try:
                procs = read_file(self._file("cgroup.procs"))
            except CgroupError as e:
                if _errno(e) != errno.EOPNOTSUPP:
                    raise
                procs = read_file(self._file("cgroup.threads"))
            current, limit = procs.count("\n"), 0
        else:
            current = convert.parse_uint(cur)
            limit = convert.parse_uint(read_file(self._file("pids.max")))
            if limit == convert.MAX_UINT64:
                limit = 0  # runc reports "no limit" as 0
        return _omit({"current": current, "limit": limit})

    def _stat_memory(self, entry):
        out = {}
        stat = self._read_opt("memory.stat")
        if stat is None:
            return {"usage": entry(), "swap": entry(), "kernel": entry(), "kernelTCP": entry()}
        raw = convert.parse_keyed(stat)
        out["cache"] = raw.get("file", 0)
        usage = convert.parse_uint(read_file(self._file("memory.current")))
        limit = convert.parse_uint(read_file(self._file("memory.max")))
        peak = self._read_opt("memory.peak")  # kernel >= 5.19; runc 1.2 reports it as max
        out["usage"] = entry(limit, usage, convert.parse_uint(peak) if peak is not None else 0)
        swap_cur = self._read_opt("memory.swap.current")
        if swap_cur is None:  # no swap accounting
            swap_usage, swap_limit = 0, 0
        else:
            swap_usage = convert.parse_uint(swap_cur)
            swap_limit = convert.parse_uint(read_file(self._file("memory.swap.max")))
        # v1 reported memory+swap: so does runc for v2 (saturating here where Go wraps)
        swap_usage += usage
        if swap_limit != convert.MAX_UINT64:
            swap_limit = min(swap_limit + limit, convert.MAX_UINT64)
        out["swap"] = entry(swap_limit, swap_usage)
        out["kernel"] = entry()
        out["kernelTCP"] = entry()
        out["raw"] = {k: raw[k] for k in sorted(raw)}
        return _omit(out, ("cache", "raw"))

    def _stat_io(self):
        text = self._read_opt("io.stat")
        if text is None:
            return {}
        nbytes, nios = [], []
        for major, minor, vals in convert.parse_io_stat(text):
            for key, table, op in (("rbytes", nbytes, "Read"), ("wbytes", nbytes, "Write"),
                                   ("rios", nios, "Read"), ("wios", nios, "Write")):
                if key in vals:
                    table.append(_omit({"major": major, "minor": minor, "op": op, "value": vals[key]}))
        out = {}
        if nbytes:
            out["ioServiceBytesRecursive"] = nbytes
        if nios:
            out["ioServicedRecursive"] = nios
        return out

    def _stat_cpu(self):
        st = convert.parse_keyed(self._read_opt("cpu.stat") or "")
        usage = {"total": st.get("usage_usec", 0) * 1000,
                 "kernel": st.get("system_usec", 0) * 1000,
                 "user": st.get("user_usec", 0) * 1000}
        thr = {"periods": st.get("nr_periods", 0), "throttledPeriods": st.get("nr_throttled", 0),
               "throttledTime": st.get("throttled_usec", 0) * 1000}
        return {"usage": _omit(usage, ("total",)), "throttling": _omit(thr)}

    def _stat_hugetlb(self):
        try:
            names = posix.listdir("/sys/kernel/mm/hugepages")
        except OSError:
            return {}
        sizes, _warn = convert.hugepage_sizes(names)
        out = {}
        # page-fault usage as runc 1.1.5: runc 1.2 reads hugetlb.<size>.rsvd.events,
        # which no kernel has, and so loses the whole map
        for size in sorted(sizes):
            cur = self._read_opt(f"hugetlb.{size}.current")
            if cur is None:
                return {}  # no hugetlb controller in this cgroup
            ev = convert.parse_keyed(read_file(self._file(f"hugetlb.{size}.events")))
            out[size] = _omit({"usage": convert.parse_uint(cur), "failcnt": ev.get("max", 0)}, ("usage",))
        return out

    # --- resources ------------------------------------------------------------

    def set(self, resources, devices=None):
        """Write linux.resources (a dict; absent fields are left alone).

        `devices` is the device rule list from cgroups.devices.rules_for_container,
        or None to leave the device program alone: runc's `update` never
        changes devices, whatever the resources JSON says (SkipDevices)."""
        r = resources or {}
        if not isinstance(r, dict):
            raise CgroupError(f"linux.resources: {r!r} is not an object")
        ops = self._plan(r, devices)
        self.controllers()
        self._run(ops)

    def _plan(self, r, devices):
        """[(field, file, value, how)] in runc's order; checks every value."""
        ops = []
        add = ops.append

        # pids
        pids = convert.section(r, "pids")
        v = convert.pids_max(pids.get("limit"))
        if v is not None:
            add(("pids.limit", "pids.max", v, None))

        # memory: swap before the limit, as runc
        m = convert.section(r, "memory")
        limit, swap, reservation = m.get("limit"), m.get("swap"), m.get("reservation")
        if limit or swap or reservation:
            if m.get("checkBeforeUpdate") and (_positive(limit) or _positive(swap)):
                usage = self._read_opt("memory.current")
                if usage is not None:  # best effort, as runc
                    convert.check_before_update(limit, swap, convert.parse_uint(usage))
            mem = limit
            if swap and not limit:
                # an update of the swap alone: runc subtracts the limit it saved;
                # the cgroup holds that limit ("max": none, which runc refuses)
                cur = self._read_opt("memory.max")
                cur = convert.parse_memory_limit(cur) if cur is not None else 0
                mem = cur if cur > 0 else 0
            v = convert.memory_swap_max(swap, mem)
            if v is not None:
                add(("memory.swap", "memory.swap.max", v, "swap"))
            v = convert.memory_value("memory.limit", limit)
            if v is not None:
                add(("memory.limit", "memory.max", v, None))
            v = convert.memory_value("memory.reservation", reservation)
            if v is not None:
                add(("memory.reservation", "memory.low", v, None))

        # io
        b = convert.section(r, "blockIO")
        weight = convert.blkio_weight("blockIO.weight", b.get("weight"))
        wdevs = []
        for i, e in enumerate(_list(b, "weightDevice")):
            wd = convert.bfq_weight_device(f"blockIO.weightDevice[{i}]", e)
            if wd is not None:
                wdevs.append(wd)
        throttles = []
        for key, name in convert.IO_MAX_KEYS:
            for i, e in enumerate(_list(b, key)):
                throttles.append((f"blockIO.{key}[{i}]", convert.io_max_line(f"blockIO.{key}[{i}]", e, name)))
        bfq = None
        if weight is not None or wdevs:
            bfq = self._read_opt("io.bfq.weight")
        if weight is not None:
            if bfq is not None:
                add(("blockIO.weight", "io.bfq.weight", str(weight), None))
            else:
                add(("blockIO.weight", "io.weight", str(convert.blkio_weight_to_io_weight(weight)), None))
        # per-device BFQ weights need kernel >= 5.4: its file then reads "default N"
        if bfq is not None and not bfq.strip().isdigit():
            for wd in wdevs:
                add(("blockIO.weightDevice", "io.bfq.weight", wd + "\n", None))
        for field, line in throttles:
            add((field, "io.max", line, None))

        # cpu
        c = convert.section(r, "cpu")
        v = convert.cpu_idle(c.get("idle"))
        if v is not None:
            add(("cpu.idle", "cpu.idle", v, None))
        v = convert.cpu_weight(c.get("shares"))
        if v is not None:
            add(("cpu.shares", "cpu.weight", v, None))
        burst = convert.cpu_burst(c.get("burst"), c.get("quota"))
        quota, period = c.get("quota"), c.get("period")
        cpu_max = None
        if quota or period:
            cur = self._read_opt("cpu.max")
            cpu_max = convert.cpu_max(quota, period, cur if cur is not None else "max 100000")
        if burst is not None:
            # a larger burst can be refused (EINVAL) until the new quota is in
            add(("cpu.burst", "cpu.max.burst", burst, "burst-first" if cpu_max else None))
        if cpu_max is not None:
            add(("cpu.quota" if quota else "cpu.period", "cpu.max", cpu_max, None))
            if burst is not None:
                add(("cpu.burst", "cpu.max.burst", burst, "burst-retry"))

        # devices
        if devices is not None:
            add(("devices", None, devices, "devices"))

        # cpuset
        for key, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
            v = convert.cpuset_list(f"cpu.{key}", c.get(key))
            if v is not None:
                add((f"cpu.{key}", name, v, None))

        # hugetlb: the page-fault limit and, where the kernel has it, the
        # reservation limit (runc 1.2; runtime-spec prefers reservations)
        for i, h in enumerate(_list(r, "hugepageLimits")):
            field = f"hugepageLimits[{i}]"
            if not isinstance(h, dict):
                raise convert.invalid(field, h, "not an object")
            size = convert.hugepage_size(field + ".pageSize", h.get("pageSize"))
            lim = str(convert.uint(field + ".limit", h.get("limit")))
            fmax, frsvd = convert.hugetlb_files(size)
            add((field, fmax, lim, None))
            add((field, frsvd, lim, "rsvd"))

        # rdma
        rdma = convert.section(r, "rdma")
        for dev in rdma:
            add((f"rdma.{dev}", "rdma.max", convert.rdma_max(dev, rdma[dev]), None))

        # unified: last, so its raw values win
        uni = convert.section(r, "unified")
        for key in uni:
            ctrl = convert.unified_key(key)
            for line in convert.unified_lines(key, uni[key]):
                add((f"unified[{key!r}]", key, line, "unified:" + ctrl))
        return ops

    def _run(self, ops):
        skip_rsvd = False
        burst_pending = False
        for field, name, value, how in ops:
            if how == "devices":
                from . import devices as devmod
                devmod.apply_v2(self.path, value)
                continue
            if how == "rsvd" and skip_rsvd:
                continue
            if how == "burst-retry" and not burst_pending:
                continue
            try:
                write_file(self._file(name), value)
            except CgroupError as e:
                err = _errno(e)
                if how == "swap" and err == errno.ENOENT and value in ("max", "0"):
                    continue  # no swap accounting: nothing to lift or disable (runc 1.2)
                if how == "rsvd" and err == errno.ENOENT:
                    skip_rsvd = True  # kernel < 5.7: no reservation accounting
                    continue
                if how == "burst-first" and err == errno.EINVAL:
                    burst_pending = True
                    continue
                raise self._explain(field, name, e, err, how) from None

    def _explain(self, field, name, e, err, how):
        if how == "swap" and err == errno.ENOENT and "memory" in self.controllers():
            return CgroupError(f"{PREFIX}{field}: swap accounting is not enabled in this kernel "
                               f"(no memory.swap.max in {self.path})")
        if err in (errno.ENOENT, errno.EPERM, errno.EACCES):
            ctrl = how[len("unified:"):] if how and how.startswith("unified:") else name.partition(".")[0]
            have = self.controllers()
            if ctrl not in have and ctrl != "cgroup":
                return CgroupError(f"{PREFIX}{field}: the {ctrl} controller is not available in "
                                   f"{self.path} (cgroup.controllers: {' '.join(sorted(have)) or 'none'})")
            if err == errno.ENOENT and ctrl == "hugetlb" and not how:
                try:
                    sizes = convert.hugepage_sizes(posix.listdir("/sys/kernel/mm/hugepages"))[0]
                except OSError:
                    sizes = []
                return CgroupError(f"{PREFIX}{field}: page size {name.split('.')[1]} is not supported "
                                   f"by this kernel (supported: {', '.join(sizes) or 'none'})")
        return CgroupError(f"{PREFIX}{field}: {e}")


def _positive(v):
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _list(section, key):
    v = section.get(key)
    if v is None:
        return ()
    if not isinstance(v, list):
        raise convert.invalid(key, v, "not an array")
    return v


def _omit(d, keys=None):
    """Drop zero values of Go `omitempty` fields (all of d's keys by default)."""
    for k in list(d) if keys is None else keys:
        if not d.get(k):
            d.pop(k, None)
    return d


def _procs_under(top):
    """PIDs in `top` and its child cgroups (runc GetAllPids)."""
    out = []
    for root in walk(top):
        try:
            data = read_file(root + "/cgroup.procs")
        except CgroupError as e:
            # gone meanwhile, or a threaded cgroup (its processes are counted above it)
            if _errno(e) in (errno.ENOENT, errno.ENODEV, errno.EOPNOTSUPP):
                continue
            raise
        out.extend(int(x) for x in data.split())
    return out


def _remove_tree(path):
    """runc RemovePath: rmdir, else the child cgroups first, then rmdir again.
    Raises OSError; a missing directory is success."""
    try:
        posix.rmdir(path)
        return
    except FileNotFoundError:
        return
    except OSError:
        pass
    try:
        subs = [e.path for e in posix.scandir(path) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return
    for sub in subs:
        _remove_tree(sub)
    try:
        posix.rmdir(path)
    except FileNotFoundError:
        pass
