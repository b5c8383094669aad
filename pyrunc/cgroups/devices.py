"""Device access control for a container's cgroup, as runc 1.1.5 does it.

- `Rule`: one device cgroup rule (runc's devices.Rule).
- `DEFAULT_ALLOWED`: runc's specconv.AllowedDevices, appended to every
  container's rules (users cannot disable them; runc's comment admits it).
- `rules_for_container`: linux.resources.devices in order, then the
  AllowedDevices whose path no linux.devices entry names
  (specconv/spec_linux.go CreateCgroupConfig + createDevices). linux.devices
  entries themselves are NOT allowed automatically: runc 1.1.5 only creates
  their nodes; access comes from linux.resources.devices.
- `Emulator`: runc's cgroups/devices/devices_emulator.go: a default policy
  (allow-list or deny-list) plus exceptions keyed by (type, major, minor);
  refuses to "punch holes" in wildcard exceptions the way runc does.
- cgroup v1: `v1_writes` is the emulator's minimal Transition from the
  cgroup's current devices.list to the target; `apply_v1` performs it and
  re-reads devices.list to check the result (cgroups/fs/devices.go).
- cgroup v2: `apply_v2` loads runc's eBPF device filter (`ebpf`) and
  attaches it to the cgroup directory, replacing the filters an earlier
  apply_v2 attached there and leaving anyone else's alone.
- `allowed`: what a rule list lets through, for the eBPF filter (exactly)
  and, with v1=True, for the v1 kernel controller.
"""

import posix

from .manager import CgroupError, read_file, write_file

WILDCARD = -1
_MAX_U32 = 0xFFFFFFFF

# access bits as runc's devices.Permissions.toSet numbers them
_R, _W, _M = 1, 2, 4
_RWM = 7
_BIT = {"r": _R, "w": _W, "m": _M}
_PERMS = tuple("".join(c for c, b in (("r", _R), ("w", _W), ("m", _M)) if n & b) for n in range(8))
_TYPES = ("a", "b", "c")


def access_bits(access, where="access"):
    """'rw' -> bit set; ValueError on anything but r, w and m."""
    if not isinstance(access, str):
        raise ValueError(f"{where}: must be a string of r, w and m, not {access!r}")
    n = 0
    for ch in access:
        b = _BIT.get(ch)
        if b is None:
            raise ValueError(f"{where}: invalid device access {access!r} (only r, w and m)")
        n |= b
    return n


def _num(v, where):
    if v is None:
        return WILDCARD
    if isinstance(v, bool) or not isinstance(v, int) or not WILDCARD <= v <= _MAX_U32:
        raise ValueError(f"{where}: must be an integer from 0 to {_MAX_U32} (or -1/absent for any), "
                         f"not {v!r}")
    return v


class Rule:
    """One device cgroup rule: type "a" (all), "c" or "b"; major/minor -1 for "*";
    access a subset of "rwm" (kept in r, w, m order); allow True/False."""

    __slots__ = ("type", "major", "minor", "access", "allow")

    def __init__(self, type, major=WILDCARD, minor=WILDCARD, access="rwm", allow=True):
        if type not in _TYPES:
            raise ValueError(f"type: invalid cgroup device type {type!r} (a, b or c)")
        if not isinstance(allow, bool):
            raise ValueError(f"allow: must be a boolean, not {allow!r}")
        s = object.__setattr__
        s(self, "type", type)
        s(self, "major", _num(major, "major"))
        s(self, "minor", _num(minor, "minor"))
        s(self, "access", _PERMS[access_bits(access)])
        s(self, "allow", allow)

    def __setattr__(self, name, value):
        raise AttributeError("Rule is frozen")

    def __delattr__(self, name):
        raise AttributeError("Rule is frozen")

    def _key(self):
        return (self.type, self.major, self.minor, self.access, self.allow)

    def __eq__(self, other):
        return type(other) is Rule and self._key() == other._key()

    def __hash__(self):
        return hash(self._key())

    def __repr__(self):
        return (f"Rule({self.type!r}, {self.major}, {self.minor}, {self.access!r}, "
                f"allow={self.allow})")

    def cgroup_string(self):
        """runc's Rule.CgroupString: "c 1:3 rwm", "c 136:* rwm", "a *:* rwm"."""
        return _meta_str((self.type, self.major, self.minor)) + " " + self.access


