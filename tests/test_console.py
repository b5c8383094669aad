"""Terminals, console sockets, foreground tty proxying, preserved fds and stdio passthrough.

Console sockets are exercised the way conmon and containerd's shim use them: a
listening AF_UNIX stream socket, one connection, one message carrying exactly
one fd (the pty master from the container's own devpts). Everything the tests
assert is read back from the real pty or from inside the container.

Foreground `run -t` / `exec -t` are driven from a pty made here (os.openpty):
pyrunc's stdio is the outer slave, the test types into and reads from the outer
master. Detached containers never get pipes for their stdio.
"""

import fcntl
import json
import os
import select
import signal
import socket
import stat
import struct
import subprocess
import termios
import time
import uuid
from pathlib import Path

import pytest

from support import base_config, mounts_under

TIOCGPTN = 0x80045430
PTS_MAJOR = 136
TIMEOUT = 10.0


def sh(script):
    return ["sh", "-c", script]


def new_id():
    return "con-" + uuid.uuid4().hex[:10]


def tty_config(script, **process):
    cfg = base_config(sh(script))
    cfg["process"]["terminal"] = True
    cfg["process"].update(process)
    return cfg


def kill_pid(pid):
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def error_lines(stderr):
    return [line for line in stderr.splitlines() if line.strip()]


def assert_nothing_left(rt, b=None):
    assert rt.ids() == []
    assert os.listdir(rt.root) == []
    if b is not None:
        assert mounts_under(b.path) == []


def set_winsize(fd, rows, cols):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def get_winsize(fd):
    rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    return rows, cols


def pty_number(master):
    return struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]


def proc_stat(line):
    """Fields of a /proc/PID/stat line after the comm: {pid, state, ppid, pgrp, session, tty_nr, tpgid}."""
    pid = int(line.split(" ", 1)[0])
    rest = line.rsplit(")", 1)[1].split()
    return {"pid": pid, "state": rest[0], "ppid": int(rest[1]), "pgrp": int(rest[2]),
            "session": int(rest[3]), "tty_nr": int(rest[4]), "tpgid": int(rest[5])}


def tty_nr(major, minor):
    return (minor & 0xff) | (major << 8) | ((minor & ~0xff) << 12)


class Term:
    """Reads and writes one pty master fd; output is normalised (\\r\\n -> \\n)."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = b""
        self.eof = False

    @property
    def text(self):
        return self.buf.decode(errors="replace").replace("\r\n", "\n")

    def _read_some(self, timeout):
        r, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not r:
            return False
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: every slave fd is closed
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def expect(self, needle, timeout=TIMEOUT):
        """Wait until `needle` has been output; everything read so far (normalised)."""
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            if self.eof or time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never came from the terminal; got {self.text!r}")
            self._read_some(deadline - time.monotonic())
        return self.text

    def read_to_eof(self, timeout=TIMEOUT):
        """Everything until the last slave closes (the process ended)."""
        deadline = time.monotonic() + timeout
        while not self.eof:
            if time.monotonic() > deadline:
                raise AssertionError(f"the terminal never closed; got {self.text!r}")
            self._read_some(deadline - time.monotonic())
        return self.text

    def drain(self, quiet=0.2):
        while self._read_some(quiet):
            pass
        return self.text

    def write(self, s):
        os.write(self.fd, s.encode() if isinstance(s, str) else s)


class ConsoleSocket:
    """A console-socket receiver as conmon and containerd's shim have: listen on an
    AF_UNIX stream socket, accept one connection, receive exactly one fd."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.fds = []

    def receive(self, already_sent=False):
        """The pty master. already_sent: it must be queued now (no waiting at all)."""
        self.sock.settimeout(0 if already_sent else TIMEOUT)
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            raise AssertionError("the runtime had not connected to the console socket") from None
        with conn:
            conn.settimeout(0 if already_sent else TIMEOUT)
            try:
                msg, fds, flags, _ = socket.recv_fds(conn, 4096, 16)
            except BlockingIOError:
                raise AssertionError("no message on the console socket yet") from None
            self.fds.extend(fds)
            assert not flags & socket.MSG_CTRUNC, "more fds than a receiver expects"
            assert len(fds) == 1, f"{len(fds)} fds sent on the console socket, want exactly 1"
            # then the runtime closes its end: no second message, no second fd
            conn.settimeout(TIMEOUT)
            while True:
                more, extra, _, _ = socket.recv_fds(conn, 4096, 16)
                self.fds.extend(extra)
                assert extra == [], "a second fd was sent on the console socket"
                if not more:
                    break
        return fds[0]

    def accept_nothing(self):
        """True if nobody connected."""
        self.sock.settimeout(0)
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return True
        conn.close()
        return False

    def close(self):
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []
        self.sock.close()


