"""Parent ⇄ init synchronisation over a SOCK_SEQPACKET pair.

One JSON object per message (boundaries kept by SEQPACKET). EOF means the
other side died: the init treats it as "abort and clean up", the parent as
"the init failed". fds (e.g. idmapped mount trees) travel with SCM_RIGHTS.
Uses `_socket` directly: `import socket` pulls in enum (~3 ms).
"""

import _socket
import sys

from . import fastjson
from .errors import ContainerError

_MAX = 1 << 20


def pack_fds(fds):
    # array.array would do, but `import array` pulls in collections.abc (~2.5 ms)
    return b"".join(fd.to_bytes(4, sys.byteorder, signed=True) for fd in fds)


def unpack_fds(payload):
    n = len(payload) // 4
    return [int.from_bytes(payload[4 * i:4 * i + 4], sys.byteorder, signed=True) for i in range(n)]


class Channel:
    __slots__ = ("sock",)

    def __init__(self, sock):
        self.sock = sock

    @staticmethod
    def pair():
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
        return Channel(a), Channel(b)

    def fileno(self):
        return self.sock.fileno()

    def send(self, msg, fds=()):
        data = fastjson.dumps(msg).encode()
        if fds:
            anc = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, pack_fds(fds))]
            self.sock.sendmsg([data], anc)
        else:
            self.sock.send(data)

    def recv(self, want_fds=False):
        """Next message (dict), or None on EOF. With want_fds: (msg, [fds])."""
        if want_fds:
            data, anc, _flags, _addr = self.sock.recvmsg(_MAX, _socket.CMSG_SPACE(4 * 16),
                                                         _socket.MSG_CMSG_CLOEXEC)
            fds = []
            for level, typ, payload in anc:
                if level == _socket.SOL_SOCKET and typ == _socket.SCM_RIGHTS:
                    fds.extend(unpack_fds(payload))
            msg = fastjson.loads(data) if data else None
            return msg, fds
        data = self.sock.recv(_MAX)
        if not data:
            return None
        return fastjson.loads(data)

    def expect(self, kind):
        """Wait for message `kind`; an error message or EOF becomes ContainerError."""
        msg = self.recv()
        if msg is None:
            raise ContainerError("container init exited unexpectedly")
        if msg.get("type") == "error":
            raise ContainerError(msg.get("msg", "container init failed"))
        if msg.get("type") != kind:
            raise ContainerError(f"unexpected message from container init: {msg.get('type')} (wanted {kind})")
        return msg

    def close(self):
        self.sock.close()
