"""linux.intelRdt through resctrl: a CLOS group holding the container init.

This machine has no resctrl (validate refuses intelRdt with a clear error
there); the code follows runc's libcontainer/intelrdt: the group is
/sys/fs/resctrl/<closID> (default: the container ID), created if missing
and removed on delete only if this runtime created it.
"""

import os

from .errors import ContainerError

RESCTRL = "/sys/fs/resctrl"


def available():
    return os.path.isdir(os.path.join(RESCTRL, "info"))


def apply(rdt, cid, pid, log):
    """Returns {"path": group dir, "created": bool} for the state file."""
    clos = rdt.get("closID") or cid
    if "/" in clos or clos in (".", ".."):
        raise ContainerError(f"intelRdt.closID {clos!r} is not a valid group name")
    path = os.path.join(RESCTRL, clos)
    created = False
    with log.step(f"intelRdt group {path}"):
        try:
            os.mkdir(path, 0o755)
            created = True
        except FileExistsError:
            pass
        except OSError as e:
            raise ContainerError(f"intelRdt: create {path}: {e.strerror.lower()}") from None
        try:
            lines = list(rdt.get("schemata") or ())
            for key in ("l3CacheSchema", "memBwSchema"):
                if rdt.get(key):
                    lines.extend(rdt[key].split("\n"))
            for line in lines:
                if line.strip():
                    _write(os.path.join(path, "schemata"), line.strip() + "\n")
            _write(os.path.join(path, "tasks"), str(pid))
        except OSError as e:
            if created:
                remove({"path": path, "created": True})
            raise ContainerError(f"intelRdt: {e.filename}: {e.strerror.lower()}") from None
    return {"path": path, "created": created}


def remove(group):
    if group and group.get("created"):
        try:
            os.rmdir(group["path"])
        except FileNotFoundError:
            pass


def _write(path, data):
    with open(path, "w") as f:
        f.write(data)
