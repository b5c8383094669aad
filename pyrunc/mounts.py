"""Mounting through file descriptors.

Every mount is built detached — fsopen/fsconfig/fsmount for a new
filesystem, open_tree(OPEN_TREE_CLONE) for a bind — given its attributes
with mount_setattr while nobody can see it, and attached with move_mount
onto an fd that `paths` resolved inside the rootfs. No mount target is
ever a string, so a symlink swapped into the image between resolution and
mount cannot redirect it (CVE-2021-30465 class).
"""

import posix

from . import linux as L
from . import paths
from .errors import ContainerError
from .linux import SyscallError

# MS_ flag -> MOUNT_ATTR_ (per-mount attributes)
_ATTR = (
    (L.MS_RDONLY, L.MOUNT_ATTR_RDONLY),
    (L.MS_NOSUID, L.MOUNT_ATTR_NOSUID),
    (L.MS_NODEV, L.MOUNT_ATTR_NODEV),
    (L.MS_NOEXEC, L.MOUNT_ATTR_NOEXEC),
    (L.MS_NODIRATIME, L.MOUNT_ATTR_NODIRATIME),
    (L.MS_NOSYMFOLLOW, L.MOUNT_ATTR_NOSYMFOLLOW),
)
_ATIME = L.MS_NOATIME | L.MS_STRICTATIME | L.MS_RELATIME
# superblock flags set through fsconfig, as mount(2) would pass them
_SB_FLAGS = ((L.MS_RDONLY, "ro"), (L.MS_SYNCHRONOUS, "sync"), (L.MS_DIRSYNC, "dirsync"),
             (L.MS_MANDLOCK, "mand"), (L.MS_LAZYTIME, "lazytime"))
_PROP = {L.MS_SHARED: L.MS_SHARED, L.MS_SLAVE: L.MS_SLAVE, L.MS_PRIVATE: L.MS_PRIVATE,
         L.MS_UNBINDABLE: L.MS_UNBINDABLE}
# runc's checkProcMount allow-list: what lxcfs and friends bind over /proc
PROC_ALLOWED = frozenset((
    "/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
    "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
))


def mount_attrs(flags):
    """(attr_set, atime_given) for MS_ flags."""
    attr = 0
    for ms, ma in _ATTR:
        if flags & ms:
            attr |= ma
    if flags & L.MS_NOATIME:
        attr |= L.MOUNT_ATTR_NOATIME
    elif flags & L.MS_STRICTATIME:
        attr |= L.MOUNT_ATTR_STRICTATIME
    return attr, bool(flags & _ATIME)


def _fs_error(fsfd, err):
    # the fs context keeps the kernel's own explanation ("e tmpfs: Bad value for 'mode'")
    try:
        posix.set_blocking(fsfd, False)
        msg = posix.read(fsfd, 1024).decode(errors="replace").strip()
    except OSError:
        msg = ""
    return msg[2:] if msg[1:2] == " " else msg


def new_fs(fstype, source, flags, data, what):
    """A detached mount of a fresh filesystem; returns the mount fd."""
    fsfd = L.fsopen(fstype)
    try:
        try:
            if source:
                L.fsconfig(fsfd, L.FSCONFIG_SET_STRING, "source", source)
            for ms, key in _SB_FLAGS:
                if flags & ms:
                    L.fsconfig(fsfd, L.FSCONFIG_SET_FLAG, key)
            for opt in data.split(",") if data else ():
                key, eq, val = opt.partition("=")
                if eq:
                    L.fsconfig(fsfd, L.FSCONFIG_SET_STRING, key, val)
                else:
                    L.fsconfig(fsfd, L.FSCONFIG_SET_FLAG, key)
            L.fsconfig(fsfd, L.FSCONFIG_CMD_CREATE)
        except SyscallError as e:
            detail = _fs_error(fsfd, e.errno)
            raise SyscallError(e.errno, f"{what}{': ' + detail if detail else ''}") from None
        attr, _ = mount_attrs(flags)
        return L.fsmount(fsfd, attr, what)
    finally:
        posix.close(fsfd)


