"""Signal names and numbers without the `signal` module (it imports enum, ~3 ms)."""

import _signal

from .errors import PyruncError

NAMES = {name[3:]: getattr(_signal, name) for name in dir(_signal)
         if name.startswith("SIG") and not name.startswith("SIG_") and name not in ("SIGRTMIN", "SIGRTMAX")}
SIGKILL = _signal.SIGKILL
SIGTERM = _signal.SIGTERM


def parse(raw):
    """runc's parseSignal: a number, or a name with or without SIG, any case."""
    try:
        num = int(raw, 10)
    except ValueError:
        pass
    else:
        # 0 is accepted, as runc does: the kernel's "does it exist" probe
        if num < 0 or num > _signal.SIGRTMAX:
            raise PyruncError(f"unknown signal {raw!r}".replace("'", '"'))
        return num
    name = raw.upper()
    if name.startswith("SIG"):
        name = name[3:]
    try:
        return NAMES[name]
    except KeyError:
        raise PyruncError(f'unknown signal "{raw}"') from None


def handle(signum, handler):
    """Install a Python-level handler; returns the previous one."""
    return _signal.signal(signum, handler)


def default(signum):
    _signal.signal(signum, _signal.SIG_DFL)


def name(num):
    for k, v in NAMES.items():
        if v == num:
            return "SIG" + k
    return str(num)