def _meta_str(meta):
    t, ma, mi = meta
    return f"{t} {'*' if ma == WILDCARD else ma}:{'*' if mi == WILDCARD else mi}"


def parse_rule(d, where="device rule"):
    """One runtime-spec linux.resources.devices entry -> Rule.

    As runc's CreateCgroupConfig: type defaults to "a", absent major/minor
    mean "*", only a, b and c are cgroup device types ("u" and "p" are
    errors). Deviation: an absent or empty access means "rwm" (runtime-spec
    marks it OPTIONAL) where runc 1.1.5 fails with "device access at %d
    field cannot be empty"; and unknown access letters are an error where
    runc silently drops them.
    """
    if not isinstance(d, dict):
        raise ValueError(f"{where}: must be an object, not {d!r}")
    if "allow" not in d:
        raise ValueError(f"{where}.allow: is required")
    allow = d["allow"]
    if not isinstance(allow, bool):
        raise ValueError(f"{where}.allow: must be a boolean, not {allow!r}")
    t = d.get("type")
    if t is None or t == "":
        t = "a"
    if t not in _TYPES:
        raise ValueError(f"{where}.type: invalid cgroup device type {t!r} (a, b or c)")
    major = _num(d.get("major"), f"{where}.major")
    minor = _num(d.get("minor"), f"{where}.minor")
    access = d.get("access")
    if access is None or access == "":
        access = "rwm"
    bits = access_bits(access, f"{where}.access")
    return Rule(t, major, minor, _PERMS[bits], allow)


# runc 1.1.5 specconv.AllowedDevices, in its order, with the paths that let a
# linux.devices entry of the same path drop the rule.
ALLOWED_DEVICES = (
    (None, Rule("c", WILDCARD, WILDCARD, "m", True)),  # mknod of any device
    (None, Rule("b", WILDCARD, WILDCARD, "m", True)),
    ("/dev/null", Rule("c", 1, 3, "rwm", True)),
    ("/dev/random", Rule("c", 1, 8, "rwm", True)),
    ("/dev/full", Rule("c", 1, 7, "rwm", True)),
    ("/dev/tty", Rule("c", 5, 0, "rwm", True)),
    ("/dev/zero", Rule("c", 1, 5, "rwm", True)),
    ("/dev/urandom", Rule("c", 1, 9, "rwm", True)),
    (None, Rule("c", 136, WILDCARD, "rwm", True)),  # /dev/pts/*
    (None, Rule("c", 5, 2, "rwm", True)),  # /dev/ptmx
    (None, Rule("c", 10, 200, "rwm", True)),  # /dev/net/tun
)
DEFAULT_ALLOWED = tuple(r for _, r in ALLOWED_DEVICES)


def _path(dev):
    return dev.get("path") if isinstance(dev, dict) else getattr(dev, "path", None)


def rules_for_container(resources_devices, config_devices):
    """The container's device cgroup rules, in runc 1.1.5's order.

    linux.resources.devices (parsed in order), then the AllowedDevices
    except those whose path equals a linux.devices entry's path (runc's
    createDevices dedupe: the config's device "takes priority", which in
    practice removes the allow rule for it). linux.devices entries are not
    turned into allow rules. The list is checked with the emulator, so a
    rule set cgroup v1 cannot express fails here with ValueError.
    """
    rules = []
    for i, d in enumerate(resources_devices or ()):
        rules.append(parse_rule(d, f"linux.resources.devices[{i}]"))
    paths = {_path(d) for d in config_devices or ()}
    rules.extend(r for p, r in ALLOWED_DEVICES if p is None or p not in paths)
    try:
        Emulator.from_rules(rules)
    except CgroupError as e:
        raise ValueError(f"linux.resources.devices: {e}") from None
    return rules


# --- the emulator --------------------------------------------------------------