@pytest.fixture
def console(runtime):
    """console() -> a new ConsoleSocket under the test's work directory."""
    made = []

    def make(name=None):
        c = ConsoleSocket(runtime.workdir / (name or f"console-{len(made)}.sock"))
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def create_tty(runtime, b, console, cid=None, run_detached=False):
    """create (or run -d) with a console socket; (id, Term on the received master)."""
    cid = cid or new_id()
    cs = console()
    if run_detached:
        p = detached(runtime, "run", "-d", "--console-socket", cs.path, "--bundle", b, cid)
        assert p.returncode == 0, p.stderr
    else:
        runtime.create(cid, b, "--console-socket", cs.path)
    # create/run -d has returned: the master must already be on the socket
    master = cs.receive(already_sent=True)
    return cid, Term(master)


def detached(runtime, *args, out=None, **kw):
    """A runtime command whose children may outlive it: stdio on files, never pipes."""
    out = Path(out or runtime.workdir / f"cmd-{uuid.uuid4().hex[:6]}.out")
    with open(out, "wb") as fo, open(out.with_suffix(".err"), "w+") as fe:
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.run(runtime.cmd(*args), stdout=fo, stderr=fe, timeout=30, text=True, **kw)
        fe.seek(0)
        p.stderr = fe.read()
    p.output_path = out
    return p


def start_sleeper(runtime, b):
    cid = new_id()
    runtime.create(cid, b)
    runtime("start", cid, check=True)
    assert runtime.wait_status(cid, "running")
    return cid


def container_procs(runtime, cid):
    p = runtime("ps", "--format", "json", cid)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


# --- create/run -d with a console socket ------------------------------------------------


def test_create_sends_one_master_before_returning(runtime, make_bundle, console):
    b = make_bundle(config=tty_config("tty; echo done"))
    cid, term = create_tty(runtime, b, console)
    st = os.fstat(term.fd)
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 5 and os.minor(st.st_rdev) == 2, \
        "the fd is not a pty master (/dev/ptmx, 5:2)"
    # from the container's own devpts instance, not the host's
    assert st.st_dev != os.stat("/dev/pts/ptmx").st_dev
    assert pty_number(term.fd) == 0  # a fresh devpts instance: the first pty
    assert runtime.status(cid) == "created"
    runtime("start", cid, check=True)
    out = term.read_to_eof()
    assert out.splitlines() == ["/dev/pts/0", "done"], out


def test_tty_is_the_containers_devpts_and_console_size(runtime, make_bundle, console):
    b = make_bundle(config=tty_config("tty; stty size; ls /dev/pts; echo done",
                                      consoleSize={"height": 37, "width": 101}))
    cid, term = create_tty(runtime, b, console)
    assert get_winsize(term.fd) == (37, 101)
    runtime("start", cid, check=True)
    out = term.read_to_eof()
    assert out.split() == ["/dev/pts/0", "37", "101", "0", "ptmx", "done"], out


def test_dev_console_is_the_same_pty(runtime, make_bundle, console):
    b = make_bundle(config=tty_config("stat -c '%F %t %T' /dev/console; tty; echo done"))
    cid, term = create_tty(runtime, b, console)
    runtime("start", cid, check=True)
    lines = term.read_to_eof().splitlines()
    assert len(lines) == 3 and lines[2] == "done", lines
    kind_major_minor, tty = lines[0], lines[1]
    kind, major, minor = kind_major_minor.rsplit(" ", 2)
    assert kind == "character special file", lines
    assert (int(major, 16), int(minor, 16)) == (PTS_MAJOR, pty_number(term.fd)), lines
    assert tty == f"/dev/pts/{pty_number(term.fd)}"


def test_stdio_is_the_pty_and_nothing_else(runtime, make_bundle, console):
    b = make_bundle(config=tty_config(
        "for i in 0 1 2; do readlink /proc/$$/fd/$i; done; ls -1 /proc/$$/fd; echo end"))
    cid, term = create_tty(runtime, b, console)
    runtime("start", cid, check=True)
    lines = term.read_to_eof().splitlines()
    assert lines[:3] == ["/dev/pts/0"] * 3, lines
    # no console socket, sync pipe or exec fifo leaks into the container
    assert lines[3:] == ["0", "1", "2", "end"], lines


