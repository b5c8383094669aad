"""Idmapped bind mounts (mounts[].uidMappings/gidMappings, `idmap`/`ridmap`).

Setting MOUNT_ATTR_IDMAP needs CAP_SYS_ADMIN over the filesystem's own
user namespace, which the container init (inside its user namespace)
does not have. So, as runc does, the parent clones the source tree,
idmaps it while detached, and hands the mount fd to the init, which only
attaches it. A mount with its own mappings gets a throw-away user
namespace holding exactly those mappings; a bare `idmap` uses the
container's user namespace.
"""

import os

from . import linux as L
from . import mounts, namespaces, procfs
from .errors import ContainerError


def wanted(m):
    return bool(m.uid_mappings) or any(e in ("idmap", "ridmap") for e in m.extensions)


def _userns_with(uid_maps, gid_maps):
    """An fd of a new user namespace with these mappings (its holder process is gone)."""
    r, w = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(w)
            os.close(r2)
            L.unshare(L.CLONE_NEWUSER)
            os.write(w2, b"1")
            os.read(r, 1)  # hold the namespace until the parent has its fd
        finally:
            os._exit(0)
    os.close(r)
    os.close(w2)
    try:
        if os.read(r2, 1) != b"1":
            raise ContainerError("could not create a user namespace for an idmapped mount")
        pfd = procfs.open_private()
        try:
            namespaces.write_id_maps(pfd, pid, uid_maps, gid_maps)
            return procfs.open_ns(pfd, pid, "user")
        finally:
            os.close(pfd)
    finally:
        os.close(w)
        os.close(r2)
        os.waitpid(pid, 0)


def prepare(spec, bundle, init_pid, log):
    """([mount index], [detached idmapped tree fd]) for the init to attach."""
    idx, fds = [], []
    container_ns = None
    try:
        for i, m in enumerate(spec.mounts):
            if not wanted(m):
                continue
            what = f'idmapped mount of "{m.source}" at "{m.destination}"'
            with log.step(what):
                if m.uid_mappings:
                    nsfd = _userns_with(m.uid_mappings, m.gid_mappings)
                else:
                    if container_ns is None:
                        pfd = procfs.open_private()
                        try:
                            container_ns = procfs.open_ns(pfd, init_pid, "user")
                        finally:
                            os.close(pfd)
                    nsfd = container_ns
                try:
                    src = mounts.bind_source(m, bundle)
                    hostfd = os.open(src, os.O_PATH | os.O_CLOEXEC)
                    try:
                        tree = mounts.clone_tree(hostfd, m.recursive, what)
                    finally:
                        os.close(hostfd)
                    try:
                        L.mount_setattr(tree, "ridmap" in m.extensions, L.MOUNT_ATTR_IDMAP,
                                        userns_fd=nsfd, what=what)
                    except OSError:
                        os.close(tree)
                        raise
                except OSError as e:
                    raise ContainerError(f"{what}: {e}") from None
                finally:
                    if nsfd is not container_ns:
                        os.close(nsfd)
            idx.append(i)
            fds.append(tree)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    finally:
        if container_ns is not None:
            os.close(container_ns)
    return idx, fds