class Emulator:
    """runc's devices emulator: default policy plus exceptions.

    default_allow False is an allow-list (the exceptions are what is
    allowed), True a deny-list. `rules` maps (type, major, minor) to a
    non-empty access bit set; type is "b" or "c" (never "a").
    """

    __slots__ = ("default_allow", "rules")

    def __init__(self, default_allow=False, rules=None):
        self.default_allow = default_allow
        self.rules = dict(rules or {})

    def __eq__(self, other):
        return (type(other) is Emulator and self.default_allow == other.default_allow
                and self.rules == other.rules)

    def __repr__(self):
        ex = ", ".join(f"{_meta_str(m)} {_PERMS[p]}" for m, p in self._ordered())
        return f"Emulator({'deny-list' if self.default_allow else 'allow-list'}: [{ex}])"

    @classmethod
    def from_rules(cls, rules):
        """A fresh allow-list with `rules` applied in order (runc's buildEmulator)."""
        e = cls()
        for r in rules:
            e.apply(r)
        return e

    @classmethod
    def from_list(cls, text):
        """The state a devices.list shows (runc's EmulatorFromList). A deny-list
        cgroup lists only "a *:* rwm": its deny exceptions cannot be known."""
        e = cls()
        for line in text.splitlines():
            if not line.strip():
                continue
            fields = line.replace(":", " ").split()
            if len(fields) != 4:
                raise CgroupError(f"malformed devices.list rule {line!r}")
            t, ma, mi, perms = fields
            if t == "a":
                e.default_allow, e.rules = True, {}
                continue
            if t not in ("b", "c"):
                raise CgroupError(f"devices.list rule {line!r}: unknown device type {t!r}")
            try:
                ma = WILDCARD if ma == "*" else _u32(ma)
                mi = WILDCARD if mi == "*" else _u32(mi)
                bits = access_bits(perms)
            except ValueError:
                raise CgroupError(f"devices.list rule {line!r}: invalid number or access") from None
            if not bits or _PERMS[bits] != perms:
                raise CgroupError(f"devices.list rule {line!r}: invalid access {perms!r}")
            e.apply(Rule(t, ma, mi, perms, True))
        return e

    def apply(self, rule):
        """Apply one rule as runc's Emulator.Apply; CgroupError on a hole in a wildcard."""
        if rule.type == "a":
            # allow a: reset to a deny-list (allow everything); deny a: to an allow-list
            self.default_allow, self.rules = rule.allow, {}
            return
        meta = (rule.type, rule.major, rule.minor)
        bits = access_bits(rule.access)
        if rule.allow == self.default_allow:
            self._remove(meta, bits, rule)
        elif bits:
            self.rules[meta] = self.rules.get(meta, 0) | bits

    def _remove(self, meta, bits, rule):
        t, ma, mi = meta
        for partial in ((t, WILDCARD, mi), (t, ma, WILDCARD), (t, WILDCARD, WILDCARD)):
            if partial == meta:
                continue
            have = self.rules.get(partial, 0)
            if have & bits:
                kind = "allow" if rule.allow else "deny"
                raise CgroupError(
                    f"device rule {kind} '{rule.cgroup_string()}' is not supported by the devices "
                    f"cgroup: cannot punch a hole in the wildcard rule '{_meta_str(partial)} "
                    f"{_PERMS[have]}'")
        left = self.rules.get(meta, 0) & ~bits
        if left:
            self.rules[meta] = left
        else:
            self.rules.pop(meta, None)

    def _ordered(self):
        # runc's orderedEntries: by (major, minor, type)
        return sorted(self.rules.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0]))

    def transition(self, target):
        """runc's Transition: the fewest rules that turn this state into `target`."""
        out = []
        old = self.rules
        if self.default_allow or self.default_allow != target.default_allow:
            out.append(Rule("a", WILDCARD, WILDCARD, "rwm", target.default_allow))
            old = {}
        for meta, perms in sorted(old.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
            dropped = perms & ~target.rules.get(meta, 0)
            if dropped:
                out.append(Rule(*meta, _PERMS[dropped], target.default_allow))
        for meta, perms in target._ordered():
            gained = perms & ~old.get(meta, 0)
            if gained:
                out.append(Rule(*meta, _PERMS[gained], not target.default_allow))
        return out

    def exceptions(self):
        """The exceptions as rules (all with allow = not default_allow), in runc's order:
        what runc's Emulator.Rules() yields after its leading "a" rule."""
        return [Rule(*meta, _PERMS[p], not self.default_allow) for meta, p in self._ordered()]

    def allows(self, type, major, minor, access, v1=False):
        """Would a `type` (c/b) device major:minor be allowed `access` (bits)?

        v1=False: the eBPF filter's semantics (runc's devicefilter): an
        exception matches when it covers every requested access bit.
        v1=True: the v1 kernel controller, which in deny-list mode denies
        when an exception covers ANY requested bit (match_exception_partial).
        In allow-list mode both agree.
        """
        partial = v1 and self.default_allow
        for (t, ma, mi), perms in self.rules.items():
            if t != type or (ma != WILDCARD and ma != major) or (mi != WILDCARD and mi != minor):
                continue
            if (perms & access) if partial else not (access & ~perms):
                return not self.default_allow
        return self.default_allow


def _u32(s):
    if not s.isdigit() or int(s) > _MAX_U32:
        raise ValueError(s)
    return int(s)


def _request(type, major, minor, access):
    if type not in ("b", "c"):
        raise ValueError(f"device type must be 'b' or 'c', not {type!r}")
    bits = access_bits(access) if isinstance(access, str) else access
    if not bits or bits & ~_RWM:
        raise ValueError(f"access must be a non-empty subset of 'rwm', not {access!r}")
    return bits


def allowed(rules, type, major, minor, access, v1=False):
    """Would the kernel let a process under `rules` have `access` ("r", "rw", "m"...)
    to the `type` ("c"/"b") device major:minor? v1=False: the cgroup v2 eBPF
    filter (exactly what ebpf.program(rules) returns); v1=True: the v1
    devices controller after apply_v1. CgroupError if the rules are not
    supported (a hole in a wildcard rule)."""
    bits = _request(type, major, minor, access)
    return Emulator.from_rules(rules).allows(type, major, minor, bits, v1)


# --- cgroup v1 -------------------------------------------------------------------

def v1_writes(rules, current=None):
    """[(file, value)] that take a v1 devices cgroup to `rules`, as runc computes them.

    `current` is the cgroup's devices.list text; None means a fresh cgroup
    under an allow-all parent ("a *:* rwm"). From a deny-list (allow-all)
    cgroup the first write is always the disruptive "a" rule.
    """
    source = Emulator(default_allow=True) if current is None else Emulator.from_list(current)
    target = Emulator.from_rules(rules)
    return [("devices.allow" if r.allow else "devices.deny", r.cgroup_string())
            for r in source.transition(target)]


def apply_v1(cgroup_dir, rules):
    """Write the minimal devices.allow/devices.deny changes, then check devices.list.

    Nothing is done inside a user namespace (runc: the kernel refuses).
    """
    if running_in_userns():
        return
    lst = cgroup_dir.rstrip("/") + "/devices.list"
    target = Emulator.from_rules(rules)
    source = Emulator.from_list(read_file(lst))
    for r in source.transition(target):
        write_file(f"{cgroup_dir.rstrip('/')}/devices.{'allow' if r.allow else 'deny'}",
                   r.cgroup_string())
    after = Emulator.from_list(read_file(lst))
    if not target.default_allow and after != target:
        raise CgroupError(f"{lst}: the resulting devices cgroup doesn't precisely match the "
                          f"target ({after!r}, wanted {target!r})")
    if target.default_allow != after.default_allow:
        raise CgroupError(f"{lst}: the resulting devices cgroup doesn't match the target mode")


# --- cgroup v2 -------------------------------------------------------------------

def apply_v2(cgroup_dir, rules):
    """Load runc's eBPF device filter for `rules` and attach it to the cgroup2
    directory (BPF_F_ALLOW_MULTI), replacing the filters an earlier apply_v2
    attached there. As runc, a failure to load or attach is ignored only in
    a user namespace or when every rule allows rwm."""
    from . import ebpf
    code = ebpf.program(rules)
    try:
        fd = posix.open(cgroup_dir, posix.O_DIRECTORY | posix.O_RDONLY | posix.O_CLOEXEC)
    except OSError as e:
        from ..linux import go_strerror
        raise CgroupError(f"open {cgroup_dir}: {go_strerror(e.errno)}") from None
    try:
        ebpf.install(fd, code)
    except CgroupError as e:
        if not _can_skip_ebpf_error(rules):
            raise CgroupError(f"cgroup device filter for {cgroup_dir}: {e}") from None
    finally:
        posix.close(fd)


def _can_skip_ebpf_error(rules):
    # runc fs2/devices.go canSkipEBPFError
    if running_in_userns():
        return True
    return all(r.allow and r.access == "rwm" for r in rules)


_userns = None


def running_in_userns():
    """runc's userns.RunningInUserNS: /proc/self/uid_map is not the full identity map."""
    global _userns
    if _userns is None:
        try:
            with open("/proc/self/uid_map", "rb") as f:
                data = f.read().split()
        except OSError:
            data = None  # no user namespaces in this kernel
        _userns = data is not None and data != [b"0", b"0", b"4294967295"]
    return _userns