def test_session_leader_with_the_pty_as_controlling_terminal(runtime, make_bundle, console):
    b = make_bundle(config=tty_config("cat /proc/$$/stat"))
    cid, term = create_tty(runtime, b, console)
    runtime("start", cid, check=True)
    line = term.read_to_eof().strip().splitlines()[-1]
    f = proc_stat(line)
    assert f["pid"] == 1
    assert f["session"] == f["pid"] == f["pgrp"], f
    assert f["tty_nr"] == tty_nr(PTS_MAJOR, pty_number(term.fd)), f
    assert f["tpgid"] == f["pgrp"], f  # the foreground process group of its terminal


def test_input_reaches_the_process(runtime, make_bundle, console):
    b = make_bundle(config=tty_config("echo ready; read x; echo got:$x; read y; echo got:$y"))
    cid, term = create_tty(runtime, b, console)
    runtime("start", cid, check=True)
    term.expect("ready\n")
    term.write("hello world\n")
    term.expect("got:hello world\n")
    term.write("second\n")
    out = term.read_to_eof()
    assert "got:second\n" in out


def test_resize_and_sigwinch(runtime, make_bundle, console):
    b = make_bundle(config=tty_config(
        "trap 'echo size:$(stty size)' WINCH; echo size:$(stty size); echo ready; "
        "while :; do sleep 0.05; done", consoleSize={"height": 24, "width": 80}))
    cid, term = create_tty(runtime, b, console)
    runtime("start", cid, check=True)
    term.expect("ready\n")
    assert "size:24 80\n" in term.text
    set_winsize(term.fd, 50, 132)
    p = runtime("kill", cid, "WINCH")
    assert p.returncode == 0, p.stderr
    term.expect("size:50 132\n")
    runtime("kill", cid, "KILL")


def test_control_c_is_a_signal_from_the_terminal(runtime, make_bundle, console):
    # a real controlling terminal: ^C typed on the master interrupts the foreground group
    b = make_bundle(config=tty_config("trap 'echo INT; exit 3' INT; echo ready; "
                                      "while :; do sleep 0.05; done"))
    cid, term = create_tty(runtime, b, console)
    runtime("start", cid, check=True)
    term.expect("ready\n")
    term.write(b"\x03")
    out = term.read_to_eof()
    assert "INT\n" in out, out


def test_run_detached_with_console_socket(runtime, make_bundle, console):
    b = make_bundle(config=tty_config("tty; echo ready; read x; echo got:$x"))
    cid, term = create_tty(runtime, b, console, run_detached=True)
    term.expect("/dev/pts/0\nready\n")
    term.write("from-the-test\n")
    out = term.read_to_eof()
    assert "got:from-the-test\n" in out
    assert runtime.wait_status(cid, "stopped")


def test_non_root_user_owns_its_tty(runtime, make_bundle, console):
    b = make_bundle(config=tty_config(
        "id -u; stat -c owner:%u $(tty); echo via-tty > $(tty); echo via-stdout > /dev/stdout; "
        "echo via-stderr > /dev/stderr; echo done", user={"uid": 1000, "gid": 1000}))
    cid, term = create_tty(runtime, b, console)
    runtime("start", cid, check=True)
    out = term.read_to_eof()
    assert "denied" not in out.lower(), out
    assert out.split() == ["1000", "owner:1000", "via-tty", "via-stdout", "via-stderr", "done"], out


# --- exec with a console socket -----------------------------------------------------------


def test_exec_detached_tty_gets_its_own_pty(runtime, make_bundle, console):
    cfg = tty_config("echo init-ready; exec sleep 300")
    cfg["root"]["readonly"] = False
    b = make_bundle(config=cfg)
    cid, init_term = create_tty(runtime, b, console)
    runtime("start", cid, check=True)
    init_term.expect("init-ready")
    cs = console()
    pid_file = runtime.workdir / "exec.pid"
    p = detached(runtime, "exec", "-d", "--tty", "--console-socket", cs.path, "--pid-file", pid_file,
                 cid, *sh("tty; cat /proc/$$/stat; readlink /proc/self/fd/0; read x; echo got:$x; "
                          "echo finished > /tmp/exec-marker; exit 5"))
    assert p.returncode == 0, p.stderr
    term = Term(cs.receive(already_sent=True))
    host_pid = int(pid_file.read_text())
    try:
        assert pty_number(term.fd) == 1  # the init has pts/0
        assert os.fstat(term.fd).st_dev == os.fstat(init_term.fd).st_dev  # the same devpts instance
        lines = term.expect("/dev/pts/1\n").splitlines()
        assert lines[0] == "/dev/pts/1", lines
        term.expect(")")  # the stat line
        lines = term.expect("\n/dev/pts/1\n").splitlines()
        f = proc_stat(lines[1])
        assert f["session"] == f["pid"] and f["tty_nr"] == tty_nr(PTS_MAJOR, 1), f
        term.write("typed\n")
        out = term.read_to_eof()
        assert "got:typed\n" in out
        assert (b.rootfs / "tmp" / "exec-marker").read_text() == "finished\n"
        assert runtime.status(cid) == "running"  # the init is untouched
        assert "got:" not in init_term.drain(0.1)
    finally:
        kill_pid(host_pid)


