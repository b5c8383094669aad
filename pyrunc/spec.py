"""The typed, frozen spec model, built once from a schema-validated config.json.

Classes are slotted and immutable. attrs would be the obvious tool, but
`import attrs` costs ~20 ms on the reference machine — more than runc's
whole `run` — so the model uses a ten-line frozen base instead. Derived
values (mount flags, namespace clone flags, capability numbers) are
computed here, once, so the container init only reads fields.
"""

from . import linux as L
from . import hostpath

# --- frozen base --------------------------------------------------------------


class Frozen:
    __slots__ = ()
    _defaults = {}

    def __init__(self, **kw):
        d = self._defaults
        for name in self.__slots__:
            if name in kw:
                v = kw.pop(name)
            else:
                v = d.get(name)
                if isinstance(v, (list, dict)):  # never share a mutable default
                    v = type(v)(v)
            object.__setattr__(self, name, v)
        if kw:
            raise TypeError(f"{type(self).__name__}: unknown fields {sorted(kw)}")

    def __setattr__(self, name, value):
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __eq__(self, other):
        return type(self) is type(other) and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __hash__(self):
        return hash(tuple(repr(getattr(self, n)) for n in self.__slots__))

    def __repr__(self):
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({fields})"


# --- namespaces ---------------------------------------------------------------

NAMESPACE_FLAGS = {
    "pid": L.CLONE_NEWPID,
    "network": L.CLONE_NEWNET,
    "mount": L.CLONE_NEWNS,
    "ipc": L.CLONE_NEWIPC,
    "uts": L.CLONE_NEWUTS,
    "user": L.CLONE_NEWUSER,
    "cgroup": L.CLONE_NEWCGROUP,
    "time": L.CLONE_NEWTIME,
}
# /proc/<pid>/ns/<name> for each spec namespace type
NAMESPACE_PROC = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc",
                  "uts": "uts", "user": "user", "cgroup": "cgroup", "time": "time"}


class Namespace(Frozen):
    __slots__ = ("type", "path")

    @property
    def flag(self):
        return NAMESPACE_FLAGS[self.type]


class IDMapping(Frozen):
    __slots__ = ("container_id", "host_id", "size")


# --- mounts -------------------------------------------------------------------

