"""Capability names, and applying the five sets of process.capabilities."""

from . import linux

# include/uapi/linux/capability.h
NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)
NUMBERS = {n: i for i, n in enumerate(NAMES)}


_last_cap = None


def last_cap():
    """Highest capability the running kernel knows (read once per process)."""
    global _last_cap
    if _last_cap is None:
        try:
            with open("/proc/sys/kernel/cap_last_cap", "rb") as f:
                _last_cap = int(f.read())
        except OSError:
            _last_cap = len(NAMES) - 1
    return _last_cap


def to_mask(names, warn=None, what="capabilities"):
    """Bit mask of the known names; unknown ones are warned about and skipped.

    runtime-spec v1.3 config.md: a runtime MUST NOT fail on unknown
    capabilities, it SHOULD log a warning.
    """
    mask = 0
    top = last_cap()
    for n in names:
        num = NUMBERS.get(n)
        if num is None or num > top:
            if warn:
                warn(f"unknown capability {n!r} in {what}, ignored")
            continue
        mask |= 1 << num
    return mask


def own_bounding():
    """The runtime's own bounding set: no container can get more."""
    with open("/proc/self/status", "rb") as f:
        for line in f:
            if line.startswith(b"CapBnd:"):
                return int(line.split()[1], 16)
    mask = 0
    for cap in range(last_cap() + 1):
        if linux.capbset_read(cap):
            mask |= 1 << cap
    return mask


def _bits(mask):
    cap = 0
    while mask:
        if mask & 1:
            yield cap
        mask >>= 1
        cap += 1


class CapSets:
    """The five masks, resolved once in the parent (warnings go to its log).

    A capability the runtime itself does not have in its bounding set (this
    host lacks CAP_SYS_RESOURCE, for one) cannot be granted: config.md v1.3
    says to warn and not fail, so it is dropped from every set with a warning.
    """

    __slots__ = ("bounding", "effective", "inheritable", "permitted", "ambient", "have")

    def __init__(self, caps, warn=None, user_ns=False):
        # What the init can be given: the runtime's own bounding set, or all
        # of them inside a user namespace (unshare/setns to one resets the
        # bounding set to full).
        self.have = have = ((1 << (last_cap() + 1)) - 1) if user_ns else own_bounding()
        missing = 0
        for s in self.__slots__[:5]:
            names = getattr(caps, s) if caps is not None else ()
            mask = to_mask(names, warn, f"capabilities.{s}")
            missing |= mask & ~have
            setattr(self, s, mask & have)
        if missing and warn:
            names = ", ".join(NAMES[c] for c in range(len(NAMES)) if missing & (1 << c))
            warn(f"capabilities not in the runtime's bounding set, not granted: {names}")


def bounding_from_status(status):
    """CapBnd from the text of /proc/<pid>/status."""
    for line in status.split(b"\n"):
        if line.startswith(b"CapBnd:"):
            return int(line.split()[1], 16)
    return (1 << (last_cap() + 1)) - 1


def drop_bounding(sets, current):
    """Drop from the bounding set what the config does not list (before setuid).

    `current` is the bounding set the init holds now (bounding_from_status).
    """
    for cap in _bits(current & ~sets.bounding):
        linux.capbset_drop(cap)


def apply(sets):
    """Effective/permitted/inheritable, then ambient.

    The kernel only lets a capability into the ambient set if it is both
    permitted and inheritable; runc's own default spec lists ambient caps
    without inheritable ones, and runc (through gocapability) ignores the
    refusal. So do we: the ambient set is what the other sets allow.
    """
    linux.capset(sets.effective, sets.permitted, sets.inheritable)
    linux.ambient_clear()
    for cap in _bits(sets.ambient & sets.permitted & sets.inheritable):
        linux.ambient_raise(cap)