def test_exec_tty_into_container_without_terminal(runtime, make_bundle, console):
    b = make_bundle(["sleep", "300"])
    cid = start_sleeper(runtime, b)
    cs = console()
    p = detached(runtime, "exec", "-d", "-t", "--console-socket", cs.path, cid,
                 *sh("tty; cat /proc/$$/stat; echo exec-done"))
    assert p.returncode == 0, p.stderr
    term = Term(cs.receive(already_sent=True))
    assert get_winsize(term.fd) == (0, 0)  # no consoleSize: left as the kernel made it, as runc does
    lines = term.read_to_eof().splitlines()
    assert lines[0] == "/dev/pts/0" and lines[2] == "exec-done", lines
    f = proc_stat(lines[1])
    assert f["session"] == f["pid"] and f["tty_nr"] == tty_nr(PTS_MAJOR, 0), f


def test_exec_process_json_console_size(runtime, make_bundle, console):
    b = make_bundle(["sleep", "300"])
    cid = start_sleeper(runtime, b)
    proc = dict(base_config()["process"], terminal=True, args=sh("stty size; echo ok"),
                consoleSize={"height": 33, "width": 99})
    pf = runtime.workdir / "process.json"
    pf.write_text(json.dumps(proc))
    cs = console()
    p = detached(runtime, "exec", "--process", pf, "--detach", "--console-socket", cs.path, cid)
    assert p.returncode == 0, p.stderr
    out = Term(cs.receive(already_sent=True)).read_to_eof()
    assert out.split() == ["33", "99", "ok"], out


# --- refusals ------------------------------------------------------------------------------


def test_create_terminal_without_console_socket_refused(runtime, make_bundle):
    b = make_bundle(config=tty_config("true"))
    p = runtime.create(new_id(), b, check=False)
    assert p.returncode == 1
    lines = error_lines(p.stderr)
    assert len(lines) == 1 and "cannot allocate tty if runc will detach without setting console socket" in lines[0], \
        p.stderr
    assert_nothing_left(runtime, b)


@pytest.mark.parametrize("command", ["create", "run"])
def test_console_socket_without_terminal_refused(runtime, make_bundle, console, command):
    b = make_bundle(["true"])
    cs = console()
    args = ("create",) if command == "create" else ("run", "-d")
    p = detached(runtime, *args, "--console-socket", cs.path, "--bundle", b, new_id())
    assert p.returncode == 1
    lines = error_lines(p.stderr)
    assert len(lines) == 1 and "cannot use console socket if runc will not detach or allocate tty" in lines[0], \
        p.stderr
    assert cs.accept_nothing()
    assert_nothing_left(runtime, b)


def test_foreground_run_with_console_socket_refused(runtime, make_bundle, console):
    b = make_bundle(config=tty_config("true"))
    cs = console()
    p = detached(runtime, "run", "--console-socket", cs.path, "--bundle", b, new_id())
    assert p.returncode == 1
    lines = error_lines(p.stderr)
    assert len(lines) == 1 and "cannot use console socket if runc will not detach or allocate tty" in lines[0], \
        p.stderr
    assert cs.accept_nothing()
    assert_nothing_left(runtime, b)


def test_missing_console_socket_refused(runtime, make_bundle):
    b = make_bundle(config=tty_config("true"))
    missing = runtime.workdir / "no-such.sock"
    p = runtime.create(new_id(), b, "--console-socket", missing, check=False)
    assert p.returncode == 1
    lines = error_lines(p.stderr)
    assert len(lines) == 1, p.stderr
    assert str(missing) in lines[0] and "no such file or directory" in lines[0], p.stderr
    assert_nothing_left(runtime, b)
    assert not missing.exists()


def test_console_socket_not_a_socket_refused(runtime, make_bundle):
    b = make_bundle(config=tty_config("true"))
    f = runtime.workdir / "plain-file"
    f.write_text("not a socket\n")
    p = runtime.create(new_id(), b, "--console-socket", f, check=False)
    assert p.returncode == 1
    lines = error_lines(p.stderr)
    assert len(lines) == 1 and str(f) in lines[0] and "connection refused" in lines[0], p.stderr
    assert_nothing_left(runtime, b)
    assert f.read_text() == "not a socket\n"


