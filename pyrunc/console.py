"""Terminals: the container's pty, the console socket, and foreground proxying.

With `process.terminal`, the pty comes from the container's own devpts
(its /dev/ptmx, resolved inside the rootfs), the slave is obtained from
the master with TIOCGPTPEER (never by a /dev/pts path the container could
redirect: CVE-2025-52565), becomes the process's controlling terminal and
stdio, and the master goes over the console socket with SCM_RIGHTS — one
message, one fd, as conmon and containerd's shim expect (the text is the
pty's name and is ignored by them). For the init, the slave is also bound
onto /dev/console.

Without --console-socket a foreground `run -t`/`exec -t` makes its own
socket pair, receives the master and proxies its stdio to it in raw mode,
forwarding window size changes, as `runc run -t` does.
"""

import posix

from . import linux
from .errors import ConfigError, ContainerError, PyruncError

TIOCSCTTY = 0x540E
TIOCGWINSZ = 0x5413
TIOCSWINSZ = 0x5414
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441



def check_console(terminal, console_socket, detach):
    """runc's rules for terminals and console sockets."""
    if terminal and detach and not console_socket:
        raise ConfigError("cannot allocate tty if runc will detach without setting console socket")
    if console_socket and not (terminal and detach):
        raise ConfigError("cannot use console socket if runc will not detach or allocate tty")

def connect(path):
    """Parent side: a connected stream socket to the caller's console socket."""
    from .sync import connect_unix
    try:
        return connect_unix(path).detach()
    except OSError as e:
        raise PyruncError(f"connect to console socket {path}: {linux.go_strerror(e.errno)}") from None


def open_pty(rootfd):
    """(master, slave) of a new pty in the devpts instance behind the container's /dev/ptmx."""
    from . import paths
    try:
        master = paths.resolve(rootfd, "/dev/ptmx", posix.O_RDWR | posix.O_NOCTTY)
    except OSError as e:
        raise ContainerError(f"open /dev/ptmx in the container: {e}") from None
    try:
        linux.ioctl_ptr_int(master, TIOCSPTLCK, 0)
        slave = linux.ioctl_int_arg(master, TIOCGPTPEER, posix.O_RDWR | posix.O_NOCTTY | posix.O_CLOEXEC)
    except OSError as e:
        posix.close(master)
        raise ContainerError(f"allocate a pty: {e}") from None
    return master, slave


def set_size(fd, size):
    if size:
        linux.set_winsize(fd, size.get("height", 0), size.get("width", 0))


def send_master(sockfd, master):
    import _socket
    from .sync import pack_fds
    s = _socket.socket(fileno=posix.dup(sockfd))
    try:
        s.sendmsg([b"/dev/ptmx"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, pack_fds([master]))])
    except OSError as e:
        raise ContainerError(f"send the pty master to the console socket: {linux.go_strerror(e.errno)}") from None
    finally:
        s.close()


def make_controlling(slave):
    """The slave becomes our controlling terminal and stdio (after setsid)."""
    try:
        linux.ioctl_int_arg(slave, TIOCSCTTY, 0)
    except OSError as e:
        raise ContainerError(f"set the controlling terminal: {e}") from None
    for fd in (0, 1, 2):
        posix.dup2(slave, fd)


def bind_dev_console(rootfd, slave):
    """Bind the pty slave onto /dev/console, never through a symlink."""
    from . import mounts, paths
    try:
        fd = linux.openat2(rootfd, "dev/console", posix.O_PATH, 0,
                           linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_SYMLINKS)
    except OSError as e:
        if e.errno == 40:
            raise ContainerError("/dev/console in the container is a symlink") from None
        fd = paths.mkfile(rootfd, "/dev/console", 0o600)
    try:
        mounts.bind_fd(slave, fd, "bind the console onto /dev/console")
    finally:
        posix.close(fd)


def setup(rootfd, sockfd, size, dev_console):
    """Child side: allocate, send, and take the terminal. Returns nothing; stdio is the pty."""
    master, slave = open_pty(rootfd)
    try:
        set_size(master, size)
        if dev_console:
            bind_dev_console(rootfd, slave)
        send_master(sockfd, master)
    finally:
        posix.close(master)
    posix.close(sockfd)
    make_controlling(slave)
    if slave > 2:
        posix.close(slave)


class Receiver:
    """A private console socket for a foreground terminal: (child end fd, receive())."""

    def __init__(self):
        import _socket
        self.parent, child = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        self.child_fd = child.detach()
        self.size = _terminal_size(0)

    def initial_size(self, configured):
        """The size the pty is made with: ours, when we have a terminal.

        proxy() gives the pty our size anyway; doing it only once the
        process runs sends it a SIGWINCH it may not be ready for (a trap
        set, a `read` interrupted, a prompt redrawn).
        """
        return self.size or configured

    def receive(self):
        import _socket
        from .sync import unpack_fds
        try:
            _data, anc, _flags, _addr = self.parent.recvmsg(4096, _socket.CMSG_SPACE(4), _socket.MSG_CMSG_CLOEXEC)
        finally:
            self.parent.close()
        for level, typ, payload in anc:
            if level == _socket.SOL_SOCKET and typ == _socket.SCM_RIGHTS:
                return unpack_fds(payload)[0]
        raise ContainerError("the container did not send its terminal")


def proxy(master, pid, wait_exit):
    """Foreground: our stdio <-> the pty master until the process exits; its exit code."""
    from . import stay
    stay()
    import select
    import termios
    import tty
    from . import signals
    stdin_tty = posix.isatty(0)
    saved = None
    if stdin_tty:
        saved = termios.tcgetattr(0)
        tty.setraw(0)
        _copy_winsize(0, master)
        signals.handle(signals.NAMES["WINCH"], lambda *_: _copy_winsize(0, master))
    inputs = [master, 0]
    try:
        while master in inputs:
            try:
                ready, _, _ = select.select(inputs, [], [])
            except InterruptedError:
                continue
            if 0 in ready:
                data = posix.read(0, 65536)
                if not data:
                    inputs.remove(0)
                else:
                    posix.write(master, data)
            if master in ready:
                try:
                    data = posix.read(master, 65536)
                except OSError:  # EIO: every slave fd closed
                    data = b""
                if not data:
                    inputs.remove(master)
                else:
                    posix.write(1, data)
        return wait_exit(pid)
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        posix.close(master)


def _terminal_size(fd):
    try:
        rows, cols = linux.get_winsize(fd)
    except OSError:
        return None
    return {"height": rows, "width": cols} if rows or cols else None


def _copy_winsize(src, dst):
    try:
        set_size(dst, _terminal_size(src))
    except OSError:
        pass
