"""Every path that comes from a bundle or an image is resolved here.

A path inside the container is never joined onto the rootfs as a string:
it is resolved relative to an fd of the rootfs with openat2(RESOLVE_IN_ROOT),
so a symlink in the image (absolute, relative, `..`, swapped mid-way) can
never lead outside the rootfs. Callers get fds and mount onto those fds
(see `mounts`). On kernels without openat2 a component-by-component walk
with O_NOFOLLOW gives the same guarantee (it is slower and racier only in
the sense that it may fail, never in escaping).
"""

import posix
import stat as _stat

from . import linux
from .linux import SyscallError

O_PATH = posix.O_PATH
_IN_ROOT = linux.RESOLVE_IN_ROOT | linux.RESOLVE_NO_MAGICLINKS
_MAX_SYMLINKS = 40
_have_openat2 = True


def open_dir(path):
    """O_PATH fd of a host directory (bundle, rootfs), following symlinks."""
    try:
        return posix.open(path, O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC)
    except OSError as e:
        raise SyscallError(e.errno, f"open {path}") from None


def resolve(rootfd, path, flags=O_PATH, mode=0):
    """Open `path` as seen from inside the root `rootfd`; returns an fd."""
    global _have_openat2
    rel = path.lstrip("/") or "."
    if _have_openat2:
        try:
            return linux.openat2(rootfd, rel, flags, mode, _IN_ROOT)
        except SyscallError as e:
            if e.errno != 38:  # ENOSYS
                raise SyscallError(e.errno, f"open {path} in rootfs") from None
            _have_openat2 = False
    return _walk(rootfd, rel, flags, mode)


def _walk(rootfd, rel, flags, mode):
    """openat2(RESOLVE_IN_ROOT) by hand: '..' and absolute links stop at the root."""
    todo = [c for c in rel.split("/") if c not in ("", ".")]
    todo.reverse()
    stack = [posix.dup(rootfd)]
    links = 0
    try:
        while todo:
            comp = todo.pop()
            if comp == "..":
                if len(stack) > 1:
                    posix.close(stack.pop())
                continue
            last = not todo
            try:
                fd = posix.open(comp, O_PATH | posix.O_NOFOLLOW | posix.O_CLOEXEC, dir_fd=stack[-1])
            except OSError as e:
                if last and (flags & posix.O_CREAT) and e.errno == 2:
                    return posix.open(comp, flags | posix.O_NOFOLLOW | posix.O_CLOEXEC, mode, dir_fd=stack[-1])
                raise SyscallError(e.errno, f"open /{rel} in rootfs") from None
            st = posix.fstat(fd)
            if _stat.S_ISLNK(st.st_mode):
                posix.close(fd)
                links += 1
                if links > _MAX_SYMLINKS:
                    raise SyscallError(40, f"open /{rel} in rootfs")
                target = posix.readlink(comp, dir_fd=stack[-1])
                if target.startswith("/"):
                    while len(stack) > 1:
                        posix.close(stack.pop())
                todo.extend(reversed([c for c in target.split("/") if c not in ("", ".")]))
                continue
            if last and flags != O_PATH:
                posix.close(fd)
                return posix.open(comp, flags | posix.O_NOFOLLOW | posix.O_CLOEXEC, mode, dir_fd=stack[-1])
            stack.append(fd)
        if flags == O_PATH:
            return stack.pop()
        return posix.open(".", flags | posix.O_CLOEXEC, dir_fd=stack[-1])
    finally:
        for fd in stack:
            posix.close(fd)


def _split(path):
    parts = [c for c in path.split("/") if c not in ("", ".")]
    return parts


def mkdir_all(rootfd, path, mode=0o755):
    """mkdir -p inside the root; returns an O_PATH fd of the final directory.

    Each missing component is created with mkdirat on an fd obtained by an
    in-root resolution of its parent, so a component swapped for a symlink
    between two steps is still resolved inside the root. A dangling symlink
    on the way is followed, inside the root, and its target created (what
    runc's securejoin.MkdirAll does).
    """
    try:
        return resolve(rootfd, path, O_PATH | posix.O_DIRECTORY)
    except SyscallError as e:
        if e.errno != 2:
            raise
    todo = _split(path)
    todo.reverse()
    cur = "/"
    links = 0
    while todo:
        comp = todo.pop()
        if comp == "..":
            cur = cur.rsplit("/", 1)[0] or "/"
            continue
        nxt = cur.rstrip("/") + "/" + comp
        try:
            posix.close(resolve(rootfd, nxt, O_PATH | posix.O_DIRECTORY))
            cur = nxt
            continue
        except SyscallError as e:
            if e.errno != 2:
                raise
        parent = resolve(rootfd, cur, O_PATH | posix.O_DIRECTORY)
        try:
            try:
                posix.mkdir(comp, mode, dir_fd=parent)
            except FileExistsError:
                # exists but does not resolve to a directory: a dangling symlink
                try:
                    target = posix.readlink(comp, dir_fd=parent)
                except OSError:
                    raise SyscallError(20, f"mkdir {nxt} in rootfs") from None
                links += 1
                if links > _MAX_SYMLINKS:
                    raise SyscallError(40, f"mkdir {path} in rootfs") from None
                if target.startswith("/"):
                    cur = "/"
                todo.extend(reversed(_split(target)))
                continue
            except OSError as e2:
                raise SyscallError(e2.errno, f"mkdir {nxt} in rootfs") from None
        finally:
            posix.close(parent)
        cur = nxt
    return resolve(rootfd, path, O_PATH | posix.O_DIRECTORY)


def mkfile(rootfd, path, mode=0o755):
    """Create an empty regular file (a bind-mount target) if `path` is missing.

    Returns an O_PATH fd of whatever `path` resolves to inside the root.
    """
    try:
        return resolve(rootfd, path)
    except SyscallError as e:
        if e.errno != 2:
            raise
    head, _, name = path.rstrip("/").rpartition("/")
    parent = mkdir_all(rootfd, head or "/")
    try:
        fd = posix.open(name, posix.O_CREAT | posix.O_RDONLY | posix.O_NOFOLLOW | posix.O_CLOEXEC, mode, dir_fd=parent)
        posix.close(fd)
    except FileExistsError:
        pass
    except OSError as e:
        raise SyscallError(e.errno, f"create {path} in rootfs") from None
    finally:
        posix.close(parent)
    return resolve(rootfd, path)


def parent_and_name(rootfd, path):
    """(O_PATH fd of the parent directory inside the root, last component)."""
    head, _, name = path.rstrip("/").rpartition("/")
    if not name or name in (".", ".."):
        raise SyscallError(22, f"invalid path {path}")
    return mkdir_all(rootfd, head or "/"), name


def fd_path(fd):
    """Where an fd points, for messages and the debug log only."""
    try:
        return posix.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return f"fd {fd}"
