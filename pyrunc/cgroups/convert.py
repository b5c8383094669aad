"""runtime-spec linux.resources values as cgroup files want them.

Pure functions, no I/O: the v1→v2 conversions runc applies (runc
libcontainer/cgroups/utils.go), value checks that name the offending field,
and parsers for what the kernel writes back. The drivers decide which file
gets which string.

Conventions: a setter returns None for "leave the file alone" (the field is
absent, or holds the value runc treats as unset), otherwise the exact text
to write. Every invalid value raises CgroupError naming the field, e.g.
"linux.resources.memory.swap: -2 is invalid: ...".
"""

from .manager import CgroupError

PREFIX = "linux.resources."
MAX_UINT64 = (1 << 64) - 1
MAX_INT64 = (1 << 63) - 1
MIN_INT64 = -(1 << 63)
DEFAULT_CPU_PERIOD = 100000  # usec; the kernel's default, which runc writes when only a quota is given

# cgroup v1 limits the two weights are defined by (kernel MIN_SHARES/MAX_SHARES, CFQ weights)
CPU_SHARES_MIN, CPU_SHARES_MAX = 2, 262144
CPU_WEIGHT_MIN, CPU_WEIGHT_MAX = 1, 10000
BLKIO_WEIGHT_MIN, BLKIO_WEIGHT_MAX = 10, 1000


def section(r, name):
    """linux.resources[name] as a dict ({} when absent); an error naming it when not an object."""
    v = r.get(name)
    if v is None:
        return {}
    if not isinstance(v, dict):
        raise invalid(name, v, "not an object")
    return v


def invalid(field, value, why=None):
    """The CgroupError for `field` (relative to linux.resources) holding `value`."""
    shown = value if isinstance(value, int) and not isinstance(value, bool) else repr(value)
    msg = f"{PREFIX}{field}: {shown} is invalid"
    return CgroupError(f"{msg}: {why}" if why else msg)


def integer(field, value, lo=MIN_INT64, hi=MAX_INT64):
    # `update --resources` JSON may not have been through the schema
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(field, value, "not an integer")
    if value < lo or value > hi:
        raise invalid(field, value, f"out of range {lo}..{hi}")
    return value


def uint(field, value, bits=64):
    return integer(field, value, 0, (1 << bits) - 1)


# --- cpu ----------------------------------------------------------------------

def cpu_shares_to_weight(shares):
    """runc ≤ 1.2 ConvertCPUSharesToCgroupV2Value, the linear map of [2, 262144]
    onto [1, 10000]; 0 stays 0 ("unset"). This is what runc 1.1.5 writes to
    cpu.weight, so it is what pyrunc writes.

    Out-of-range shares are clamped first, as the v1 kernel clamps them (runc
    computes on uint64 and wraps for shares < 2)."""
    if not shares:
        return 0
    shares = min(max(shares, CPU_SHARES_MIN), CPU_SHARES_MAX)
    return 1 + ((shares - 2) * 9999) // 262142


def cpu_shares_to_weight_quadratic(shares):
    """The conversion of opencontainers/cgroups ≥ 0.0.2 (runc ≥ 1.3): a quadratic
    in log2(shares) through (2, 1), (1024, 100) and (262144, 10000), so the
    default 1024 shares map to the default weight 100 (the linear map gives
    39). Not used for writing: kept for comparisons and a future switch."""
    if not shares:
        return 0
    if shares <= CPU_SHARES_MIN:
        return CPU_WEIGHT_MIN
    if shares >= CPU_SHARES_MAX:
        return CPU_WEIGHT_MAX
    import math
    lg = math.log2(shares)
    exponent = (lg * lg + 125 * lg) / 612.0 - 7.0 / 34.0
    return math.ceil(math.pow(10, exponent))


