"""Creating and joining namespaces; id maps; time offsets; loopback.

The user namespace is always handled first: joined first (so the process
holds capabilities over the namespaces it owns) or unshared first (so the
other new namespaces are owned by it). New PID and time namespaces only
apply to children, which is why the init is forked after `unshare`.
"""

import posix

from . import linux, procfs
from .errors import ConfigError, ContainerError
from .spec import NAMESPACE_FLAGS

NSFS_MAGIC = 0x6E736673
NS_GET_NSTYPE = 0xB703
# join order: user first; mount last so the other paths were opened in the host view
_JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "time", "cgroup", "mount")


def open_paths(linux_spec):
    """Open and check every namespace `path` before anything is created.

    Returns [(type, fd)] in join order. ConfigError if a path is not a
    namespace of the declared type.
    """
    out = []
    try:
        for ns in linux_spec.namespaces:
            if not ns.path:
                continue
            try:
                fd = posix.open(ns.path, posix.O_RDONLY | posix.O_CLOEXEC)
            except OSError as e:
                raise ConfigError(f"{ns.type} namespace path {ns.path}: {linux.go_strerror(e.errno)}") from None
            out.append((ns.type, fd))
            ftype, _ = linux.fstatfs(fd)
            if ftype != NSFS_MAGIC:
                raise ConfigError(f"{ns.type} namespace path {ns.path} is not a namespace file")
            try:
                kind = linux.ioctl_int(fd, NS_GET_NSTYPE)
            except OSError:
                kind = None
            if kind is not None and kind != NAMESPACE_FLAGS[ns.type]:
                raise ConfigError(f"namespace path {ns.path} is not a {ns.type} namespace")
    except BaseException:
        for _, fd in out:
            posix.close(fd)
        raise
    out.sort(key=lambda t: _JOIN_ORDER.index(t[0]))
    return out


def join(ns_fds, close=True):
    for nstype, fd in ns_fds:
        try:
            linux.setns(fd, NAMESPACE_FLAGS[nstype], f"setns {nstype}")
        except OSError as e:
            raise ContainerError(f"failed to join {nstype} namespace: {e}") from None
        if close:
            posix.close(fd)


def new_flags(linux_spec, exclude=0):
    """CLONE_NEW* flags of the namespaces to create (no path)."""
    flags = 0
    for ns in linux_spec.namespaces:
        if not ns.path:
            flags |= NAMESPACE_FLAGS[ns.type]
    return flags & ~exclude


def _map_text(maps):
    return "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps)


def write_id_maps(procfd, pid, uid_maps, gid_maps):
    """Parent side: uid_map/gid_map of a process that just unshared its user namespace."""
    try:
        if gid_maps:
            procfs.write(procfd, f"{pid}/gid_map", _map_text(gid_maps))
        if uid_maps:
            procfs.write(procfd, f"{pid}/uid_map", _map_text(uid_maps))
    except OSError as e:
        raise ContainerError(f"failed to write id mappings: {e}") from None


def set_time_offsets(procfd, offsets):
    """After unshare(CLONE_NEWTIME), before the first child is forked."""
    lines = []
    for clock, o in offsets.items():
        lines.append(f"{clock} {o.get('secs', 0)} {o.get('nanosecs', 0)}\n")
    if not lines:
        return
    try:
        procfs.write(procfd, f"{posix.getpid()}/timens_offsets", "".join(lines))
    except OSError as e:
        raise ContainerError(f"failed to set time namespace offsets: {e}") from None


def loopback_up():
    """Bring `lo` up in a new network namespace (runc's loopback strategy)."""
    try:
        linux.link_up("lo")
    except OSError as e:
        raise ContainerError(f"unable to bring up loopback: {e}") from None
