"""Parent ⇄ init synchronisation: length-prefixed JSON messages over two pipes.

EOF means the other side died: the init treats it as "abort and clean up",
the parent as "the init failed". Pipes rather than a socketpair because
`import _socket` costs ~0.5 ms on every create; only when fds must travel
(idmapped mount trees, SCM_RIGHTS) is a socketpair made as well.
"""

import posix
import sys

from . import fastjson
from .errors import ContainerError, PyruncError

_MAX = 1 << 20
# runc's words for a failure reported by the process being started
STARTING = "unable to start container process: "


def pack_fds(fds):
    # array.array would do, but `import array` pulls in collections.abc (~2.5 ms)
    return b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)


def unpack_fds(payload):
    n = len(payload) // 4
    return [int.from_bytes(payload[4 * i:4 * i + 4], sys.byteorder, signed=True) for i in range(n)]


def _read_exact(fd, n):
    buf = b""
    while len(buf) < n:
        chunk = posix.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def connect_unix(path):
    """A connected, close-on-exec SOCK_STREAM socket to `path` (console socket,
    seccomp agent). OSError as connect(2) gives it; the caller words it."""
    import _socket
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        s.connect(path)
    except OSError:
        s.close()
        raise
    return s


class Channel:
    """One end: a read pipe, a write pipe, and optionally a socket for fds."""

    __slots__ = ("rfd", "wfd", "sock")

    def __init__(self, rfd, wfd, sock=None):
        self.rfd = rfd
        self.wfd = wfd
        self.sock = sock

    @staticmethod
    def pair(with_fds=False):
        r1, w1 = posix.pipe2(posix.O_CLOEXEC)
        r2, w2 = posix.pipe2(posix.O_CLOEXEC)
        s1 = s2 = None
        if with_fds:
            import _socket
            s1, s2 = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
        return Channel(r1, w2, s1), Channel(r2, w1, s2)

    def fds(self):
        out = [self.rfd, self.wfd]
        if self.sock is not None:
            out.append(self.sock.fileno())
        return out

    def send_failure(self, exc, during):
        """Report `exc` to the runtime as runc words it ("error during <during>: …");
        a PyruncError's message is already the user's. A dead runtime is not an error here."""
        if isinstance(exc, PyruncError):
            msg = str(exc)
        elif isinstance(exc, OSError):
            msg = f"error during {during}: {exc}"
        else:
            msg = f"error during {during}: {type(exc).__name__}: {exc}"
        try:
            self.send({"type": "error", "msg": msg})
        except OSError:
            pass

    def send(self, msg, fds=()):
        data = fastjson.dumps(msg).encode()
        if fds:
            import _socket
            self.sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, pack_fds(fds))])
            return
        data = len(data).to_bytes(4, "little") + data
        while data:
            n = posix.write(self.wfd, data)
            data = data[n:]

    def tell(self, msg):
        """send() to a peer that may have failed meanwhile: if it is gone,
        raise what it reported before it died (ContainerError)."""
        try:
            self.send(msg)
        except BrokenPipeError:
            self.expect("error")  # raises the peer's own words, or "exited unexpectedly"
            raise

    def recv(self, want_fds=False):
        """Next message (dict), or None on EOF. With want_fds: (msg, [fds]) from the socket."""
        if want_fds:
            import _socket
            data, anc, _flags, _addr = self.sock.recvmsg(_MAX, _socket.CMSG_SPACE(4 * 16),
                                                         _socket.MSG_CMSG_CLOEXEC)
            fds = []
            for level, typ, payload in anc:
                if level == _socket.SOL_SOCKET and typ == _socket.SCM_RIGHTS:
                    fds.extend(unpack_fds(payload))
            return (fastjson.loads(data) if data else None), fds
        head = _read_exact(self.rfd, 4)
        if head is None:
            return None
        n = int.from_bytes(head, "little")
        if n > _MAX:
            raise ContainerError("sync message too large")
        data = _read_exact(self.rfd, n)
        if data is None:
            return None
        return fastjson.loads(data)

    def expect(self, kind):
        """Wait for message `kind`; an error message or EOF becomes ContainerError."""
        msg = self.recv()
        if msg is None:
            raise ContainerError(f"{STARTING}container init exited unexpectedly")
        if msg.get("type") == "error":
            raise ContainerError(STARTING + msg.get("msg", "container init failed"))
        if msg.get("type") != kind:
            raise ContainerError(f"unexpected message from container init: {msg.get('type')} (wanted {kind})")
        return msg

    def close(self):
        for fd in (self.rfd, self.wfd):
            if fd is not None:
                try:
                    posix.close(fd)
                except OSError:
                    pass
        self.rfd = self.wfd = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None