# option -> (clear?, MS_ flag), runc's libcontainer/specconv mountFlags
MOUNT_FLAGS = {
    "acl": (False, 1 << 16), "async": (True, L.MS_SYNCHRONOUS), "atime": (True, L.MS_NOATIME),
    "bind": (False, L.MS_BIND), "defaults": (False, 0), "dev": (True, L.MS_NODEV),
    "diratime": (True, L.MS_NODIRATIME), "dirsync": (False, L.MS_DIRSYNC),
    "exec": (True, L.MS_NOEXEC), "iversion": (False, 1 << 23), "lazytime": (False, L.MS_LAZYTIME),
    "loud": (True, L.MS_SILENT), "mand": (False, L.MS_MANDLOCK), "noacl": (True, 1 << 16),
    "noatime": (False, L.MS_NOATIME), "nodev": (False, L.MS_NODEV),
    "nodiratime": (False, L.MS_NODIRATIME), "noexec": (False, L.MS_NOEXEC),
    "noiversion": (True, 1 << 23), "nolazytime": (True, L.MS_LAZYTIME),
    "nomand": (True, L.MS_MANDLOCK), "norelatime": (True, L.MS_RELATIME),
    "nostrictatime": (True, L.MS_STRICTATIME), "nosuid": (False, L.MS_NOSUID),
    "nosymfollow": (False, L.MS_NOSYMFOLLOW), "rbind": (False, L.MS_BIND | L.MS_REC),
    "relatime": (False, L.MS_RELATIME), "remount": (False, L.MS_REMOUNT),
    "ro": (False, L.MS_RDONLY), "rw": (True, L.MS_RDONLY), "silent": (False, L.MS_SILENT),
    "strictatime": (False, L.MS_STRICTATIME), "suid": (True, L.MS_NOSUID),
    "symfollow": (True, L.MS_NOSYMFOLLOW), "sync": (False, L.MS_SYNCHRONOUS),
}
PROPAGATION = {
    "private": L.MS_PRIVATE, "rprivate": L.MS_PRIVATE | L.MS_REC,
    "shared": L.MS_SHARED, "rshared": L.MS_SHARED | L.MS_REC,
    "slave": L.MS_SLAVE, "rslave": L.MS_SLAVE | L.MS_REC,
    "unbindable": L.MS_UNBINDABLE, "runbindable": L.MS_UNBINDABLE | L.MS_REC,
}
# recursive mount attributes (mount_setattr with AT_RECURSIVE): option -> (clear?, MOUNT_ATTR_)
RECURSIVE_ATTRS = {
    "rro": (False, L.MOUNT_ATTR_RDONLY), "rrw": (True, L.MOUNT_ATTR_RDONLY),
    "rnosuid": (False, L.MOUNT_ATTR_NOSUID), "rsuid": (True, L.MOUNT_ATTR_NOSUID),
    "rnodev": (False, L.MOUNT_ATTR_NODEV), "rdev": (True, L.MOUNT_ATTR_NODEV),
    "rnoexec": (False, L.MOUNT_ATTR_NOEXEC), "rexec": (True, L.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (False, L.MOUNT_ATTR_NODIRATIME), "rdiratime": (True, L.MOUNT_ATTR_NODIRATIME),
    "rrelatime": (False, L.MOUNT_ATTR_RELATIME), "rnorelatime": (True, L.MOUNT_ATTR_RELATIME),
    "rnoatime": (False, L.MOUNT_ATTR_NOATIME), "ratime": (True, L.MOUNT_ATTR_NOATIME),
    "rstrictatime": (False, L.MOUNT_ATTR_STRICTATIME), "rnostrictatime": (True, L.MOUNT_ATTR_STRICTATIME),
    "rnosymfollow": (False, L.MOUNT_ATTR_NOSYMFOLLOW), "rsymfollow": (True, L.MOUNT_ATTR_NOSYMFOLLOW),
}
# options that change how pyrunc mounts, not what the kernel gets
EXTENSIONS = ("tmpcopyup", "idmap", "ridmap")


class Mount(Frozen):
    __slots__ = ("destination", "source", "type", "options", "flags", "clear_flags",
                 "propagation", "data", "rec_set", "rec_clr", "extensions",
                 "uid_mappings", "gid_mappings")

    @property
    def is_bind(self):
        return bool(self.flags & L.MS_BIND)

    @property
    def recursive(self):
        return bool(self.flags & L.MS_REC)


def parse_mount_options(options):
    """Split OCI mount options the way runc does.

    Returns (flags, clear_flags, propagation list, data string,
    recursive attr set, recursive attr clear, extensions).
    """
    flags = clear = rset = rclr = 0
    prop = []
    data = []
    ext = []
    for o in options:
        if o in MOUNT_FLAGS:
            c, f = MOUNT_FLAGS[o]
            if c:
                flags &= ~f
                clear |= f
            else:
                flags |= f
                clear &= ~f
        elif o in PROPAGATION:
            prop.append(PROPAGATION[o])
        elif o in RECURSIVE_ATTRS:
            c, f = RECURSIVE_ATTRS[o]
            if c:
                rclr |= f
                rset &= ~f
            else:
                rset |= f
                rclr &= ~f
        elif o in EXTENSIONS:
            ext.append(o)
        else:
            data.append(o)
    return flags, clear, tuple(prop), ",".join(data), rset, rclr, tuple(ext)


# --- process ------------------------------------------------------------------

class User(Frozen):
    __slots__ = ("uid", "gid", "umask", "additional_gids")
    _defaults = {"uid": 0, "gid": 0, "additional_gids": ()}


class Rlimit(Frozen):
    __slots__ = ("type", "hard", "soft")


class Capabilities(Frozen):
    __slots__ = ("bounding", "effective", "inheritable", "permitted", "ambient")
    _defaults = {"bounding": (), "effective": (), "inheritable": (), "permitted": (), "ambient": ()}


class Scheduler(Frozen):
    __slots__ = ("policy", "nice", "priority", "flags", "runtime", "deadline", "period")
    _defaults = {"nice": 0, "priority": 0, "flags": (), "runtime": 0, "deadline": 0, "period": 0}


class Process(Frozen):
    __slots__ = ("terminal", "console_size", "user", "args", "env", "cwd", "capabilities",
                 "rlimits", "no_new_privileges", "apparmor_profile", "oom_score_adj",
                 "selinux_label", "scheduler", "io_priority", "exec_cpu_affinity")
    _defaults = {"terminal": False, "args": (), "env": (), "rlimits": (),
                 "no_new_privileges": False}


def build_process(p):
    u = p.get("user") or {}
    caps = p.get("capabilities")
    sched = p.get("scheduler")
    return Process(
        terminal=bool(p.get("terminal", False)),
        console_size=p.get("consoleSize"),
        user=User(uid=u.get("uid", 0), gid=u.get("gid", 0), umask=u.get("umask"),
                  additional_gids=tuple(u.get("additionalGids") or ())),
        args=tuple(p.get("args") or ()),
        env=tuple(p.get("env") or ()),
        cwd=p.get("cwd", "/"),
        capabilities=None if caps is None else Capabilities(
            **{k: tuple(caps.get(k) or ()) for k in Capabilities.__slots__}),
        rlimits=tuple(Rlimit(type=r["type"], hard=r["hard"], soft=r["soft"])
                      for r in p.get("rlimits") or ()),
        no_new_privileges=bool(p.get("noNewPrivileges", False)),
        apparmor_profile=p.get("apparmorProfile"),
        oom_score_adj=p.get("oomScoreAdj"),
        selinux_label=p.get("selinuxLabel"),
        scheduler=None if sched is None else Scheduler(
            policy=sched["policy"], nice=sched.get("nice", 0), priority=sched.get("priority", 0),
            flags=tuple(sched.get("flags") or ()), runtime=sched.get("runtime", 0),
            deadline=sched.get("deadline", 0), period=sched.get("period", 0)),
        io_priority=p.get("ioPriority"),
        exec_cpu_affinity=p.get("execCPUAffinity"),
    )


# --- hooks --------------------------------------------------------------------

class Hook(Frozen):
    __slots__ = ("path", "args", "env", "timeout")


class Hooks(Frozen):
    __slots__ = ("prestart", "create_runtime", "create_container", "start_container",
                 "poststart", "poststop")
    _defaults = {k: () for k in __slots__}

    def __bool__(self):
        return any(getattr(self, k) for k in self.__slots__)


HOOK_KEYS = {"prestart": "prestart", "createRuntime": "create_runtime",
             "createContainer": "create_container", "startContainer": "start_container",
             "poststart": "poststart", "poststop": "poststop"}


def build_hooks(h):
    h = h or {}
    return Hooks(**{attr: tuple(Hook(path=x["path"], args=tuple(x.get("args") or ()),
                                     env=tuple(x.get("env") or ()), timeout=x.get("timeout"))
                                for x in h.get(key) or ())
                    for key, attr in HOOK_KEYS.items()})


# --- linux --------------------------------------------------------------------

class Device(Frozen):
    __slots__ = ("path", "type", "major", "minor", "file_mode", "uid", "gid")


class Linux(Frozen):
    __slots__ = ("namespaces", "uid_mappings", "gid_mappings", "time_offsets", "devices",
                 "cgroups_path", "resources", "rootfs_propagation", "masked_paths",
                 "readonly_paths", "mount_label", "sysctl", "seccomp", "personality",
                 "intel_rdt", "net_devices", "memory_policy")
    _defaults = {"namespaces": (), "uid_mappings": (), "gid_mappings": (), "devices": (),
                 "masked_paths": (), "readonly_paths": (), "sysctl": {}, "net_devices": {},
                 "time_offsets": {}}

    def has(self, nstype):
        return any(ns.type == nstype for ns in self.namespaces)

    def ns(self, nstype):
        for ns in self.namespaces:
            if ns.type == nstype:
                return ns
        return None


def _maps(lst):
    return tuple(IDMapping(container_id=m["containerID"], host_id=m["hostID"], size=m["size"])
                 for m in lst or ())


def build_linux(x):
    return Linux(
        namespaces=tuple(Namespace(type=n["type"], path=n.get("path") or None)
                         for n in x.get("namespaces") or ()),
        uid_mappings=_maps(x.get("uidMappings")),
        gid_mappings=_maps(x.get("gidMappings")),
        time_offsets=dict(x.get("timeOffsets") or {}),
        devices=tuple(Device(path=d["path"], type=d["type"], major=d.get("major", 0),
                             minor=d.get("minor", 0), file_mode=d.get("fileMode"),
                             uid=d.get("uid"), gid=d.get("gid"))
                      for d in x.get("devices") or ()),
        cgroups_path=x.get("cgroupsPath"),
        resources=x.get("resources"),
        rootfs_propagation=x.get("rootfsPropagation"),
        masked_paths=tuple(x.get("maskedPaths") or ()),
        readonly_paths=tuple(x.get("readonlyPaths") or ()),
        mount_label=x.get("mountLabel"),
        sysctl=dict(x.get("sysctl") or {}),
        seccomp=x.get("seccomp"),
        personality=x.get("personality"),
        intel_rdt=x.get("intelRdt"),
        net_devices=dict(x.get("netDevices") or {}),
        memory_policy=x.get("memoryPolicy"),
    )


# --- the whole spec -----------------------------------------------------------

class Root(Frozen):
    __slots__ = ("path", "readonly")


class Spec(Frozen):
    __slots__ = ("oci_version", "root", "mounts", "process", "hostname", "domainname",
                 "hooks", "annotations", "linux", "raw")
    _defaults = {"mounts": (), "annotations": {}}


def build_mount(m):
    opts = tuple(m.get("options") or ())
    flags, clear, prop, data, rset, rclr, ext = parse_mount_options(opts)
    mtype = m.get("type") or ""
    # A mount of type "bind" without bind/rbind in its options is a bind
    # mount for runc (and for the spec since 1.1); make it so here once.
    if mtype == "bind" and not flags & L.MS_BIND:
        flags |= L.MS_BIND
    dest = m["destination"]
    if not dest.startswith("/"):
        # config.md (Linux): a relative destination is deprecated but MUST be
        # taken as relative to "/"
        dest = "/" + dest
    return Mount(destination=dest, source=m.get("source") or "", type=mtype,
                 options=opts, flags=flags, clear_flags=clear, propagation=prop, data=data,
                 rec_set=rset, rec_clr=rclr, extensions=ext,
                 uid_mappings=_maps(m.get("uidMappings")), gid_mappings=_maps(m.get("gidMappings")))


def build(doc, bundle):
    """Spec from a validated config.json dict; `bundle` is the absolute bundle dir."""
    root = doc.get("root")
    rootspec = None
    if root is not None:
        path = root["path"]
        if not path.startswith("/"):
            # like runc, which resolves it from inside the bundle directory: a
            # symlink on the way to the bundle is fine, one in root.path is not
            real = hostpath.realpath(bundle)
            path = real.rstrip("/") + "/" + path if path != "." else real
        rootspec = Root(path=path, readonly=bool(root.get("readonly", False)))
    proc = doc.get("process")
    linux = doc.get("linux")
    return Spec(
        oci_version=doc["ociVersion"],
        root=rootspec,
        mounts=tuple(build_mount(m) for m in doc.get("mounts") or ()),
        process=None if proc is None else build_process(proc),
        hostname=doc.get("hostname"),
        domainname=doc.get("domainname"),
        hooks=build_hooks(doc.get("hooks")),
        annotations=dict(doc.get("annotations") or {}),
        linux=build_linux(linux or {}),
        raw=doc,
    )