def clone_tree(srcfd, recursive, what):
    """A detached bind of srcfd (the whole subtree if recursive)."""
    flags = L.OPEN_TREE_CLONE | L.OPEN_TREE_CLOEXEC | L.AT_EMPTY_PATH
    if recursive:
        flags |= L.AT_RECURSIVE
    return L.open_tree(srcfd, "", flags, what)


def attach_new(mfd, destfd, what):
    """Attach a detached mount onto destfd and close it."""
    try:
        attach(mfd, destfd, what)
    finally:
        posix.close(mfd)


def bind_fd(srcfd, destfd, what, recursive=False, readonly=False):
    """Bind what srcfd points at onto destfd (optionally read-only, only its top mount)."""
    mfd = clone_tree(srcfd, recursive, what)
    if readonly:
        try:
            L.mount_setattr(mfd, False, L.MOUNT_ATTR_RDONLY, what=what)
        except OSError:
            posix.close(mfd)
            raise
    attach_new(mfd, destfd, what)


def set_bind_flags(mfd, flags, clear, what):
    """Give a cloned bind the requested per-mount flags (runc's bind remount).

    As with runc's MS_REMOUNT|MS_BIND, flags are set exactly when the mount
    asks for any; a flag the kernel has locked (a bind from a more
    privileged mount namespace into a user namespace) is kept rather than
    failing the mount.
    """
    if not (flags & ~(L.MS_BIND | L.MS_REC | L.MS_REMOUNT) or clear):
        return
    attr_set, atime = mount_attrs(flags)
    attr_clr = 0
    for _ms, ma in _ATTR:
        if not attr_set & ma:
            attr_clr |= ma
    if atime:
        attr_clr |= L.MOUNT_ATTR__ATIME
    try:
        L.mount_setattr(mfd, False, attr_set, attr_clr, what=what)
    except SyscallError as e:
        if e.errno != 1:
            raise
        L.mount_setattr(mfd, False, attr_set, attr_set & L.MOUNT_ATTR__ATIME and L.MOUNT_ATTR__ATIME,
                        what=what)


def set_propagation(fd, props, what):
    for p in props:
        L.mount_setattr(fd, bool(p & L.MS_REC), propagation=p & ~L.MS_REC, what=what)


def attach(mfd, destfd, what):
    L.move_mount(mfd, destfd, what)


def _check_not_proc(m, destfd):
    ftype, _ = L.fstatfs(destfd)
    if ftype == L.PROC_SUPER_MAGIC and m.type != "proc":
        dest = "/" + "/".join(c for c in m.destination.split("/") if c and c != ".")
        if dest not in PROC_ALLOWED:
            raise ContainerError(f'"{m.destination}" cannot be mounted because it is inside /proc')


def mount_entry(rootfd, m, bundle, log, srcfd=None, mount_label=None):
    """Mount one config.json mount entry inside the root.

    srcfd: an already prepared detached tree (idmapped binds made by the parent).
    """
    what = f'mount {m.source or m.type} to rootfs at "{m.destination}"'
    with log.step(what):
        try:
            if m.is_bind or srcfd is not None:
                _bind(rootfd, m, bundle, what, srcfd)
            else:
                _new(rootfd, m, what, mount_label)
        except SyscallError as e:
            raise ContainerError(f'error mounting "{m.source or m.type}" to rootfs at '
                                 f'"{m.destination}": {e}') from None


