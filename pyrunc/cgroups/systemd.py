"""The systemd cgroup driver (`--systemd-cgroup`), after runc 1.1's
libcontainer/cgroups/systemd (v1.go, v2.go, common.go, dbus.go, cpuset.go),
with the fixes of the later 1.1.x releases.

The container's cgroup is a transient systemd unit, made over D-Bus
(`dbus`, a minimal client): a scope "<prefix>-<name>.scope" in a slice, or
the slice "<name>" itself when the name ends in ".slice". cgroupsPath is
"slice:prefix:name" ("" slice: system.slice). An empty cgroupsPath gives
"system.slice:pyrunc:<id>": runc names its default scope after itself
("runc-<id>.scope"), and so does pyrunc, so that a runc and a pyrunc
container with the same ID (their --root differ) never fight over one unit,
and `systemctl list-units 'pyrunc-*'` shows whose units they are.

As runc's systemd managers, this one wraps the fs driver of the host's
cgroup mode at the unit's cgroup path(s): fs2 at /sys/fs/cgroup/<slice
path>/<unit> on a v2 host, fs1 at <mountpoint>/<slice path>/<unit> for each
v1 hierarchy (and the unified one on a hybrid host) otherwise.

- apply: StartTransientUnit(unit, "replace", properties) with runc's
  properties (Description, Slice= or Wants=, Delegate, PIDs, the
  accounting switches, DefaultDependencies=no), the resource properties
  runc derives from linux.resources (runc sets those only in its Set that
  follows; here they are in force from the first instant), and the
  `org.systemd.property.*` annotations; waits for the job's JobRemoved
  signal (30 s); then the fs driver creates what systemd did not
  (controllers in the ancestors' subtree_control, v1 hierarchies systemd
  does not manage) and joins the process where systemd did not put it.
- set / update: SetUnitProperties(unit, runtime=true, properties), then the
  fs driver's set, which writes every value to the cgroup files as well
  (systemd does not know all of them, and rounds the CPU quota).
- destroy: StopUnit(unit, "replace") and its job, ResetFailedUnit (an
  OOM-killed scope stays "failed" otherwise), then the fs driver removes
  whatever is left.
- everything else (pids, freeze, stats, OOM count, exec joins) is the fs
  driver's, at those paths, as runc does.
"""

import posix

from . import CGROUP_ROOT, convert, host_mode
from .manager import CgroupError, Manager, read_file, write_file

DEFAULT_SLICE = "system.slice"
DEFAULT_PREFIX = "pyrunc"
JOB_TIMEOUT = 30.0  # runc: 30 s for the start and the stop job
DEF_CPU_QUOTA_PERIOD = 100000  # usec
UINT64_MAX = (1 << 64) - 1

SD1 = "org.freedesktop.systemd1"
SD1_PATH = "/org/freedesktop/systemd1"
SD1_MANAGER = "org.freedesktop.systemd1.Manager"
ERR_UNIT_EXISTS = "org.freedesktop.systemd1.UnitExists"
ERR_NO_SUCH_UNIT = "org.freedesktop.systemd1.NoSuchUnit"


# --- names and paths -----------------------------------------------------------------

def parse_cgroups_path(cgroups_path, cid):
    """(parent slice or "", scope prefix, name) as runc's CreateCgroupConfig
    reads a systemd cgroupsPath."""
    if not cgroups_path:
        return "", DEFAULT_PREFIX, cid
    parts = cgroups_path.split(":")
    if len(parts) != 3:
        raise CgroupError('expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, '
                          f"got {cgroups_path!r} instead")
    return parts[0], parts[1], parts[2]


def unit_name(prefix, name):
    """runc getUnitName: a scope unless the name is a slice."""
    if name.endswith(".slice"):
        return name
    return f"{prefix}-{name}.scope"


def expand_slice(slice_name):
    """runc ExpandSlice: "test-a-b.slice" -> "/test.slice/test-a.slice/test-a-b.slice"."""
    suffix = ".slice"
    if not slice_name.endswith(suffix) or len(slice_name) <= len(suffix) or "/" in slice_name:
        raise CgroupError(f"invalid slice name: {slice_name}")
    base = slice_name[:-len(suffix)]
    if base == "-":
        return "/"
    path, prefix = "", ""
    for comp in base.split("-"):
        if not comp:
            raise CgroupError(f"invalid slice name: {slice_name}")
        path += "/" + prefix + comp + suffix
        prefix += comp + "-"
    return path


def _check_unit(unit):
    # systemd refuses worse names itself; these would also escape the slice's
    # directory before systemd is ever asked
    if not unit or "/" in unit or unit in (".", "..") or "\0" in unit:
        raise CgroupError(f"invalid systemd unit name {unit!r}")
    if len(unit) > 255:
        raise CgroupError(f"systemd unit name {unit[:40]!r}... is longer than 255 characters")
    if not (unit.endswith(".scope") or unit.endswith(".slice")):
        raise CgroupError(f"invalid systemd unit name {unit!r}: not a scope or a slice")
    return unit


