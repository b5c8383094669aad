"""runc-compatible logging: logrus text or JSON lines.

containerd's shim reads the last `{"level":"error","msg":…}` line of
`--log` to show a failure; podman passes `--log-format=json`. Without
`--log`, lines go to stderr in logrus' text format, as runc does.
`--debug` adds one line per kernel-facing step with its duration.
"""

import posix
import sys
import time

from . import fastjson


def _rfc3339(t):
    tm = time.localtime(t)
    off = tm.tm_gmtoff
    zone = "Z" if off == 0 else "%s%02d:%02d" % ("-" if off < 0 else "+", abs(off) // 3600, abs(off) % 3600 // 60)
    return time.strftime("%Y-%m-%dT%H:%M:%S", tm) + zone


def _quote(s):
    # logrus quotes a value when it holds anything but [A-Za-z0-9-._/@^+]
    for ch in s:
        if not (ch.isalnum() or ch in "-._/@^+"):
            return fastjson.dumps(s)
    return s if s else '""'


class Log:
    """Where runtime messages go. One per invocation, passed explicitly."""

    def __init__(self, path=None, fmt="text", debug=False):
        if fmt not in ("text", "json"):
            raise ValueError(f"invalid log format {fmt!r}")
        self.fmt = fmt
        self.debug_enabled = debug
        self.path = path
        self._fd = None
        if path:
            try:
                self._fd = posix.open(path, posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT | posix.O_CLOEXEC, 0o644)
            except OSError as e:
                raise OSError(e.errno, f"open log file {path}: {e.strerror}") from None

    def fds(self):
        """fds a forked child must keep to go on logging."""
        return [self._fd] if self._fd is not None else []

    @property
    def to_stderr(self):
        return self._fd is None

    def _emit(self, level, msg):
        now = time.time()
        if self.fmt == "json":
            line = fastjson.dumps({"level": level, "msg": msg, "time": _rfc3339(now)}) + "\n"
        else:
            line = f'time="{_rfc3339(now)}" level={level} msg={_quote(msg)}\n'
        data = line.encode("utf-8", "replace")
        try:
            if self._fd is not None:
                posix.write(self._fd, data)
            else:
                posix.write(2, data)
        except OSError:
            pass

    def error(self, msg):
        self._emit("error", msg)

    def warn(self, msg):
        self._emit("warning", msg)

    def info(self, msg):
        self._emit("info", msg)

    def debug(self, msg):
        if self.debug_enabled:
            self._emit("debug", msg)

    def step(self, what):
        """`with log.step("pivot_root"):` — logs the duration when --debug is on."""
        return _Step(self, what) if self.debug_enabled else _NOSTEP

    def fatal(self, msg):
        """The one error report of a failed command: log + plain line on stderr."""
        self.error(msg)
        if self._fd is not None:
            try:
                sys.stderr.write(msg + "\n")
                sys.stderr.flush()
            except OSError:
                pass

    def close(self):
        if self._fd is not None:
            posix.close(self._fd)
            self._fd = None


class _Step:
    __slots__ = ("log", "what", "t0")

    def __init__(self, log, what):
        self.log = log
        self.what = what

    def __enter__(self):
        self.t0 = time.perf_counter_ns()
        return self

    def __exit__(self, et, ev, tb):
        us = (time.perf_counter_ns() - self.t0) // 1000
        status = "" if et is None else f" (failed: {ev})"
        self.log.debug(f"{self.what}: {us / 1000:.3f} ms{status}")
        return False


class _NoStep:
    __slots__ = ()

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        return False


_NOSTEP = _NoStep()