@pytest.mark.parametrize("flags, needle", [
    (("-d", "-t"), "cannot allocate tty if runc will detach without setting console socket"),
    (("-t", "--console-socket", "SOCK"), "cannot use console socket if runc will not detach or allocate tty"),
    (("-d", "--console-socket", "SOCK"), "cannot use console socket if runc will not detach or allocate tty"),
])
def test_exec_console_refusals(runtime, make_bundle, console, flags, needle):
    b = make_bundle(["sleep", "300"])
    cid = start_sleeper(runtime, b)
    init = runtime.state(cid)["pid"]
    cs = console()
    flags = [cs.path if f == "SOCK" else f for f in flags]
    marker = b.rootfs / "tmp" / "ran"
    p = detached(runtime, "exec", *flags, cid, "touch", "/tmp/ran")
    assert p.returncode == 255  # runc's exec exits 255 on every failure of its own
    lines = error_lines(p.stderr)
    assert len(lines) == 1 and needle in lines[0], p.stderr
    assert cs.accept_nothing()
    assert container_procs(runtime, cid) == [init]
    assert not marker.exists()


def test_exec_missing_console_socket_refused(runtime, make_bundle):
    b = make_bundle(["sleep", "300"])
    cid = start_sleeper(runtime, b)
    init = runtime.state(cid)["pid"]
    missing = runtime.workdir / "gone.sock"
    p = detached(runtime, "exec", "-d", "-t", "--console-socket", missing, cid, "true")
    assert p.returncode == 255
    lines = error_lines(p.stderr)
    assert len(lines) == 1 and str(missing) in lines[0] and "no such file or directory" in lines[0], p.stderr
    assert container_procs(runtime, cid) == [init]


def plain_dev_config(script):
    """A terminal config whose /dev is the image's own directory (no tmpfs over it)."""
    cfg = tty_config(script)
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/dev"]
    return cfg


def test_dev_console_symlink_refused(runtime, make_bundle, console):
    b = make_bundle(config=plain_dev_config("echo should-not-run"))
    for d in ("dev/pts", "dev/shm", "dev/mqueue"):
        (b.rootfs / d).mkdir(parents=True, exist_ok=True)
    (b.rootfs / "dev" / "console").symlink_to("/etc/passwd")
    target = b.rootfs / "etc" / "passwd"
    before = (target.read_bytes(), os.stat(target))
    cs = console()
    p = runtime.create(new_id(), b, "--console-socket", cs.path, check=False)
    assert p.returncode == 1, p.stderr
    lines = error_lines(p.stderr)
    assert len(lines) == 1 and "/dev/console" in lines[0] and "symlink" in lines[0], p.stderr
    after = (target.read_bytes(), os.stat(target))
    assert after[0] == before[0]
    assert (after[1].st_ino, after[1].st_mode, after[1].st_uid, after[1].st_mtime_ns) == \
        (before[1].st_ino, before[1].st_mode, before[1].st_uid, before[1].st_mtime_ns)
    assert os.readlink(b.rootfs / "dev" / "console") == "/etc/passwd"
    assert_nothing_left(runtime, b)


@pytest.mark.parametrize("readonly", [False, True])
def test_plain_dev_directory_console_works(runtime, make_bundle, console, readonly):
    # the control for the test above: the same image without the symlink runs, and runc
    # creates /dev/console (before the read-only remount) when the image has none
    cfg = plain_dev_config("stat -c '%F %t' /dev/console; tty")
    cfg["root"]["readonly"] = readonly
    b = make_bundle(config=cfg)
    for d in ("dev/pts", "dev/shm", "dev/mqueue"):
        (b.rootfs / d).mkdir(parents=True, exist_ok=True)
    cid, term = create_tty(runtime, b, console)
    runtime("start", cid, check=True)
    out = term.read_to_eof()
    assert out.splitlines()[-2:] == [f"character special file {PTS_MAJOR:x}", "/dev/pts/0"], out


# --- foreground run -t / exec -t under a pty ----------------------------------------------


