"""A thin binding of the host's libseccomp2 (`libseccomp.so.2`), on pyrunc.cabi.

Only what `seccomp` needs: build a filter context, add architectures,
attributes and rules, load it, get the notify listener fd, and the probes
`features` reports. The library is dlopen()ed on first use (`lib()`), never
at import; the constants are those of <seccomp.h> (libseccomp 2.5/2.6).
Functions return what the C library returns: libseccomp reports errors as
negative errno values, which `check` turns into OSError.
"""

import posix

import _ctypes

from . import cabi as C

# <seccomp.h>: actions
ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_NOTIFY = 0x7FC00000
ACT_ERRNO = 0x00050000  # | errno & 0xffff
ACT_TRACE = 0x7FF00000  # | msg & 0xffff
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000

# enum scmp_compare
CMP_NE, CMP_LT, CMP_LE, CMP_EQ, CMP_GE, CMP_GT, CMP_MASKED_EQ = range(1, 8)

# enum scmp_filter_attr
FLTATR_ACT_DEFAULT = 1
FLTATR_ACT_BADARCH = 2
FLTATR_CTL_NNP = 3
FLTATR_CTL_TSYNC = 4
FLTATR_API_TSKIP = 5
FLTATR_CTL_LOG = 6
FLTATR_CTL_SSB = 7
FLTATR_CTL_OPTIMIZE = 8
FLTATR_API_SYSRAWRC = 9
FLTATR_CTL_WAITKILL = 10  # libseccomp >= 2.6

NR_SCMP_ERROR = -1  # __NR_SCMP_ERROR: seccomp_syscall_resolve_name found nothing


def errno_action(errno):
    return ACT_ERRNO | (errno & 0xFFFF)


def trace_action(msg):
    return ACT_TRACE | (msg & 0xFFFF)


class ArgCmp(C.Structure):
    """struct scmp_arg_cmp"""
    _fields_ = [("arg", C.c_uint), ("op", C.c_int), ("datum_a", C.c_uint64), ("datum_b", C.c_uint64)]


class Version(C.Structure):
    """struct scmp_version"""
    _fields_ = [("major", C.c_uint), ("minor", C.c_uint), ("micro", C.c_uint)]


_P, _S, _I, _U32, _UI = C.c_void_p, C.c_char_p, C.c_int, C.c_uint32, C.c_uint

# name: (restype, argtypes...)
_PROTOS = {
    "seccomp_version": (_P,),
    "seccomp_api_get": (_UI,),
    "seccomp_init": (_P, _U32),
    "seccomp_release": (None, _P),
    "seccomp_arch_native": (_U32,),
    "seccomp_arch_resolve_name": (_U32, _S),
    "seccomp_arch_add": (_I, _P, _U32),
    "seccomp_attr_set": (_I, _P, _I, _U32),
    "seccomp_syscall_resolve_name": (_I, _S),
    "seccomp_rule_add_array": (_I, _P, _U32, _I, _UI, _P),
    "seccomp_load": (_I, _P),
    "seccomp_notify_fd": (_I, _P),
}

SONAME = "libseccomp.so.2"


class Lib:
    """libseccomp's functions as attributes, wrapped on first access."""

    def __init__(self, soname=SONAME):
        try:
            self._handle = _ctypes.dlopen(soname, _ctypes.RTLD_LOCAL)
        except OSError as e:
            raise OSError(2, f"cannot load {soname} (is libseccomp2 installed?): {e}") from None

    def __getattr__(self, name):
        if name.startswith("_") or name not in _PROTOS:
            raise AttributeError(name)
        restype, *argtypes = _PROTOS[name]
        fn = C.function(self._handle, name, restype, *argtypes)
        setattr(self, name, fn)
        return fn

    def version(self):
        """(major, minor, micro) of the loaded library."""
        v = Version.from_address(self.seccomp_version())
        return v.major, v.minor, v.micro

    def version_str(self):
        return "%d.%d.%d" % self.version()


_lib = None


def lib():
    """The loaded library (dlopen on the first call)."""
    global _lib
    if _lib is None:
        _lib = Lib()
    return _lib


def check(rc, what):
    """A libseccomp return value: negative errno → OSError."""
    if rc < 0:
        raise OSError(-rc, f"{what}: {posix.strerror(-rc)}")
    return rc


_ARRAY_TYPES = {}


def arg_array(conds):
    """[(index, op, a, b), ...] → a `struct scmp_arg_cmp[]` (kept alive by the
    caller), or None (NULL) for no conditions."""
    if not conds:
        return None
    t = _ARRAY_TYPES.get(len(conds))
    if t is None:
        t = _ARRAY_TYPES[len(conds)] = C.array(ArgCmp, len(conds))
    arr = t()
    for i, (index, op, a, b) in enumerate(conds):
        arr[i].arg = index
        arr[i].op = op
        arr[i].datum_a = a
        arr[i].datum_b = b
    return arr