def range_to_bits(text):
    """runc RangeToBits (as fixed in 1.1.6): a cpu/node list such as "1,3-5"
    as the byte array systemd's AllowedCPUs/AllowedMemoryNodes take, bit n
    of byte k being CPU 8k+n (little-endian)."""
    n = 0
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        rng, colon, stride = part.partition(":")
        a, dash, b = rng.partition("-")
        used, slash, group = stride.partition("/")
        nums = [a] + ([b] if dash else []) + ([used, group] if colon else [])
        if not all(x.isdigit() and x.isascii() for x in nums) or (colon and not (dash and slash)):
            raise CgroupError(f"invalid cpu/node list {text!r}")
        lo = int(a)
        hi = int(b) if dash else lo
        if hi < lo or hi >= 1 << 32:
            raise CgroupError(f"invalid range {part!r} in {text!r}")
        used, group = (int(used), int(group)) if colon else (1, 1)
        if not 0 < used <= group:
            raise CgroupError(f"invalid stride {stride!r} in {text!r}")
        for i in range(lo, hi + 1):
            if (i - lo) % group < used:
                n |= 1 << i
    if not n:
        raise CgroupError(f"empty cpu/node list {text!r}")
    return n.to_bytes((n.bit_length() + 7) // 8, "little")


def systemd_version(text):
    """runc systemdVersionAtoi: the first number of "v245.4-1.fc32", "252.36-1~deb12u1"."""
    digits = ""
    for ch in str(text):
        if ch.isdigit() and ch.isascii():
            digits += ch
        elif digits:
            break
    if not digits:
        raise CgroupError(f"can't parse systemd version {text!r}")
    return int(digits)


# --- D-Bus ---------------------------------------------------------------------------

class _Systemd:
    """One connection to systemd's manager, with JobRemoved signals routed to us."""

    def __init__(self):
        from . import dbus
        self.dbus = dbus
        try:
            c = dbus.connect_systemd()
        except dbus.DBusError as e:
            raise CgroupError(f"failed to connect to dbus: {e}") from None
        self.conn = c
        # pipelined: the match, the subscription and the version in one round trip
        checks = []
        if c.bus:
            checks.append(c.add_match(f"type='signal',interface='{SD1_MANAGER}',member='JobRemoved',"
                                      f"path='{SD1_PATH}'"))
            # systemd sends JobRemoved to the bus for the job's own client anyway;
            # subscribing makes it unconditional (a direct connection gets every signal)
            sub = c.send_call(SD1, SD1_PATH, SD1_MANAGER, "Subscribe")
        else:
            sub = None
        ver = c.send_call(SD1, SD1_PATH, "org.freedesktop.DBus.Properties", "Get", "ss",
                          [SD1_MANAGER, "Version"])
        try:
            for s in checks:
                c.reply(s)
        except dbus.DBusError as e:
            raise CgroupError(f"dbus AddMatch for systemd's JobRemoved: {e}") from None
        if sub is not None:
            try:
                c.reply(sub)
            except dbus.DBusError:
                pass  # e.g. already subscribed: JobRemoved still reaches the job's client
        try:
            self.version = systemd_version(c.reply(ver)[0].value)
        except (dbus.DBusError, CgroupError, AttributeError):
            self.version = -1  # runc: unknown, treated as too old for the newer properties

    def call(self, member, signature="", args=()):
        return self.conn.call(SD1, SD1_PATH, SD1_MANAGER, member, signature, args, JOB_TIMEOUT)

    def wait_job(self, job):
        """The result of a job ("done", "failed", "canceled", "timeout", ...)."""
        def removed(m):
            return (m.member == "JobRemoved" and m.interface == SD1_MANAGER and len(m.body) == 4
                    and m.body[1] == job)
        m = self.conn.wait_signal(removed, JOB_TIMEOUT)
        # a direct connection hears every signal systemd sends: drop what we never wait for
        self.conn.signals = [s for s in self.conn.signals if s.member == "JobRemoved"]
        return m.body[3]

    def start_unit(self, unit, props):
        DBusError = self.dbus.DBusError
        retried = False
        while True:
            try:
                job = self.call("StartTransientUnit", "ssa(sv)a(sa(sv))", [unit, "replace", props, []])[0]
                break
            except DBusError as e:
                if e.name == ERR_UNIT_EXISTS and not retried:
                    # maybe a leftover failed unit: reset it so systemd drops it, retry once
                    self.reset_failed(unit)
                    retried = True
                    continue
                err = CgroupError(f"unable to start unit {unit!r}: {e}")
                err.unit_exists = e.name == ERR_UNIT_EXISTS
                raise err from None
        try:
            result = self.wait_job(job)
        except DBusError as e:
            self.reset_failed(unit)
            if e.name.endswith(".Timeout"):
                raise CgroupError(f"Timeout waiting for systemd to create {unit}") from None
            raise CgroupError(f"waiting for systemd to create {unit}: {e}") from None
        if result != "done":
            self.reset_failed(unit)
            raise CgroupError(f"error creating systemd unit `{unit}`: got `{result}`")

    def stop_unit(self, unit):
        """Stop the unit and wait for it; a unit that is gone already is fine.
        Returns a warning text, or None."""
        DBusError = self.dbus.DBusError
        try:
            job = self.call("StopUnit", "ss", [unit, "replace"])[0]
        except DBusError as e:
            if e.name == ERR_NO_SUCH_UNIT:
                return None
            raise CgroupError(f"unable to stop unit {unit!r}: {e}") from None
        try:
            result = self.wait_job(job)
        except DBusError as e:
            if e.name.endswith(".Timeout"):
                raise CgroupError(f"Timed out while waiting for systemd to remove {unit}") from None
            raise CgroupError(f"waiting for systemd to remove {unit}: {e}") from None
        if result != "done":
            return f"error removing unit `{unit}`: got `{result}`. Continuing..."
        return None

    def reset_failed(self, unit):
        try:
            self.call("ResetFailedUnit", "s", [unit])
        except self.dbus.DBusError:
            pass  # not failed, or not loaded at all: nothing to reset (runc ignores it too)

    def set_properties(self, unit, props):
        try:
            self.call("SetUnitProperties", "sba(sv)", [unit, True, props])
        except self.dbus.DBusError as e:
            raise CgroupError(f"unable to set unit properties: {e}") from None


_conn = None


def _systemd():
    global _conn
    if _conn is None or _conn.conn.sock is None:
        _conn = _Systemd()
    return _conn


def _prop(name, sig, value):
    from .dbus import Variant
    return (name, Variant(sig, value))


# --- properties ------------------------------------------------------------------

def find_device_group(dev_type, major, proc_devices=None):
    """runc findDeviceGroup: "char-pts" for ("c", 136), from /proc/devices; "" if none."""
    if proc_devices is None:
        with open("/proc/devices") as f:
            proc_devices = f.read()
    prefix = {"b": "block-", "c": "char-"}[dev_type]
    cur = None
    for line in proc_devices.splitlines():
        line = line.strip()
        if line == "Block devices:":
            cur = "b"
            continue
        if line == "Character devices:":
            cur = "c"
            continue
        if not line or cur != dev_type:
            continue
        f = line.split(None, 1)
        if len(f) != 2 or not f[0].isdigit():
            raise CgroupError(f"scan /proc/devices line {line!r}: wrong number of fields")
        if int(f[0]) == major:
            return prefix + f[1].split()[0]
    return ""


def device_properties(rules, version, warn, proc_devices=None, exists=None):
    """runc generateDeviceProperties: DevicePolicy/DeviceAllow for a device rule
    list (cgroups.devices.Rule), best effort: the container's own device
    filter (eBPF on v2, devices.allow/deny on v1) is applied as well."""
    from . import devices as devmod
    if exists is None:
        def exists(p):
            try:
                posix.stat(p)
                return True
            except OSError:
                return False
    strict = [_prop("DevicePolicy", "s", "strict"), _prop("DeviceAllow", "a(ss)", [])]
    emu = devmod.Emulator.from_rules(rules)
    if emu.default_allow:
        if not emu.rules:
            return [_prop("DevicePolicy", "s", "auto"), _prop("DeviceAllow", "a(ss)", [])]
        warn("systemd doesn't support blacklist device rules -- applying temporary deny-all rule")
        return strict
    allow = []
    for r in emu.exceptions():
        if r.major == devmod.WILDCARD:
            if r.minor != devmod.WILDCARD:
                warn(f"systemd doesn't support '*:n' device rules -- temporarily ignoring rule: "
                     f"{r.cgroup_string()}")
                continue
            path = ("block-" if r.type == "b" else "char-") + "*"
        elif r.minor == devmod.WILDCARD:
            path = find_device_group(r.type, r.major, proc_devices)
            if not path:
                warn(f"could not find device group for '{r.type}/{r.major}' in /proc/devices -- "
                     f"temporarily ignoring rule: {r.cgroup_string()}")
                continue
        else:
            path = f"/dev/{'block' if r.type == 'b' else 'char'}/{r.major}:{r.minor}"
            # systemd >= 240 parses /dev/{char,block}/M:m; older ones stat(2) it
            if version < 240 and not exists(path):
                continue
        allow.append((path, r.access))
    return strict + [_prop("DeviceAllow", "a(ss)", allow)]


def cpu_quota_properties(quota, period, version, explicit_period):
    """runc addCpuQuota: CPUQuotaPeriodUSec (systemd >= 242) and
    CPUQuotaPerSecUSec, rounded up to whole 10 ms as systemd keeps a percent."""
    props = []
    if period and explicit_period and version >= 242:
        props.append(_prop("CPUQuotaPeriodUSec", "t", period))
    if quota or period:
        per_sec = UINT64_MAX  # USEC_INFINITY
        if quota and quota > 0:
            per_sec = quota * 1000000 // (period or DEF_CPU_QUOTA_PERIOD)
            if per_sec % 10000:
                per_sec = (per_sec // 10000 + 1) * 10000
        props.append(_prop("CPUQuotaPerSecUSec", "t", per_sec))
    return props


def unified_properties(unified, version):
    """runc unifiedResToSystemdProps: the linux.resources.unified keys systemd
    has properties for; the rest are written by fs2 alone."""
    props = []
    for k, v in unified.items():
        convert.unified_key(k)
        if not isinstance(v, str):
            raise CgroupError(f"{convert.PREFIX}unified[{k!r}]: value {v!r} is not a string")
        v = v.strip()
        if k == "cpu.max":
            f = v.split()
            if not 1 <= len(f) <= 2:
                raise CgroupError(f"unified resource {k!r} value invalid: {v!r}")
            try:
                quota = 0 if f[0] == "max" else int(f[0])
                period = int(f[1]) if len(f) == 2 else DEF_CPU_QUOTA_PERIOD
            except ValueError:
                raise CgroupError(f"unified resource {k!r} value invalid: {v!r}") from None
            props += cpu_quota_properties(quota, period, version, True)
        elif k == "cpu.weight":
            props.append(_prop("CPUWeight", "t", _uint(k, v)))
        elif k in ("cpuset.cpus", "cpuset.mems"):
            if version >= 244:
                props.append(_prop("AllowedCPUs" if k == "cpuset.cpus" else "AllowedMemoryNodes",
                                   "ay", range_to_bits(v)))
        elif k in ("memory.high", "memory.low", "memory.min", "memory.max", "memory.swap.max"):
            name = {"memory.high": "MemoryHigh", "memory.low": "MemoryLow", "memory.min": "MemoryMin",
                    "memory.max": "MemoryMax", "memory.swap.max": "MemorySwapMax"}[k]
            props.append(_prop(name, "t", UINT64_MAX if v == "max" else _uint(k, v)))
        elif k == "pids.max":
            props.append(_prop("TasksMax", "t", UINT64_MAX if v == "max" else _uint(k, v)))
    return props


def _uint(key, v):
    if not (v.isdigit() and v.isascii()) or int(v) > UINT64_MAX:
        raise CgroupError(f"unified resource {key!r} value conversion error: {v!r} is not a uint64")
    return int(v)


# --- org.systemd.property.* annotations --------------------------------------------

ANNOTATION_PREFIX = "org.systemd.property."
_TYPE_WORDS = {"boolean": "b", "byte": "y", "int16": "n", "uint16": "q", "int32": "i", "uint32": "u",
               "int64": "x", "uint64": "t", "double": "d", "handle": "h", "string": "s",
               "objectpath": "o", "signature": "g"}
_INT_RANGES = {"y": (0, 255), "n": (-(1 << 15), (1 << 15) - 1), "q": (0, (1 << 16) - 1),
               "i": (-(1 << 31), (1 << 31) - 1), "u": (0, (1 << 32) - 1), "h": (0, (1 << 32) - 1),
               "x": (-(1 << 63), (1 << 63) - 1), "t": (0, UINT64_MAX)}


class _GVariantText:
    """A subset of the GVariant text format godbus' ParseVariant reads: booleans,
    numbers (bare: int32 or double; or with a type word such as "uint64 5" or an
    "@t" annotation), quoted strings, objectpath/signature words, arrays
    [..] and tuples (..)."""

    def __init__(self, text):
        self.s = text
        self.i = 0

    def fail(self, why):
        raise ValueError(f"{why} at offset {self.i} of {self.s!r}")

    def ws(self):
        while self.i < len(self.s) and self.s[self.i] in " \t\n\r":
            self.i += 1

    def word(self):
        j = self.i
        while j < len(self.s) and (self.s[j].isalnum() or self.s[j] in "_.+-"):
            j += 1
        return self.s[self.i:j]

    def parse(self):
        sig, v = self.value(None)
        self.ws()
        if self.i != len(self.s):
            self.fail("unexpected text")
        return sig, v

    def value(self, want):
        self.ws()
        if self.i >= len(self.s):
            self.fail("value expected")
        c = self.s[self.i]
        if c == "@":
            j = self.i + 1
            k = j
            while k < len(self.s) and self.s[k] not in " \t":
                k += 1
            sig = self.s[j:k]
            self.i = k
            return self.value(sig)
        if c in "'\"":
            s = self.string()
            t = want or "s"
            if t not in "sog":
                self.fail(f"a string is not a {t!r}")
            return t, s
        if c == "[":
            return self.array(want)
        if c == "(":
            return self.tuple(want)
        w = self.word()
        if w in ("true", "false"):
            self.i += len(w)
            if want not in (None, "b"):
                self.fail(f"a boolean is not a {want!r}")
            return "b", w == "true"
        if w in _TYPE_WORDS:
            self.i += len(w)
            return self.value(_TYPE_WORDS[w])
        if w:
            self.i += len(w)
            return self.number(w, want)
        self.fail("value expected")

    def number(self, w, want):
        t = want
        try:
            if t is None:
                if any(ch in w for ch in ".eE") and not w.lower().startswith("0x"):
                    t = "d"
                else:
                    t = "i"
            if t == "d":
                return t, float(w)
            if t not in _INT_RANGES:
                self.fail(f"a number is not a {t!r}")
            n = int(w, 0)
        except ValueError:
            self.fail(f"invalid number {w!r}")
        lo, hi = _INT_RANGES[t]
        if not lo <= n <= hi:
            self.fail(f"{n} out of range for {t!r}")
        return t, n

    def string(self):
        q = self.s[self.i]
        self.i += 1
        out = []
        esc = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "a": "\a", "b": "\b",
               "f": "\f", "v": "\v"}
        while self.i < len(self.s):
            c = self.s[self.i]
            self.i += 1
            if c == q:
                return "".join(out)
            if c == "\\" and self.i < len(self.s):
                e = self.s[self.i]
                self.i += 1
                if e in "uU":
                    n = 4 if e == "u" else 8
                    try:
                        out.append(chr(int(self.s[self.i:self.i + n], 16)))
                    except ValueError:
                        self.fail("bad \\u escape")
                    self.i += n
                else:
                    out.append(esc.get(e, e))
            else:
                out.append(c)
        self.fail("unterminated string")

    def array(self, want):
        if want is not None and not want.startswith("a"):
            self.fail(f"an array is not a {want!r}")
        elem = want[1:] if want else None
        self.i += 1
        items = []
        while True:
            self.ws()
            if self.i < len(self.s) and self.s[self.i] == "]":
                self.i += 1
                break
            if items:
                if self.s[self.i] != ",":
                    self.fail("',' expected")
                self.i += 1
            t, v = self.value(elem)
            if elem is None:
                elem = t
            elif t != elem:
                self.fail(f"array elements of types {elem!r} and {t!r}")
            items.append(v)
        if elem is None:
            self.fail("the type of an empty array must be given (e.g. @as [])")
        return "a" + elem, items

    def tuple(self, want):
        fields = None
        if want is not None:
            if not want.startswith("("):
                self.fail(f"a tuple is not a {want!r}")
            from .dbus import split_signature
            fields = split_signature(want[1:-1])
        self.i += 1
        sigs, vals = [], []
        while True:
            self.ws()
            if self.i < len(self.s) and self.s[self.i] == ")":
                self.i += 1
                break
            if vals:
                if self.s[self.i] != ",":
                    self.fail("',' expected")
                self.i += 1
                self.ws()
                if self.s[self.i] == ")":  # one-tuple "(x,)"
                    continue
            t, v = self.value(fields[len(vals)] if fields and len(vals) < len(fields) else None)
            sigs.append(t)
            vals.append(v)
        sig = "(" + "".join(sigs) + ")"
        if not vals or (want is not None and sig != want):
            self.fail(f"tuple of type {sig!r} where {want!r} is wanted" if want else "empty tuple")
        return sig, tuple(vals)


def annotation_properties(annotations):
    """runc initSystemdProps: unit properties from `org.systemd.property.<Name>`
    annotations, values in GVariant text; <name>Sec becomes <name>USec in
    microseconds, as runc converts it."""
    props = []
    for k, v in (annotations or {}).items():
        if not k.startswith(ANNOTATION_PREFIX):
            continue
        name = k[len(ANNOTATION_PREFIX):]
        if len(name) < 3:
            raise CgroupError(f"annotation {k} name incorrect: too short")
        if not all(("A" <= ch <= "Z") or ("a" <= ch <= "z") for ch in name):
            raise CgroupError(f"annotation {k} name incorrect: contains non-alphabetic character")
        try:
            sig, val = _GVariantText(v if isinstance(v, str) else "").parse()
        except ValueError as e:
            raise CgroupError(f"annotation {k}={v} value parse error: {e}") from None
        if len(name) > 3 and name.endswith("Sec") and "a" <= name[-4] <= "z":
            name = name[:-3] + "USec"
            if sig in _INT_RANGES and sig != "h":
                val, sig = (val * 1000000) % (1 << 64), "t"
            elif sig == "d":
                val, sig = int(val * 1000000) % (1 << 64), "t"
            else:
                raise CgroupError(f"annotation {k}={v} value parse error: not a number")
        props.append(_prop(name, sig, val))
    return props


# --- the manager --------------------------------------------------------------------

def running_systemd():
    """sd_booted(3), as runc's IsRunningSystemd: /run/systemd/system is a directory."""
    try:
        return posix.lstat("/run/systemd/system").st_mode & 0o170000 == 0o040000
    except OSError:
        return False


def new(cgroups_path, cid, annotations=None):
    """The manager for a new container; `annotations` (the config's) may carry
    org.systemd.property.* unit properties. Nothing is asked of systemd yet."""
    if not running_systemd():
        raise CgroupError("systemd not running on this host, cannot use systemd cgroups manager")
    parent, prefix, name = parse_cgroups_path(cgroups_path, cid)
    unit = _check_unit(unit_name(prefix, name))
    slice_path = expand_slice(parent or DEFAULT_SLICE)
    v2 = host_mode() == "v2"
    fs = _fs2_at(slice_path, unit) if v2 else _fs1_at(slice_path, unit)
    return SystemdManager(unit, parent, fs, v2, annotation_properties(annotations), fresh=True, name=name)


def _join(*parts):
    return convert.go_clean("/".join(parts))


def _fs2_at(slice_path, unit):
    from . import fs2
    return fs2.Fs2Manager(_join(CGROUP_ROOT, slice_path, unit))


def _fs1_at(slice_path, unit):
    """runc initPaths (v1.go, as of 1.1.6: not relative to the init's cgroup)."""
    from . import fs1, hierarchies
    with open("/proc/self/mountinfo", "rb") as f:
        hs = hierarchies(f.read())
    paths, mounts = {}, {}
    hybrid = host_mode() == "hybrid"
    for h in hs:
        if h.fstype == "cgroup":
            names = [c for c in h.controllers if c in fs1.SUBSYSTEMS]
        elif hybrid and h.mountpoint == CGROUP_ROOT + "/unified":
            names = [fs1.UNIFIED]
        else:
            continue
        if not names:
            continue
        p = _join(h.mountpoint, slice_path, unit)
        for n in names:
            paths.setdefault(n, p)
        mounts[p] = h.mountpoint
    if "devices" not in paths:
        # runc: the devices cgroup is a hard requirement for container security
        raise CgroupError("cgroup: subsystem does not exist: devices (no v1 devices hierarchy is mounted)")
    return fs1.Fs1Manager(paths, [], mounts)


def load(st):
    unit = _check_unit(st.get("unit") or "")
    fst = st.get("fs") or {}
    if st.get("v2"):
        from . import fs2
        fs = fs2.load(fst)
    else:
        from . import fs1
        fs = fs1.load(fst)
    return SystemdManager(unit, st.get("slice") or "", fs, bool(st.get("v2")), fresh=False)


def _in_cgroup(pid, rel, key=None):
    """Is `pid` in the cgroup `rel` (path below the hierarchy's mount point) of
    the v1 hierarchy holding controller `key`, or with key None, of cgroup v2?"""
    try:
        with open(f"/proc/{pid}/cgroup", "rb") as f:
            data = f.read().decode()
    except OSError:
        return False
    for line in data.splitlines():
        _, ctrls, path = line.split(":", 2)
        if (ctrls == "" if key is None else key in ctrls.split(",")) and path == rel:
            return True
    return False


class SystemdManager(Manager):
    driver = "systemd"

    def __init__(self, unit, parent_slice, fs, v2, extra_props=(), fresh=False, name=None):
        self.unit = unit
        self.name = name or unit  # cgroupsPath's name, for the unit's Description
        self.parent_slice = parent_slice  # as given in cgroupsPath ("" = the default)
        self.fs = fs
        self.v2 = v2
        self.extra_props = list(extra_props)
        self.warnings = []  # what runc logs at warning level; the caller may print them
        self._fresh = fresh  # made by new(): the unit does not exist before apply
        self._started = False
        self._start_resources = None

    def __repr__(self):
        return f"SystemdManager({self.unit!r}, {self.fs!r})"

    def _warn(self, msg):
        self.warnings.append(msg)

    # --- lifecycle ---------------------------------------------------------------------

    def apply(self, pid, resources=None):
        r = resources or {}
        if not self.v2 and r.get("unified"):
            raise CgroupError("linux.resources.unified: unified resources need cgroup v2; "
                              "this host uses cgroup v1")
        sd = _systemd()
        slice_unit = self.parent_slice or DEFAULT_SLICE
        props = [_prop("Description", "s", f"pyrunc container {self.name}")]
        if self.unit.endswith(".slice"):
            props.append(_prop("Wants", "as", [slice_unit]))  # a slice's parent comes from Wants=
        else:
            props.append(_prop("Slice", "s", slice_unit))
            props.append(_prop("Delegate", "b", True))
        if pid is not None and pid != -1:
            props.append(_prop("PIDs", "au", [pid]))
        io = "IOAccounting" if self.v2 else "BlockIOAccounting"
        for acct in ("MemoryAccounting", "CPUAccounting", io, "TasksAccounting"):
            props.append(_prop(acct, "b", True))
        props.append(_prop("DefaultDependencies", "b", False))
        if r:
            props += self._resource_props(r, None, sd.version, fresh=True)
        props += self.extra_props
        self._started = True
        try:
            sd.start_unit(self.unit, props)
        except CgroupError as e:
            if getattr(e, "unit_exists", False):
                self._started = False  # someone else's unit: never to be stopped by us
            raise
        self._start_resources = resources
        if pid is None or pid == -1:
            pid = -1
        if self.v2:
            rel = self.fs.path[len(CGROUP_ROOT):] or "/"
            self.fs.apply(-1 if pid == -1 or _in_cgroup(pid, rel) else pid, resources)
        else:
            self._join_v1(pid)

    def _join_v1(self, pid):
        """runc legacyManager.joinCgroups: every hierarchy but name=systemd,
        cpuset with its cpus/mems inherited; a pid already there is not moved."""
        from . import fs1
        fs = self.fs
        for name in fs1.SUBSYSTEMS + (fs1.UNIFIED,):
            d = fs.paths.get(name)
            if not d or name == "name=systemd":
                continue
            fs._mkdir(d)
            if pid == -1:
                continue
            mount = fs.mounts.get(d) or fs1._mount_of(d)
            rel = d[len(mount.rstrip("/")):] or "/"
            if _in_cgroup(pid, rel, key=None if name == fs1.UNIFIED else name):
                continue
            write_file(d + "/cgroup.procs", pid)

    def prepare_add(self, sub=None):
        return self.fs.prepare_add(sub) if type(self.fs).add is not Manager.add else None

    def add(self, pid, sub=None):
        if type(self.fs).add is not Manager.add:
            return self.fs.add(pid, sub)
        # fs2 without its own exec join: the unit's cgroup, or a sub-cgroup of it
        target = self.fs.path
        if sub:
            ctrl, colon, rel = sub.partition(":")
            if not colon:
                rel = sub
            elif ctrl:
                raise CgroupError(f"exec --cgroup {sub!r}: cgroup v2 has no controllers to name")
            rel = convert.clean_path(rel).lstrip("/")
            if rel and rel != ".":
                target = f"{target}/{rel}"
        if not posix.access(target, posix.F_OK):
            raise CgroupError(f"cgroup {target} does not exist")
        write_file(target + "/cgroup.procs", pid)

    def destroy(self):
        if self._fresh and not self._started:
            # create failed before apply, or the unit was someone else's:
            # nothing here is ours to stop or remove
            return
        sd = _systemd()
        err = None
        try:
            w = sd.stop_unit(self.unit)
            if w:
                self._warn(w)
        except CgroupError as e:
            err = e
        # runc 1.1.8: an OOM-killed (failed) scope would stay loaded otherwise
        sd.reset_failed(self.unit)
        # what systemd did not remove (runc: "systemd 239 do not remove sub-cgroups"),
        # and on v1 the hierarchies systemd does not manage
        try:
            self.fs.destroy()
        except CgroupError:
            if err is None:
                raise
        if err is not None:
            raise err

    def exists(self):
        return self.fs.exists()

    def state(self):
        return {"driver": self.driver, "unit": self.unit, "slice": self.parent_slice,
                "v2": self.v2, "fs": self.fs.state()}

    # --- resources -------------------------------------------------------------------

    def set(self, resources, devices=None):
        r = resources or {}
        if not isinstance(r, dict):
            raise CgroupError(f"linux.resources: {r!r} is not an object")
        if not self.v2 and r.get("unified"):
            raise CgroupError("linux.resources.unified: unified resources need cgroup v2; "
                              "this host uses cgroup v1")
        if self.v2 and hasattr(self.fs, "_plan"):
            # every value checked (and checkBeforeUpdate done) before systemd hears of any
            self.fs._plan(r, devices)
        sd = _systemd()
        if resources is not None and resources is self._start_resources:
            # the resource properties went with StartTransientUnit
            props = [] if devices is None else device_properties(devices, sd.version, self._warn)
        else:
            props = self._resource_props(r, devices, sd.version)
        self._start_resources = None
        if props:
            thaw = False
            if not self.v2 and devices is not None and self.fs.paths.get("freezer"):
                # runc freezeBeforeSet: systemd rewrites v1 device rules disruptively
                try:
                    if not self.fs.frozen():
                        self.fs.freeze()
                        thaw = True
                except CgroupError as e:
                    self._warn(f"freeze container before SetUnitProperties failed: {e}")
            try:
                sd.set_properties(self.unit, props)
            finally:
                if thaw:
                    try:
                        self.fs.thaw()
                    except CgroupError as e:
                        self._warn(f"thaw container after SetUnitProperties failed: {e}")
        self.fs.set(resources, devices)

    def _read(self, name):
        """A file of the v2 cgroup (v1: of the cpu/memory hierarchy), or None."""
        if self.v2:
            p = f"{self.fs.path}/{name}"
        else:
            ctrl = name.partition(".")[0]
            d = self.fs.paths.get(ctrl)
            if not d:
                return None
            p = f"{d}/{name}"
        try:
            return read_file(p)
        except CgroupError:
            return None

    def _resource_props(self, r, devices, version, fresh=False):
        """runc genV2ResourcesProperties / genV1ResourcesProperties for
        linux.resources `r` (absent fields: no property). A half given swap or
        cpu quota/period is completed from the cgroup, as fs2 completes it."""
        props = []
        if devices is not None:
            props += device_properties(devices, version, self._warn)

        m = convert.section(r, "memory")
        limit, swap, reservation = m.get("limit"), m.get("swap"), m.get("reservation")
        v = convert.memory_value("memory.limit", limit)
        if v is not None:
            props.append(_prop("MemoryMax" if self.v2 else "MemoryLimit", "t",
                               UINT64_MAX if v == "max" else int(v)))
        if self.v2:
            v = convert.memory_value("memory.reservation", reservation)
            if v is not None:
                props.append(_prop("MemoryLow", "t", UINT64_MAX if v == "max" else int(v)))
            if limit or swap:
                mem = limit
                if swap and not limit and not fresh:
                    cur = self._read("memory.max")
                    cur = convert.parse_memory_limit(cur) if cur is not None else 0
                    mem = cur if cur > 0 else 0
                sw = convert.memory_swap_to_v2(swap, mem)
                if sw or (swap and swap > 0):
                    # (runc leaves out 0, swap = limit: no swap; systemd should know it too)
                    props.append(_prop("MemorySwapMax", "t", UINT64_MAX if sw == -1 else sw))

        c = convert.section(r, "cpu")
        shares = c.get("shares")
        if shares:
            shares = convert.uint("cpu.shares", shares)
            if self.v2:
                props.append(_prop("CPUWeight", "t", convert.cpu_shares_to_weight(shares)))
            else:
                props.append(_prop("CPUShares", "t", shares))
        quota, period = c.get("quota"), c.get("period")
        if quota or period:
            q, p = self._complete_quota(quota, period, fresh)
            props += cpu_quota_properties(q, p, version, bool(period))

        b = convert.section(r, "blockIO")
        w = convert.blkio_weight("blockIO.weight", b.get("weight"))
        if w is not None:
            if self.v2:
                props.append(_prop("IOWeight", "t", convert.blkio_weight_to_io_weight(w)))
            else:
                props.append(_prop("BlockIOWeight", "t", w))

        pids = convert.section(r, "pids")
        lim = pids.get("limit")
        if convert.pids_max(lim) is not None and (lim > 0 or lim == -1):
            # systemd refuses TasksMax=0: runtime-spec's 0 goes to pids.max alone
            props.append(_prop("TasksMax", "t", UINT64_MAX if lim == -1 else lim))

        for key, pname in (("cpus", "AllowedCPUs"), ("mems", "AllowedMemoryNodes")):
            v = convert.cpuset_list(f"cpu.{key}", c.get(key))
            if v is not None and version >= 244:
                props.append(_prop(pname, "ay", range_to_bits(v)))

        if self.v2 and r.get("unified"):
            uni = convert.section(r, "unified")
            props += unified_properties(uni, version)
        return props

    def _complete_quota(self, quota, period, fresh):
        """(quota, period) with the missing half from the cgroup (0 = none)."""
        q = None if quota is None else convert.integer("cpu.quota", quota)
        p = None if period is None else convert.uint("cpu.period", period)
        if (q and p) or fresh:
            return q or 0, p or 0
        cur_q, cur_p = None, None
        if self.v2:
            text = self._read("cpu.max")
            if text is not None:
                qs, cur_p = convert.parse_cpu_max(text)
                cur_q = -1 if qs == "max" else int(qs)
        else:
            tq, tp = self._read("cpu.cfs_quota_us"), self._read("cpu.cfs_period_us")
            if tq is not None and tp is not None:
                cur_q, cur_p = int(tq), int(tp)
        if not q:
            q = cur_q or 0
        if not p:
            p = cur_p or 0
        return q, p

    # --- the rest is the fs driver's ---------------------------------------------------

    def pids(self):
        return self.fs.pids()

    def freeze(self):
        self.fs.freeze()

    def thaw(self):
        self.fs.thaw()

    def frozen(self):
        return self.fs.frozen()

    def stats(self):
        return self.fs.stats()

    def oom_kills(self):
        return self.fs.oom_kills()

    def freezer_probe(self):
        return self.fs.freezer_probe()
