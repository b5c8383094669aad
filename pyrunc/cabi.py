"""The slice of ctypes that `linux` needs, built directly on `_ctypes`.

`import ctypes` costs ~2.5 ms on the reference machine (it defines some
forty types, imports struct and the endian helpers), about 7 % of a whole
`pyrunc run`. The C half, `_ctypes`, costs nothing; the few C types and
the libc function wrapper below are what ctypes/__init__.py defines for
them, nothing more. Only LP64 Linux is supported (x86_64, aarch64), where
long and size_t are 64 bits.
"""

import _ctypes
from _ctypes import Array, Structure, byref, get_errno, sizeof  # noqa: F401 - re-exported

class c_char(_ctypes._SimpleCData):
    _type_ = "c"


class c_short(_ctypes._SimpleCData):
    _type_ = "h"


class c_ushort(_ctypes._SimpleCData):
    _type_ = "H"


class c_int(_ctypes._SimpleCData):
    _type_ = "i"


class c_uint(_ctypes._SimpleCData):
    _type_ = "I"


class c_long(_ctypes._SimpleCData):
    _type_ = "l"


class c_ulong(_ctypes._SimpleCData):
    _type_ = "L"


class c_int32(_ctypes._SimpleCData):
    _type_ = "i"


class c_uint32(_ctypes._SimpleCData):
    _type_ = "I"


class c_uint64(_ctypes._SimpleCData):
    _type_ = "L"


c_size_t = c_ulong


class c_void_p(_ctypes._SimpleCData):
    _type_ = "P"


class c_char_p(_ctypes._SimpleCData):
    _type_ = "z"

if sizeof(c_long) != 8:  # pragma: no cover
    raise ImportError("pyrunc.cabi supports LP64 platforms only")


def array(ctype, n):
    """The type `ctype * n`."""
    return type(f"{ctype.__name__}_Array_{n}", (Array,), {"_type_": ctype, "_length_": n})


class _Libc:
    """libc as ctypes.CDLL(None, use_errno=True) would load it: functions return int."""

    def __init__(self):
        self._handle = _ctypes.dlopen(None, _ctypes.RTLD_LOCAL)

        class _FuncPtr(_ctypes.CFuncPtr):
            _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
            _restype_ = c_int

        self._FuncPtr = _FuncPtr

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        func = self._FuncPtr((name, self))
        setattr(self, name, func)
        return func


libc = _Libc()


def python_function(name, restype):
    """A C function of the running interpreter or libc, called like
    ctypes.pythonapi calls: with the GIL held, errno saved (ctypes.get_errno).
    For the few calls that must not let another thread run in between, as
    os.fork() makes fork() with the GIL held."""

    class _Proto(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_PYTHONAPI | _ctypes.FUNCFLAG_USE_ERRNO
        _restype_ = restype

    return _Proto(_ctypes.dlsym(libc._handle, name))


def function(handle, name, restype, *argtypes):
    """The C function `name` of a dlopen()ed library, as ctypes' CFUNCTYPE would
    wrap it: `restype` (None for void) and fixed `argtypes`, no errno
    bookkeeping. AttributeError if the library has no such symbol."""

    class _Proto(_ctypes.CFuncPtr):
        _flags_ = _ctypes.FUNCFLAG_CDECL
        _restype_ = restype
        _argtypes_ = argtypes

    try:
        return _Proto(_ctypes.dlsym(handle, name))
    except OSError:
        raise AttributeError(name) from None