def cpu_weight_to_shares(weight):
    """Inverse of cpu_shares_to_weight (smallest shares giving `weight`), for
    reporting a v2 weight in v1 terms."""
    if not weight:
        return 0
    weight = min(max(weight, CPU_WEIGHT_MIN), CPU_WEIGHT_MAX)
    return 2 + -(-((weight - 1) * 262142) // 9999)


def cpu_weight(shares):
    """cpu.weight text for cpu.shares, or None when shares is absent or 0."""
    if shares is None:
        return None
    shares = uint("cpu.shares", shares)
    if shares == 0:
        return None
    return str(cpu_shares_to_weight(shares))


def parse_cpu_max(text):
    """("max" or quota digits, period) from cpu.max."""
    f = text.split()
    if len(f) != 2:
        raise CgroupError(f"unexpected cpu.max content {text!r}")
    return f[0], int(f[1])


def cpu_max(quota, period, current="max 100000"):
    """cpu.max text, or None when neither quota nor period is set.

    As runc, 0 means unset for both and any negative quota means no limit.
    A missing half keeps its value from `current` (cpu.max as read now):
    runc's `update` keeps the old quota or period the same way, and on a new
    cgroup the current values are the kernel's defaults ("max 100000"),
    which runc writes explicitly.
    """
    q = None if quota is None else integer("cpu.quota", quota)
    p = None if period is None else uint("cpu.period", period)
    if not q and not p:
        return None
    cur_q, cur_p = parse_cpu_max(current)
    if q:
        q_str = str(q) if q > 0 else "max"
    else:
        q_str = cur_q
    if p:
        # the kernel's bounds (1 ms .. 1 s); said here rather than as EINVAL
        if not 1000 <= p <= 1000000:
            raise invalid("cpu.period", p, "must be between 1000 and 1000000 (microseconds)")
    else:
        p = cur_p
    if q and q > 0 and q < 1000:
        raise invalid("cpu.quota", q, "must be at least 1000 (microseconds) or negative for no limit")
    return f"{q_str} {p}"


def cpu_burst(burst, quota=None):
    """cpu.max.burst text, or None when burst is absent (0 is a value: no burst)."""
    if burst is None:
        return None
    burst = uint("cpu.burst", burst)
    if quota is not None and not isinstance(quota, bool) and isinstance(quota, int) and 0 < quota < burst:
        # runtime-spec: burst MUST be no larger than a positive quota
        raise invalid("cpu.burst", burst, f"larger than cpu.quota {quota}")
    return str(burst)


def cpu_idle(idle):
    if idle is None:
        return None
    idle = integer("cpu.idle", idle)
    if idle not in (0, 1):
        raise invalid("cpu.idle", idle, "must be 0 or 1")
    return str(idle)


def cpuset_list(field, value):
    """A cpus/mems list such as "0-3,7" checked for syntax; None when empty
    (runc treats "" as unset). Existence of the CPUs is the kernel's call."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(field, value, "not a string")
    v = value.strip()
    if not v:
        return None
    for part in v.split(","):
        rng, _, stride = part.partition(":")
        a, dash, b = rng.partition("-")
        ok = a.isdigit() and a.isascii() and (not dash or (b.isdigit() and b.isascii() and int(a) <= int(b)))
        if ok and stride:
            # kernel bitmap_parselist: "0-15:2/4" (used/group size) on a range
            used, slash, group = stride.partition("/")
            ok = (dash and slash and used.isdigit() and group.isdigit() and used.isascii()
                  and group.isascii() and 0 < int(used) <= int(group))
        if not ok:
            raise invalid(field, value, f"bad list element {part!r} (expected e.g. \"0-3,7\")")
    return v


# --- memory -------------------------------------------------------------------

def memory_value(field, value):
    """runc's numToStr for memory.{max,low,high}: None for absent or 0 (unset),
    "max" for -1, else the number; below -1 is invalid."""
    if value is None:
        return None
    value = integer(field, value)
    if value == 0:
        return None
    if value == -1:
        return "max"
    if value < 0:
        raise invalid(field, value, "use -1 for no limit")
    return str(value)


def memory_swap_to_v2(swap, memory):
    """runc ConvertMemorySwapToCgroupV2Value: the spec's swap is memory+swap,
    v2's memory.swap.max is swap alone. Returns -1 (max), 0 (unset) or the
    swap-only amount. Follows runc ≥ 1.1.14/1.2: with unlimited memory the
    value is taken as the swap limit itself (runc 1.1.5 refused that)."""
    swap = integer("memory.swap", swap or 0)
    memory = integer("memory.limit", memory or 0)
    if memory == -1 and swap == 0:
        # as v1: unlimited memory without a swap setting means unlimited swap too
        return -1
    if swap in (-1, 0):
        return swap
    if swap < -1:
        raise invalid("memory.swap", swap, "use -1 for no limit")
    if memory == -1:
        return swap
    if memory == 0:
        raise invalid("memory.swap", swap, "unable to set swap limit without memory limit")
    if memory < 0:
        raise invalid("memory.limit", memory, "use -1 for no limit")
    if swap < memory:
        raise invalid("memory.swap", swap, f"memory+swap limit should be >= memory limit {memory}")
    return swap - memory


def memory_swap_max(swap, memory):
    """memory.swap.max text or None, from the spec's swap and memory limit."""
    if swap is None and memory is None:
        return None
    v2 = memory_swap_to_v2(swap, memory)
    if v2 == -1:
        return "max"
    if v2 == 0:
        # memory == memory+swap disables swap; a plain 0 is "unset" (writing an
        # empty string would also mean 0)
        return "0" if swap and swap > 0 else None
    return str(v2)


def parse_memory_limit(text):
    """memory.max as the spec's int64: "max" is -1."""
    t = text.strip()
    return -1 if t == "max" else int(t)


def check_before_update(memory, swap, usage):
    """runc 1.2 CheckMemoryUsage: refuse limits at or below what is in use,
    since on v2 a lower memory.max makes the kernel reclaim and OOM-kill
    instead of failing as v1 does."""
    if swap is not None and swap > 0 and swap <= usage:
        raise invalid("memory.swap", swap, f"rejecting memory+swap limit <= usage {usage} (checkBeforeUpdate)")
    if memory is not None and memory > 0 and memory <= usage:
        raise invalid("memory.limit", memory, f"rejecting memory limit <= usage {usage} (checkBeforeUpdate)")


# --- pids ---------------------------------------------------------------------

def pids_max(limit):
    """pids.max text. runtime-spec v1.3: -1 is no limit and 0 is a real limit
    ("no new tasks"), so unlike runc 1.1.5 (0 = unset) 0 is written."""
    if limit is None:
        return None
    limit = integer("pids.limit", limit)
    if limit == -1:
        return "max"
    if limit < 0:
        raise invalid("pids.limit", limit, "use -1 for no limit")
    return str(limit)


# --- block io -----------------------------------------------------------------

def blkio_weight_to_io_weight(weight):
    """runc ConvertBlkIOToIOWeightValue: [10, 1000] linearly onto [1, 10000]; 0 stays 0."""
    if not weight:
        return 0
    weight = min(max(weight, BLKIO_WEIGHT_MIN), BLKIO_WEIGHT_MAX)
    return 1 + (weight - 10) * 9999 // 990


def blkio_weight(field, weight):
    """A v1 blkio weight checked (10..1000), or None when absent or 0 (unset)."""
    if weight is None:
        return None
    weight = uint(field, weight, 16)
    if weight == 0:
        return None
    if not BLKIO_WEIGHT_MIN <= weight <= BLKIO_WEIGHT_MAX:
        raise invalid(field, weight, f"must be between {BLKIO_WEIGHT_MIN} and {BLKIO_WEIGHT_MAX}")
    return weight


def _devno(field, entry):
    if not isinstance(entry, dict):
        raise invalid(field, entry, "not an object")
    major = integer(field + ".major", entry.get("major"), 0)
    minor = integer(field + ".minor", entry.get("minor"), 0)
    return f"{major}:{minor}"


def bfq_weight_device(field, entry):
    """"MAJ:MIN WEIGHT" for io.bfq.weight, or None when the entry has no weight
    (a leafWeight-only entry has no v2 equivalent)."""
    dev = _devno(field, entry)
    w = blkio_weight(field + ".weight", entry.get("weight"))
    return None if w is None else f"{dev} {w}"


IO_MAX_KEYS = (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
               ("throttleReadIOPSDevice", "riops"), ("throttleWriteIOPSDevice", "wiops"))


def io_max_line(field, entry, key):
    """"MAJ:MIN rbps=N" for io.max. A rate of 0 removes a v1 throttle; v2 has
    "max" for that and rejects 0 (ERANGE), so 0 becomes "max"."""
    dev = _devno(field, entry)
    rate = uint(field + ".rate", entry.get("rate"))
    return f"{dev} {key}={rate if rate else 'max'}"


# --- hugetlb ------------------------------------------------------------------

def hugepage_size(field, size):
    """A pageSize as the schema has it, ^[1-9][0-9]*[KMG]B$ ("2MB"): the kernel's
    hugetlb.<size>.* file names use the same spelling."""
    ok = (isinstance(size, str) and len(size) >= 3 and size[-1] == "B" and size[-2] in "KMG"
          and size[:-2].isdigit() and size[:-2].isascii() and size[0] != "0")
    if not ok:
        raise invalid(field, size, "expected a size like \"2MB\", \"64KB\" or \"1GB\"")
    return size


def hugetlb_files(size):
    """(limit file, reservation limit file) for a page size on cgroup v2."""
    return f"hugetlb.{size}.max", f"hugetlb.{size}.rsvd.max"


def hugepage_sizes(names):
    """runc getHugePageSizeFromFilenames: "hugepages-2048kB" → "2MB" for the
    entries of /sys/kernel/mm/hugepages. Returns (sizes, first problem or None);
    names without the prefix are skipped silently, bad ones with a warning."""
    sizes, warn = [], None
    for name in names:
        if not name.startswith("hugepages-"):
            continue
        val = name[len("hugepages-"):]
        if not val.endswith("kB"):
            warn = warn or f"{name}: invalid suffix (expected \"kB\")"
            continue
        num = val[:-2]
        if not (num.isdigit() and num.isascii()):
            warn = warn or f"{name}: not a number"
            continue
        kb = int(num)
        if kb >= 1 << 20:
            sizes.append(f"{kb >> 20}GB")
        elif kb >= 1 << 10:
            sizes.append(f"{kb >> 10}MB")
        else:
            sizes.append(f"{kb}KB")
    return sizes, warn


# --- rdma ---------------------------------------------------------------------

def rdma_max(device, limits):
    """"mlx4_0 hca_handle=2 hca_object=2000" for rdma.max (runc createCmdString)."""
    field = f"rdma.{device}"
    if not isinstance(device, str) or not device or any(c in device for c in " \t\n=/"):
        raise invalid("rdma", device, "not a device name")
    if not isinstance(limits, dict):
        raise invalid(field, limits, "not an object")
    out = device
    handles, objects = limits.get("hcaHandles"), limits.get("hcaObjects")
    if handles is None and objects is None:
        raise invalid(field, limits, "at least one of hcaHandles and hcaObjects is required")
    if handles is not None:
        out += f" hca_handle={uint(field + '.hcaHandles', handles, 32)}"
    if objects is not None:
        out += f" hca_object={uint(field + '.hcaObjects', objects, 32)}"
    return out


def parse_rdma(text):
    """{device: {"hca_handle": n, "hca_object": n}} from rdma.max/rdma.current; "max" is 2**32-1."""
    out = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) != 3:
            continue
        vals = {}
        for kv in f[1:]:
            k, eq, v = kv.partition("=")
            if not eq:
                break
            vals[k] = (1 << 32) - 1 if v == "max" else int(v)
        else:
            out[f[0]] = vals
    return out


