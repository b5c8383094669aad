"""`pyrunc features`: the runtime-spec v1.3.0 features document.

It lists what pyrunc actually implements on this host — containerd, for
one, refuses idmapped mounts and pod user namespaces unless it says so.
Host-dependent entries (cgroup versions, seccomp, LSMs, resctrl) are
probed, not assumed.
"""

import os

from . import OCI_VERSION, __version__, capabilities, spec
from .process import MPOL_FLAGS, MPOL_MODES

HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"]


def _mount_options():
    opts = set(spec.MOUNT_FLAGS) | set(spec.PROPAGATION) | set(spec.RECURSIVE_ATTRS) | set(spec.EXTENSIONS)
    return sorted(opts)


def _seccomp():
    try:
        from . import seccomp
        return seccomp.features()
    except Exception:  # noqa: BLE001 - no libseccomp on this host: say so
        return {"enabled": False}


def _systemd():
    try:
        from .cgroups import systemd  # noqa: F401 - the driver exists in this build
        return True
    except ImportError:
        return False


def _lsm(name):
    try:
        with open("/sys/kernel/security/lsm") as f:
            return name in f.read().split(",")
    except OSError:
        return False


def document():
    from .cgroups import host_mode
    mode = host_mode()
    linux = {
        "namespaces": sorted(spec.NAMESPACE_FLAGS),
        "capabilities": list(capabilities.NAMES[:capabilities.last_cap() + 1]),
        "cgroup": {"v1": mode in ("v1", "hybrid"), "v2": mode == "v2", "systemd": _systemd(),
                   "systemdUser": False, "rdma": True},
        "seccomp": _seccomp(),
        "apparmor": {"enabled": _lsm("apparmor")},
        "selinux": {"enabled": _lsm("selinux")},
        "intelRdt": {"enabled": os.path.isdir("/sys/fs/resctrl/info")},
        "mountExtensions": {"idmap": {"enabled": True}},
        "netDevices": {"enabled": True},
        "memoryPolicy": {"modes": sorted(MPOL_MODES), "flags": sorted(MPOL_FLAGS)},
    }
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": HOOKS,
        "mountOptions": _mount_options(),
        "linux": linux,
        "annotations": {
            "org.opencontainers.pyrunc.version": __version__,
        },
        "potentiallyUnsafeConfigAnnotations": [],
    }
