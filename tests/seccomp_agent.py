#!/usr/bin/env python3
"""A small seccomp notify agent for the tests (runtime-spec "seccomp notify").

    seccomp_agent.py SOCKET REPORT POLICY

Listens on the unix socket SOCKET (SOCK_STREAM). For every connection it
reads the runtime's one message — the ContainerProcessState JSON with the
listener fd in SCM_RIGHTS — until EOF, appends a line to REPORT (JSON
lines): {"event": "state", "state": {...}, "nfds": N, "fd_kind": "..."}
and then answers every notification on that fd according to POLICY:
"ok" (fake success: the syscall returns 0 without running), "errno:N" (it
fails with errno N) or "continue" (the kernel runs it). Each answered
notification is reported as {"event": "notif", "nr": ..., "pid": ...}.
Prints "ready" on stdout once listening. Stops when killed.

Struct layouts and ioctl numbers are those of <linux/seccomp.h>.
"""

import array
import fcntl
import json
import os
import select
import socket
import struct
import sys
import threading

# struct seccomp_notif { u64 id; u32 pid; u32 flags; struct seccomp_data { int nr; u32 arch;
# u64 ip; u64 args[6]; } data; }  — 80 bytes
NOTIF = struct.Struct("=QIIiIQ6Q")
# struct seccomp_notif_resp { u64 id; s64 val; s32 error; u32 flags; } — 24 bytes
RESP = struct.Struct("=QqiI")
assert NOTIF.size == 80 and RESP.size == 24


def _iowr(nr, size):
    return (3 << 30) | (size << 16) | (ord("!") << 8) | nr


SECCOMP_IOCTL_NOTIF_RECV = _iowr(0, NOTIF.size)
SECCOMP_IOCTL_NOTIF_SEND = _iowr(1, RESP.size)
SECCOMP_USER_NOTIF_FLAG_CONTINUE = 1

_lock = threading.Lock()


def report(path, doc):
    with _lock, open(path, "a") as f:
        f.write(json.dumps(doc) + "\n")
        f.flush()


def receive(conn):
    """The whole message (until EOF) and every fd that came with it."""
    data, fds = b"", []
    while True:
        msg, anc, _flags, _addr = conn.recvmsg(1 << 16, socket.CMSG_SPACE(16 * 4))
        for level, typ, payload in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                a = array.array("i")
                a.frombytes(payload[:len(payload) - len(payload) % a.itemsize])
                fds.extend(a)
        if not msg:
            return data, fds
        data += msg


def answer(policy, notif_id):
    if policy == "continue":
        return RESP.pack(notif_id, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE)
    if policy.startswith("errno:"):
        return RESP.pack(notif_id, 0, -int(policy[6:]), 0)
    return RESP.pack(notif_id, 0, 0, 0)  # "ok": fake success


def serve(fd, policy, report_path):
    while True:
        r, _, _ = select.select([fd], [], [], 30)
        if not r:
            continue
        buf = bytearray(NOTIF.size)
        try:
            fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, buf, True)
        except OSError:
            break  # ENOENT: every process using the filter is gone
        notif_id, pid, _flags, nr, arch, _ip, *args = NOTIF.unpack(buf)
        try:
            fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, bytearray(answer(policy, notif_id)), True)
            ok = True
        except OSError:
            ok = False  # the target died meanwhile
        report(report_path, {"event": "notif", "nr": nr, "arch": arch, "pid": pid, "answered": ok})
    os.close(fd)


def handle(conn, policy, report_path):
    with conn:
        data, fds = receive(conn)
    kind = os.readlink(f"/proc/self/fd/{fds[0]}") if fds else None
    try:
        st = json.loads(data)
    except ValueError:
        st = {"raw": data.decode(errors="replace")}
    report(report_path, {"event": "state", "state": st, "nfds": len(fds), "fd_kind": kind})
    for extra in fds[1:]:
        os.close(extra)
    if fds:
        serve(fds[0], policy, report_path)


def main():
    sock_path, report_path, policy = sys.argv[1:4]
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(8)
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn, policy, report_path), daemon=True).start()


if __name__ == "__main__":
    main()