# --- unified ------------------------------------------------------------------

def unified_key(key):
    """The controller of a linux.resources.unified key "<controller>.<file>".

    Only plain file names of the container's own cgroup: no "/", no "..",
    no leading dot, so a key can never reach another cgroup."""
    field = f"unified[{key!r}]" if isinstance(key, str) else "unified"
    if not isinstance(key, str) or not key:
        raise invalid("unified", key, "keys are cgroup file names")
    ctrl, dot, rest = key.partition(".")
    if "/" in key or ".." in key or "\0" in key or not dot or not ctrl or not rest:
        raise CgroupError(f"{PREFIX}{field}: must be a file name of the form <controller>.<file>")
    if not all(c.isalnum() or c == "_" for c in ctrl) or not ctrl.isascii():
        raise CgroupError(f"{PREFIX}{field}: {ctrl!r} is not a controller name")
    return ctrl


def unified_lines(key, value):
    """The lines to write, one write(2) each, as runc 1.2 WriteFileByLine: a file
    such as io.max takes one device per write."""
    if not isinstance(value, str):
        raise CgroupError(f"{PREFIX}unified[{key!r}]: value {value!r} is not a string")
    if "\n" not in value:
        return [value]
    parts = value.split("\n")
    lines = [ln + "\n" for ln in parts[:-1] if ln.strip()]
    if parts[-1].strip():
        lines.append(parts[-1])
    return lines or [value]