class OuterPty:
    """pyrunc run in the foreground with its stdio on the slave of a pty made here."""

    def __init__(self, cmd, rows=None, cols=None):
        self.master, self.slave = os.openpty()
        if rows:
            set_winsize(self.slave, rows, cols)
        self.before = termios.tcgetattr(self.slave)
        self.term = Term(self.master)
        self.proc = subprocess.Popen(cmd, stdin=self.slave, stdout=self.slave, stderr=self.slave,
                                     start_new_session=True)

    def wait(self, timeout=TIMEOUT):
        return self.proc.wait(timeout=timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def outer(runtime):
    made = []

    def make(*args, rows=None, cols=None):
        o = OuterPty(runtime.cmd(*args), rows, cols)
        made.append(o)
        return o

    yield make
    for o in made:
        o.close()


SCRIPT_FG = "tty; echo ready; read x; stty size; echo got:$x; exit 7"

# the pty has the outer terminal's size from the start: no SIGWINCH reaches a process
# that was quick to set a trap (runc resizes once the process runs, a race; a shell's
# `read` interrupted by it returns early)
SCRIPT_SIZE_AT_START = "trap 'echo WINCH' WINCH; stty size; echo ready; read x; echo got:$x"


def test_foreground_run_tty_proxies_io_size_and_exit(runtime, make_bundle, outer):
    b = make_bundle(config=tty_config(SCRIPT_FG))
    o = outer("run", "--bundle", b, new_id(), rows=41, cols=123)
    o.term.expect("ready\n")
    mode = termios.tcgetattr(o.slave)
    assert not mode[3] & (termios.ECHO | termios.ICANON), "the outer terminal is not in raw mode"
    o.term.write("typed-outside\n")
    assert o.wait() == 7
    out = o.term.drain()
    lines = out.splitlines()
    # the raw outer terminal does not echo: the container's pty does, once
    assert lines == ["/dev/pts/0", "ready", "typed-outside", "41 123", "got:typed-outside"], out
    assert termios.tcgetattr(o.slave) == o.before, "the outer terminal was not restored"
    assert_nothing_left(runtime, b)


def test_foreground_run_tty_forwards_sigwinch(runtime, make_bundle, outer):
    b = make_bundle(config=tty_config(
        "trap 'echo size:$(stty size)' WINCH; echo ready; read x; echo size:$(stty size); read y; echo bye"))
    o = outer("run", "--bundle", b, new_id(), rows=20, cols=70)
    o.term.expect("ready\n")
    o.term.write("\n")
    o.term.expect("size:20 70\n")
    set_winsize(o.master, 45, 150)
    o.proc.send_signal(signal.SIGWINCH)
    o.term.expect("size:45 150\n")
    o.term.write("\n")
    assert o.wait() == 0
    assert "bye" in o.term.drain()
    assert termios.tcgetattr(o.slave) == o.before


# a signal to the foreground runtime while it proxies the terminal reaches the
# process, as with runc; it must not end the runtime with the container still running
SCRIPT_TERM = "trap 'echo got-term; exit 5' TERM; echo ready; while :; do sleep 0.05; done"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_foreground_run_tty_forwards_signals(runtime, make_bundle, outer, sig):
    b = make_bundle(config=tty_config(SCRIPT_TERM.replace("TERM", signal.Signals(sig).name[3:])))
    o = outer("run", "--bundle", b, new_id())
    o.term.expect("ready\n")
    o.proc.send_signal(sig)
    assert o.wait() == 5
    assert "got-term" in o.term.drain()
    assert termios.tcgetattr(o.slave) == o.before
    assert_nothing_left(runtime, b)


def test_foreground_exec_tty_forwards_signals(runtime, make_bundle, outer):
    b = make_bundle(["sleep", "300"])
    cid = start_sleeper(runtime, b)
    o = outer("exec", "-t", cid, *sh(SCRIPT_TERM))
    o.term.expect("ready\n")
    o.proc.send_signal(signal.SIGTERM)
    assert o.wait() == 5
    assert "got-term" in o.term.drain()
    assert termios.tcgetattr(o.slave) == o.before
    assert container_procs(runtime, cid) == [runtime.state(cid)["pid"]]


def _unwritable_stdout(runtime, *args):
    """The foreground runtime proxying a pty to a stdout it cannot write (EBADF)."""
    ro = runtime.workdir / "read-only-stdout"
    ro.write_text("")
    with open(ro, "rb") as fo:
        return runtime(*args, stdin=subprocess.DEVNULL, stdout=fo, stderr=subprocess.PIPE)


def test_foreground_run_tty_failing_proxy_leaves_nothing(runtime, make_bundle):
    # runc's run destroys a container it failed to follow; its process must not outlive us
    b = make_bundle(config=tty_config("echo ready; trap '' HUP TERM; sleep 300"))
    p = _unwritable_stdout(runtime, "run", "--bundle", b, new_id())
    assert p.returncode == 1
    assert "bad file descriptor" in p.stderr, p.stderr
    assert_nothing_left(runtime, b)


def test_foreground_exec_tty_failing_proxy_kills_the_process(runtime, make_bundle):
    b = make_bundle(["sleep", "300"])
    cid = start_sleeper(runtime, b)
    p = _unwritable_stdout(runtime, "exec", "-t", cid, *sh("echo ready; trap '' HUP TERM; sleep 300"))
    assert p.returncode == 255  # runc exec's status for its own failures
    assert "bad file descriptor" in p.stderr, p.stderr
    assert container_procs(runtime, cid) == [runtime.state(cid)["pid"]]


def test_foreground_run_tty_size_from_the_start(runtime, make_bundle, outer):
    b = make_bundle(config=tty_config(SCRIPT_SIZE_AT_START, consoleSize={"height": 5, "width": 6}))
    o = outer("run", "--bundle", b, new_id(), rows=33, cols=77)
    o.term.expect("ready\n")
    o.term.write("x\n")
    assert o.wait() == 0
    # the outer terminal's size wins over consoleSize, as once runc's proxy resized
    assert o.term.drain().splitlines() == ["33 77", "ready", "x", "got:x"]


def test_foreground_run_tty_stdin_eof_and_output_after(runtime, make_bundle, outer):
    # ^D in the container's cooked terminal: read hits EOF, the process still finishes its output
    b = make_bundle(config=tty_config("echo ready; cat; echo after-eof; exit 0"))
    o = outer("run", "--bundle", b, new_id())
    o.term.expect("ready\n")
    o.term.write("line1\n")
    o.term.expect("line1\nline1\n")  # the echo, then cat's copy
    o.term.write(b"\x04")
    assert o.wait() == 0
    assert "after-eof" in o.term.drain()
    assert termios.tcgetattr(o.slave) == o.before


def test_foreground_exec_tty(runtime, make_bundle, outer):
    b = make_bundle(["sleep", "300"])
    cid = start_sleeper(runtime, b)
    o = outer("exec", "-t", cid, *sh(SCRIPT_FG.replace("exit 7", "exit 9")), rows=30, cols=90)
    o.term.expect("ready\n")
    o.term.write("exec-input\n")
    assert o.wait() == 9
    lines = o.term.drain().splitlines()
    assert lines == ["/dev/pts/0", "ready", "exec-input", "30 90", "got:exec-input"], lines
    assert termios.tcgetattr(o.slave) == o.before
    assert runtime.status(cid) == "running"


def test_foreground_exec_tty_size_from_the_start(runtime, make_bundle, outer):
    b = make_bundle(["sleep", "300"])
    cid = start_sleeper(runtime, b)
    o = outer("exec", "-t", cid, *sh(SCRIPT_SIZE_AT_START), rows=31, cols=91)
    o.term.expect("ready\n")
    o.term.write("y\n")
    assert o.wait() == 0
    assert o.term.drain().splitlines() == ["31 91", "ready", "y", "got:y"]


# --- no terminal: stdio passthrough ---------------------------------------------------------


def test_foreground_pipes_pass_through(runtime, make_bundle):
    b = make_bundle(sh("for i in 0 1 2; do readlink /proc/$$/fd/$i; done; cat; echo to-stderr >&2"))
    p = subprocess.Popen(runtime.cmd("run", "--bundle", b, new_id()), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # both ends of a pipe share its inode: the container must see these very pipes
        inos = [os.fstat(f.fileno()).st_ino for f in (p.stdin, p.stdout, p.stderr)]
        out, err = p.communicate(b"stdin-data\n", timeout=30)
        out, err = out.decode(), err.decode()
        assert p.returncode == 0, err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert out.splitlines() == [f"pipe:[{i}]" for i in inos] + ["stdin-data"], out
    assert err == "to-stderr\n"


def test_foreground_regular_file_and_dev_null(runtime, make_bundle):
    b = make_bundle(sh("stat -L -c '%F %t:%T' /proc/self/fd/0; stat -L -c %i /proc/self/fd/1; cat; echo end"))
    out = runtime.workdir / "out.txt"
    out.write_text("existing\n")
    with open(out, "ab") as fo:
        p = subprocess.run(runtime.cmd("run", "--bundle", b, new_id()), stdin=subprocess.DEVNULL,
                           stdout=fo, stderr=subprocess.PIPE, timeout=30)
    assert p.returncode == 0, p.stderr
    lines = out.read_text().splitlines()
    # /dev/null (1:3) on stdin gives cat EOF at once; stdout is this very file, appended to
    assert lines == ["existing", "character special file 1:3", str(out.stat().st_ino), "end"], lines


def test_foreground_exit_code_without_tty(runtime, make_bundle):
    b = make_bundle(sh("echo out; exit 42"))
    p = runtime("run", "--bundle", b, new_id())
    assert (p.returncode, p.stdout) == (42, "out\n"), p.stderr


def test_detached_run_output_lands_in_create_stdout_file(runtime, make_bundle):
    b = make_bundle(sh("echo from-detached; echo err-detached >&2; stat -L -c %i /proc/self/fd/1"))
    cid = new_id()
    p = detached(runtime, "run", "-d", "--bundle", b, cid)
    assert p.returncode == 0, p.stderr
    assert runtime.wait_status(cid, "stopped")
    deadline = time.monotonic() + TIMEOUT
    while len(p.output_path.read_text().splitlines()) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert p.output_path.read_text().splitlines() == ["from-detached", str(p.output_path.stat().st_ino)]
    assert p.output_path.with_suffix(".err").read_text() == "err-detached\n"


def test_create_stdin_is_passed_to_the_container(runtime, make_bundle):
    b = make_bundle(sh("cat"))
    src = runtime.workdir / "stdin.txt"
    src.write_text("from create's stdin\n")
    cid = new_id()
    with open(src, "rb") as fi:
        p = detached(runtime, "create", "--bundle", b, cid, stdin=fi)
    assert p.returncode == 0, p.stderr
    runtime("start", cid, check=True)
    assert runtime.wait_status(cid, "stopped")
    assert p.output_path.read_text() == "from create's stdin\n"


# --- --preserve-fds -----------------------------------------------------------------------------


def fds_from(paths):
    """subprocess kwargs: each path open read-only on fd 3, 4, ... in the child."""
    n = len(paths)

    def pre():
        for i, path in enumerate(paths):
            fd = os.open(path, os.O_RDONLY)
            if fd != 3 + i:
                os.dup2(fd, 3 + i)
                os.close(fd)
    return {"pass_fds": tuple(range(3, 3 + n)), "preexec_fn": pre}


@pytest.fixture
def three_files(runtime):
    out = []
    for i in range(3):
        f = runtime.workdir / f"fd{3 + i}.txt"
        f.write_text(f"content of fd {3 + i}\n")
        out.append(f)
    return out


# ls runs as a child: it lists the shell's fds (the inherited ones) without its own
PRESERVE_SCRIPT = "cat <&3; cat <&4; ls -1 /proc/$$/fd; echo end"


def test_preserve_fds_run(runtime, make_bundle, three_files):
    b = make_bundle(sh(PRESERVE_SCRIPT))
    p = runtime("run", "--preserve-fds", "2", "--bundle", b, new_id(), **fds_from(three_files))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[:2] == ["content of fd 3", "content of fd 4"]
    assert lines[2:] == ["0", "1", "2", "3", "4", "end"], lines  # fd 5 was not preserved


def test_preserve_fds_create(runtime, make_bundle, three_files):
    b = make_bundle(sh(PRESERVE_SCRIPT))
    cid = new_id()
    p = detached(runtime, "create", "--preserve-fds", "2", "--bundle", b, cid, **fds_from(three_files))
    assert p.returncode == 0, p.stderr
    runtime("start", cid, check=True)
    assert runtime.wait_status(cid, "stopped")
    lines = p.output_path.read_text().splitlines()
    assert lines[:2] == ["content of fd 3", "content of fd 4"], lines
    assert lines[2:] == ["0", "1", "2", "3", "4", "end"], lines


def test_without_preserve_fds_only_stdio(runtime, make_bundle, three_files):
    b = make_bundle(sh("ls -1 /proc/$$/fd; echo end"))
    p = runtime("run", "--bundle", b, new_id(), **fds_from(three_files))
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["0", "1", "2", "end"]


def test_preserve_fds_exec(runtime, make_bundle, three_files):
    b = make_bundle(["sleep", "300"])
    cid = start_sleeper(runtime, b)
    p = runtime("exec", "--preserve-fds", "2", cid, *sh(PRESERVE_SCRIPT), **fds_from(three_files))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[:2] == ["content of fd 3", "content of fd 4"]
    assert lines[2:] == ["0", "1", "2", "3", "4", "end"], lines


def test_preserve_fds_with_terminal(runtime, make_bundle, console, three_files):
    # the pty replaces stdio only: preserved fds still arrive at 3..
    b = make_bundle(config=tty_config("cat <&3; ls -1 /proc/$$/fd; echo end"))
    cid = new_id()
    cs = console()
    p = detached(runtime, "create", "--preserve-fds", "1", "--console-socket", cs.path, "--bundle", b, cid,
                 **fds_from(three_files))
    assert p.returncode == 0, p.stderr
    term = Term(cs.receive(already_sent=True))
    runtime("start", cid, check=True)
    lines = term.read_to_eof().splitlines()
    assert lines[0] == "content of fd 3", lines
    assert lines[1:] == ["0", "1", "2", "3", "end"], lines
