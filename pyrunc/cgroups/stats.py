"""`events --stats` data in runc's JSON shape (runc types/events.go), from cgroup v1 files.

Fields that runc tags `omitempty` are left out when zero; nested objects are
always present, as Go's encoder writes structs.
"""

import os

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_NS = 1_000_000_000


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode()
    except OSError:
        return None


def _uint(path):
    v = _read(path)
    if v is None:
        return 0
    v = v.strip()
    if v == "max":
        return 0
    try:
        return int(v)
    except ValueError:
        return 0


def _keyed(text):
    out = {}
    for line in (text or "").splitlines():
        k, _, v = line.partition(" ")
        try:
            out[k] = int(v)
        except ValueError:
            pass
    return out


def _omit(d, *keys):
    for k in keys:
        if not d.get(k):
            d.pop(k, None)
    return d


def _cpus(text):
    out = []
    for part in (text or "").strip().split(","):
        if not part:
            continue
        a, _, b = part.partition("-")
        out.extend(range(int(a), int(b or a) + 1))
    return out


def memory_entry(limit=0, usage=0, maxu=0, failcnt=0):
    return _omit({"limit": limit, "usage": usage, "max": maxu, "failcnt": failcnt}, "usage", "max")


def empty():
    return {
        "cpu": {"usage": {"kernel": 0, "user": 0}, "throttling": {}},
        "cpuset": {"cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0, "memory_migrate": 0,
                   "memory_spread_page": 0, "memory_spread_slab": 0, "memory_pressure": 0,
                   "sched_load_balance": 0, "sched_relax_domain_level": 0},
        "memory": {"usage": memory_entry(), "swap": memory_entry(), "kernel": memory_entry(),
                   "kernelTCP": memory_entry()},
        "pids": {},
        "blkio": {},
        "hugetlb": {},
        "intel_rdt": {},
        "network_interfaces": None,
    }


def _blkio_entries(text):
    out = []
    for line in (text or "").splitlines():
        f = line.split()
        if len(f) == 3 and ":" in f[0]:
            ma, mi = f[0].split(":")
            e = {"major": int(ma), "minor": int(mi), "op": f[1], "value": int(f[2])}
        elif len(f) == 2 and ":" in f[0]:
            ma, mi = f[0].split(":")
            e = {"major": int(ma), "minor": int(mi), "value": int(f[1])}
        else:
            continue
        out.append(_omit(e, "major", "minor", "op", "value"))
    return out


def v1(paths):
    s = empty()
    acct = paths.get("cpuacct")
    if acct:
        u = s["cpu"]["usage"]
        u["total"] = _uint(acct + "/cpuacct.usage")
        u["percpu"] = [int(x) for x in (_read(acct + "/cpuacct.usage_percpu") or "").split()]
        st = _keyed(_read(acct + "/cpuacct.stat"))
        # ticks of USER_HZ, reported in nanoseconds as runc does
        u["kernel"] = st.get("system", 0) * _NS // _CLK_TCK
        u["user"] = st.get("user", 0) * _NS // _CLK_TCK
        _omit(u, "total", "percpu")
    cpu = paths.get("cpu")
    if cpu:
        st = _keyed(_read(cpu + "/cpu.stat"))
        s["cpu"]["throttling"] = _omit({"periods": st.get("nr_periods", 0),
                                        "throttledPeriods": st.get("nr_throttled", 0),
                                        "throttledTime": st.get("throttled_time", 0)},
                                       "periods", "throttledPeriods", "throttledTime")
    cs = paths.get("cpuset")
    if cs:
        c = s["cpuset"]
        c["cpus"] = _cpus(_read(cs + "/cpuset.cpus"))
        c["mems"] = _cpus(_read(cs + "/cpuset.mems"))
        for k in ("cpu_exclusive", "mem_hardwall", "mem_exclusive", "memory_migrate", "memory_spread_page",
                  "memory_spread_slab", "memory_pressure", "sched_load_balance"):
            c[k] = _uint(f"{cs}/cpuset.{k}")
        try:
            c["sched_relax_domain_level"] = int((_read(cs + "/cpuset.sched_relax_domain_level") or "0").strip())
        except ValueError:
            pass
        _omit(c, "cpus", "mems")
    mem = paths.get("memory")
    if mem:
        m = s["memory"]
        raw = _keyed(_read(mem + "/memory.stat"))
        if raw:
            m["raw"] = raw
        m["cache"] = raw.get("cache", 0)
        for key, prefix in (("usage", "memory"), ("swap", "memory.memsw"), ("kernel", "memory.kmem"),
                            ("kernelTCP", "memory.kmem.tcp")):
            if os.path.exists(f"{mem}/{prefix}.usage_in_bytes"):
                m[key] = memory_entry(_uint(f"{mem}/{prefix}.limit_in_bytes"),
                                      _uint(f"{mem}/{prefix}.usage_in_bytes"),
                                      _uint(f"{mem}/{prefix}.max_usage_in_bytes"),
                                      _uint(f"{mem}/{prefix}.failcnt"))
        _omit(m, "cache")
    pids = paths.get("pids")
    if pids:
        s["pids"] = _omit({"current": _uint(pids + "/pids.current"), "limit": _uint(pids + "/pids.max")},
                          "current", "limit")
    blk = paths.get("blkio")
    if blk:
        b = {}
        for key, f in (("ioServiceBytesRecursive", "io_service_bytes_recursive"),
                       ("ioServicedRecursive", "io_serviced_recursive"),
                       ("ioQueueRecursive", "io_queued_recursive"),
                       ("ioServiceTimeRecursive", "io_service_time_recursive"),
                       ("ioWaitTimeRecursive", "io_wait_time_recursive"),
                       ("ioMergedRecursive", "io_merged_recursive"),
                       ("ioTimeRecursive", "time_recursive"),
                       ("sectorsRecursive", "sectors_recursive")):
            entries = _blkio_entries(_read(f"{blk}/blkio.{f}"))
            if not entries and key in ("ioServiceBytesRecursive", "ioServicedRecursive"):
                # no CFQ/BFQ accounting: the throttle files still count
                entries = _blkio_entries(_read(f"{blk}/blkio.throttle.{f}"))
            if entries:
                b[key] = entries
        s["blkio"] = b
    hug = paths.get("hugetlb")
    if hug:
        for name in sorted(os.listdir(hug)):
            if name.startswith("hugetlb.") and name.endswith(".usage_in_bytes") and ".rsvd." not in name:
                size = name[len("hugetlb."):-len(".usage_in_bytes")]
                s["hugetlb"][size] = _omit({"usage": _uint(f"{hug}/{name}"),
                                            "max": _uint(f"{hug}/hugetlb.{size}.max_usage_in_bytes"),
                                            "failcnt": _uint(f"{hug}/hugetlb.{size}.failcnt")},
                                           "usage", "max")
    return s