# --- reading cgroup files -----------------------------------------------------

def parse_uint(text):
    """runc fscommon.ParseUint for a single-value file: "max" is 2**64-1 and a
    negative number (memory.low on old kernels) counts as 0."""
    t = text.strip()
    if t == "max":
        return MAX_UINT64
    v = int(t)
    return v if v > 0 else 0


def parse_keyed(text):
    """{key: int} from a flat keyed file (memory.stat, cpu.stat, memory.events)."""
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(" ")
        v = v.strip()
        if k and v:
            out[k] = MAX_UINT64 if v == "max" else int(v)
    return out


def parse_io_stat(text):
    """[(major, minor, {key: int})] from io.stat, in file order."""
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 2:
            continue
        ma, colon, mi = f[0].partition(":")
        if not colon:
            continue
        vals = {}
        for kv in f[1:]:
            k, eq, v = kv.partition("=")
            if eq and v.isdigit():
                vals[k] = int(v)
        out.append((int(ma), int(mi), vals))
    return out


def own_cgroup_v2(proc_self_cgroup):
    """The "0::/path" entry of /proc/self/cgroup (runc parseCgroupFromReader)."""
    for line in proc_self_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) < 3:
            raise CgroupError(f"invalid cgroup entry: {line!r}")
        if parts[0] == "0" and parts[1] == "":
            return parts[2]
    raise CgroupError("cgroup path not found: no cgroup v2 entry in /proc/self/cgroup")


def go_clean(p):
    """Go's filepath.Clean."""
    if not p:
        return "."
    rooted = p.startswith("/")
    out = []
    for c in p.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            if out and out[-1] != "..":
                out.pop()
            elif not rooted:
                out.append("..")
            continue
        out.append(c)
    s = "/".join(out)
    if rooted:
        return "/" + s
    return s or "."


def clean_path(p):
    """runc utils.CleanPath: cleaned, and a relative path can never climb out
    ("../../var" is "var"); "" stays ""."""
    if not p:
        return ""
    p = go_clean(p)
    if not p.startswith("/"):
        p = go_clean("/" + p)[1:] or "."
    return go_clean(p)
