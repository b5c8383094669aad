"""Signal names and numbers without the `signal` module (it imports enum, ~3 ms)."""

import _signal
import posix

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


# never forwarded: uncatchable, child bookkeeping, the synchronous faults that
# are ours, and the job-control stops our own terminal access raises (a caught
# SIGTTOU restarts a background tcsetattr forever)
_NOT_FORWARDED = ("KILL", "STOP", "CHLD", "CLD", "SEGV", "BUS", "FPE", "ILL", "TRAP", "SYS", "TTIN", "TTOU")


class Forwarder:
    """runc's signalHandler for a foreground `run`/`exec`: every other signal
    is caught from before the process starts, so none kills us with the
    container left running; those that come before `to(pid)` are queued and
    sent once the process runs, as runc's buffered channel does."""

    def __init__(self):
        self.pid = None
        self.pending = []
        self.saved = []
        for name, num in NAMES.items():
            if name in _NOT_FORWARDED:
                continue
            try:
                self.saved.append((num, _signal.signal(num, self._caught)))
            except (OSError, ValueError):
                pass

    def _caught(self, signum, frame):
        if self.pid is None:
            self.pending.append(signum)
        else:
            self._send(signum)

    def _send(self, signum):
        try:
            posix.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def to(self, pid):
        self.pid = pid
        while self.pending:
            self._send(self.pending.pop(0))

    def reset(self):
        """In a child forked while we forward: the handlers back to the default."""
        for num, _ in self.saved:
            _signal.signal(num, _signal.SIG_DFL)

    def restore(self):
        for num, h in self.saved:
            try:
                _signal.signal(num, h)
            except (OSError, ValueError):
                pass
        self.saved = []
