"""Host paths (the bundle, the runtime's own files), without `os`.

`import os` costs ~2.5 ms per command here (it loads posixpath, stat and
collections.abc), several per cent of a whole `run`. Every syscall pyrunc
needs is in `posix`; these few helpers are all it used of `os.path`, with
posixpath's semantics for str paths.

Paths inside a container's rootfs never come here: they are resolved
relative to an fd of the rootfs by `paths` (openat2 RESOLVE_IN_ROOT).
"""

import posix

_S_IFMT = 0o170000
_S_IFDIR = 0o040000
_S_IFREG = 0o100000
_S_IFLNK = 0o120000


def join(a, *rest):
    path = a
    for b in rest:
        if b.startswith("/"):
            path = b
        elif not path or path.endswith("/"):
            path += b
        else:
            path += "/" + b
    return path


def split(p):
    i = p.rfind("/") + 1
    head, tail = p[:i], p[i:]
    if head and head != "/" * len(head):
        head = head.rstrip("/")
    return head, tail


def dirname(p):
    return split(p)[0]


def basename(p):
    return p[p.rfind("/") + 1:]


def normpath(path):
    if not path:
        return "."
    initial = 0
    if path.startswith("/"):
        initial = 2 if path.startswith("//") and not path.startswith("///") else 1
    comps = []
    for comp in path.split("/"):
        if comp in ("", "."):
            continue
        if comp != ".." or (not initial and not comps) or (comps and comps[-1] == ".."):
            comps.append(comp)
        elif comps:
            comps.pop()
    path = "/" * initial + "/".join(comps)
    return path or "."


def abspath(p):
    return normpath(p if p.startswith("/") else join(posix.getcwd(), p))


def _mode(p, follow=True):
    try:
        return (posix.stat(p) if follow else posix.lstat(p)).st_mode & _S_IFMT
    except (OSError, ValueError):
        return None


def exists(p):
    return _mode(p) is not None


def isdir(p):
    return _mode(p) == _S_IFDIR


def isfile(p):
    return _mode(p) == _S_IFREG


def realpath(p):
    """Symlinks resolved; missing components kept as they are (posixpath.realpath, non-strict)."""
    path, _ = _joinrealpath("", p, {})
    return abspath(path)


def _joinrealpath(path, rest, seen):
    if rest.startswith("/"):
        rest = rest[1:]
        path = "/"
    while rest:
        name, _, rest = rest.partition("/")
        if not name or name == ".":
            continue
        if name == "..":
            if path:
                path, name = split(path)
                if name == "..":
                    path = join(path, "..", "..")
            else:
                path = ".."
            continue
        newpath = join(path, name)
        if _mode(newpath, follow=False) != _S_IFLNK:
            path = newpath
            continue
        if newpath in seen:
            path = seen[newpath]
            if path is not None:
                continue
            return join(newpath, rest), False  # a symlink loop
        seen[newpath] = None
        path, ok = _joinrealpath(path, posix.readlink(newpath), seen)
        if not ok:
            return join(path, rest), False
        seen[newpath] = path
    return path, True