def _new(rootfd, m, what, mount_label=None):
    if m.type in ("proc", "sysfs"):
        # CVE-2019-16884 / CVE-2023-27561: never follow a symlink for these
        try:
            destfd = L.openat2(rootfd, m.destination.lstrip("/") or ".", posix.O_PATH, 0,
                               L.RESOLVE_IN_ROOT | L.RESOLVE_NO_SYMLINKS)
        except SyscallError as e:
            if e.errno == 40:  # ELOOP
                raise ContainerError(f'{m.type} mount destination "{m.destination}" is a symlink') from None
            if e.errno != 2:
                raise
            destfd = paths.mkdir_all(rootfd, m.destination)
        if not _is_dir(destfd):
            posix.close(destfd)
            raise ContainerError(f'filesystem "{m.type}" must be mounted on ordinary directory')
    else:
        destfd = paths.mkdir_all(rootfd, m.destination)
    try:
        _check_not_proc(m, destfd)
        data = m.data
        if mount_label:
            from . import lsm
            data = lsm.mount_data(data, mount_label, m.type, False)
        mfd = new_fs(m.type, m.source, m.flags, data, what)
        try:
            if m.rec_set or m.rec_clr:
                L.mount_setattr(mfd, True, m.rec_set, m.rec_clr, what=what)
            if "tmpcopyup" in m.extensions:
                _copy_up(destfd, mfd)
            attach(mfd, destfd, what)
            set_propagation(mfd, m.propagation, what)
        finally:
            posix.close(mfd)
    finally:
        posix.close(destfd)


def _is_dir(fd):
    import stat
    return stat.S_ISDIR(posix.fstat(fd).st_mode)


def bind_source(m, bundle):
    src = m.source
    if not src.startswith("/"):
        src = bundle.rstrip("/") + "/" + src
    return src


def _bind(rootfd, m, bundle, what, srcfd):
    own = srcfd is None
    if own:
        src = bind_source(m, bundle)
        try:
            hostfd = posix.open(src, posix.O_PATH | posix.O_CLOEXEC)
        except OSError as e:
            raise SyscallError(e.errno, f"stat {src}") from None
        try:
            is_dir = _is_dir(hostfd)
            srcfd = clone_tree(hostfd, m.recursive, what)
        finally:
            posix.close(hostfd)
    else:
        is_dir = _is_dir(srcfd)
    try:
        destfd = paths.mkdir_all(rootfd, m.destination) if is_dir else paths.mkfile(rootfd, m.destination)
        try:
            _check_not_proc(m, destfd)
            set_bind_flags(srcfd, m.flags, m.clear_flags, what)
            if m.rec_set or m.rec_clr:
                L.mount_setattr(srcfd, True, m.rec_set, m.rec_clr, what=what)
            attach(srcfd, destfd, what)
            set_propagation(srcfd, m.propagation, what)
        finally:
            posix.close(destfd)
    finally:
        posix.close(srcfd)


def _copy_up(srcdir_fd, mfd):
    """tmpcopyup: copy what the image has at the destination into the new tmpfs."""
    src = posix.open(".", posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC, dir_fd=srcdir_fd)
    dst = posix.open(".", posix.O_RDONLY | posix.O_DIRECTORY | posix.O_CLOEXEC, dir_fd=mfd)
    try:
        _copy_dir(src, dst)
    finally:
        posix.close(src)
        posix.close(dst)


def _copy_dir(src, dst):
    import stat
    for name in posix.listdir(src):
        st = posix.stat(name, dir_fd=src, follow_symlinks=False)
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            posix.mkdir(name, mode, dir_fd=dst)
            s2 = posix.open(name, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_NOFOLLOW | posix.O_CLOEXEC, dir_fd=src)
            d2 = posix.open(name, posix.O_RDONLY | posix.O_DIRECTORY | posix.O_NOFOLLOW | posix.O_CLOEXEC, dir_fd=dst)
            try:
                _copy_dir(s2, d2)
            finally:
                posix.close(s2)
                posix.close(d2)
        elif stat.S_ISLNK(st.st_mode):
            posix.symlink(posix.readlink(name, dir_fd=src), name, dir_fd=dst)
        elif stat.S_ISREG(st.st_mode):
            fi = posix.open(name, posix.O_RDONLY | posix.O_NOFOLLOW | posix.O_CLOEXEC, dir_fd=src)
            fo = posix.open(name, posix.O_WRONLY | posix.O_CREAT | posix.O_EXCL | posix.O_CLOEXEC, mode, dir_fd=dst)
            try:
                while True:
                    buf = posix.read(fi, 1 << 16)
                    if not buf:
                        break
                    posix.write(fo, buf)
            finally:
                posix.close(fi)
                posix.close(fo)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            posix.mknod(name, st.st_mode, st.st_rdev, dir_fd=dst)
        else:
            continue
        posix.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
