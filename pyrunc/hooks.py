"""Running OCI hooks: the state JSON on stdin, the hook's own args and env, a timeout.

posix_spawn (vfork+exec) instead of fork: the hook never runs Python code,
and spawning stays cheap even from a large interpreter. Failure semantics
(which hook failures are fatal) belong to the caller, per runtime-spec:
everything but poststop fails the operation.
"""

import os
import select
import time

from . import fastjson, signals
from .errors import PyruncError


class HookError(PyruncError):
    pass


def _drain(fd, buf):
    try:
        chunk = os.read(fd, 65536)
    except BlockingIOError:
        return True
    if not chunk:
        return False
    if len(buf) < 1 << 16:
        buf += chunk
    return True


def run(hook, state, kind, log, index=0):
    """Run one hook to completion; HookError on failure or timeout."""
    data = fastjson.dumps(state).encode()
    args = list(hook.args) or [hook.path]
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    env = {}
    for kv in hook.env:
        k, _, v = kv.partition("=")
        env[k] = v
    with log.step(f"{kind} hook {hook.path}"):
        try:
            pid = os.posix_spawn(hook.path, args, env, file_actions=[
                (os.POSIX_SPAWN_DUP2, in_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1),
                (os.POSIX_SPAWN_DUP2, err_w, 2)], setsigdef=(signals.NAMES["PIPE"], signals.NAMES["XFSZ"]))
        except OSError as e:
            for fd in (in_r, in_w, out_r, out_w, err_r, err_w):
                os.close(fd)
            raise HookError(f"error running {kind} hook {hook.path}: {e.strerror.lower()}") from None
        os.close(in_r)
        os.close(out_w)
        os.close(err_w)
        # the state is tiny; a hook that never reads stdin must not block us
        os.set_blocking(in_w, False)
        try:
            os.write(in_w, data)
        except OSError:
            pass
        os.close(in_w)
        out, err = bytearray(), bytearray()
        deadline = None if not hook.timeout else time.monotonic() + hook.timeout
        pidfd = os.pidfd_open(pid)
        try:
            open_fds = {out_r: out, err_r: err}
            status = None
            while True:
                timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
                ready, _, _ = select.select(list(open_fds) + [pidfd], [], [], timeout)
                if not ready:
                    os.kill(pid, signals.SIGKILL)
                    os.waitpid(pid, 0)
                    raise HookError(f"{kind} hook {hook.path} timed out after {hook.timeout}s")
                for fd in ready:
                    if fd in open_fds and not _drain(fd, open_fds[fd]):
                        del open_fds[fd]
                if pidfd in ready:
                    _, status = os.waitpid(pid, 0)
                    for fd in list(open_fds):
                        os.set_blocking(fd, False)
                        while _drain(fd, open_fds[fd]):
                            pass
                    break
        finally:
            os.close(pidfd)
            os.close(out_r)
            os.close(err_r)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        how = f"exit status {code}" if code > 0 else f"signal: {signals.name(-code)}"
        msg = f"error running {kind} hook #{index} {hook.path}: {how}"
        detail = []
        if out.strip():
            detail.append(f"stdout: {out.decode(errors='replace').strip()}")
        if err.strip():
            detail.append(f"stderr: {err.decode(errors='replace').strip()}")
        if detail:
            msg += ", " + ", ".join(detail)
        raise HookError(msg)


def run_all(hooks, state, kind, log, fatal=True):
    """Run a hook list in order. Non-fatal kinds (poststop) warn and go on."""
    for i, hook in enumerate(hooks):
        try:
            run(hook, state, kind, log, i)
        except HookError as e:
            if fatal:
                raise
            log.warn(str(e))
