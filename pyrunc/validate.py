"""Everything checked before `create` touches the system.

The schema (schemacheck) covers shapes and types; this module covers what
a schema cannot express — runc's libcontainer/configs/validate plus the
MUSTs of runtime-spec v1.3.0 — and reads the bundle without side effects.
"""

import posix
import stat

from . import fastjson, linux, paths, schemacheck
from .errors import ConfigError
from .spec import NAMESPACE_PROC
from . import hostpath

CONFIG = "config.json"

# runc's sysctl validator: which namespace makes a sysctl container-local
_IPC_SYSCTLS = frozenset(("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                          "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced"))
_UTS_SYSCTLS = frozenset(("kernel.domainname", "kernel.hostname"))


def load_config(bundle):
    """config.json of a bundle as a dict, schema-validated."""
    path = hostpath.join(bundle, CONFIG)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError("JSON specification file config.json not found") from None
    except OSError as e:
        raise ConfigError(f"open {path}: {linux.go_strerror(e.errno)}") from None
    try:
        doc = fastjson.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"config.json: invalid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise ConfigError("config.json: expected a JSON object")
    schemacheck.validate(doc, "config", CONFIG)
    return doc


def _clean(path):
    parts = []
    for c in path.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            if parts:
                parts.pop()
            continue
        parts.append(c)
    return "/" + "/".join(parts)


def check(spec, log):
    """Semantic validation; raises ConfigError with a one-line reason."""
    _check_root(spec)
    _check_process(spec, log)
    _check_namespaces(spec)
    _check_mounts(spec, log)
    _check_hooks(spec)
    _check_linux(spec, log)
    if spec.process.apparmor_profile or spec.process.selinux_label or spec.linux.mount_label:
        from . import lsm
        lsm.check(spec, log)
    if spec.linux.seccomp is not None:
        # seccomp: builds the libseccomp filter now (kept for create), so that every
        # name, action, arch, operator and flag is resolved before any side effect
        from . import seccomp
        seccomp.prepare(spec.linux.seccomp, log)


def _check_root(spec):
    if spec.root is None:
        raise ConfigError("root must be specified")
    path = spec.root.path
    real = hostpath.realpath(path)
    if hostpath.normpath(path) != real:
        raise ConfigError(f"invalid rootfs: not an absolute path, or a symlink: {path}")
    try:
        st = posix.stat(real)
    except FileNotFoundError:
        raise ConfigError(f"invalid rootfs: stat {path}: no such file or directory") from None
    except OSError as e:
        raise ConfigError(f"invalid rootfs: stat {path}: {linux.go_strerror(e.errno)}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"invalid rootfs: {path} is not a directory")
    # /proc and /sys of the image must be real directories (CVE-2019-16884,
    # CVE-2023-27561): checked through the rootfs fd, not a joined path
    rootfd = paths.open_dir(real)
    try:
        for name in ("proc", "sys"):
            try:
                st = posix.stat(name, dir_fd=rootfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(st.st_mode):
                raise ConfigError(f"invalid rootfs: /{name} is a symlink")
            if not stat.S_ISDIR(st.st_mode):
                raise ConfigError(f"invalid rootfs: /{name} is not a directory")
    finally:
        posix.close(rootfd)


def _check_process(spec, log):
    p = spec.process
    if p is None:
        raise ConfigError("process must be specified in config.json to create a container")
    if not p.args:
        raise ConfigError("args must not be empty")
    if not p.cwd or not p.cwd.startswith("/"):
        raise ConfigError(f"cwd {p.cwd!r} is not an absolute path")
    seen = set()
    from .process import IOPRIO_CLASSES, RLIMITS, SCHED_FLAGS, SCHED_POLICIES
    for r in p.rlimits:
        if r.type not in RLIMITS:
            raise ConfigError(f"rlimit type {r.type!r} is not supported")
        if r.type in seen:
            raise ConfigError(f"duplicate rlimit type {r.type}")
        seen.add(r.type)
        if r.soft > r.hard:
            raise ConfigError(f"rlimit {r.type}: soft limit {r.soft} is above hard limit {r.hard}")
    if p.oom_score_adj is not None and not -1000 <= p.oom_score_adj <= 1000:
        raise ConfigError(f"oomScoreAdj {p.oom_score_adj} is outside [-1000, 1000]")
    s = p.scheduler
    if s is not None:
        if s.policy not in SCHED_POLICIES:
            raise ConfigError(f"scheduler policy {s.policy!r} is not supported")
        for f in s.flags:
            if f not in SCHED_FLAGS:
                raise ConfigError(f"scheduler flag {f!r} is not supported")
        if s.policy in ("SCHED_OTHER", "SCHED_BATCH") and s.priority:
            raise ConfigError(f"scheduler priority must be 0 for {s.policy}")
        if s.policy in ("SCHED_FIFO", "SCHED_RR") and not 1 <= s.priority <= 99:
            raise ConfigError(f"scheduler priority must be in [1, 99] for {s.policy}")
        if s.nice and not -20 <= s.nice <= 19:
            raise ConfigError(f"scheduler nice {s.nice} is outside [-20, 19]")
    if p.io_priority:
        if p.io_priority.get("class") not in IOPRIO_CLASSES:
            raise ConfigError(f"ioPriority class {p.io_priority.get('class')!r} is not supported")
        if not 0 <= p.io_priority.get("priority", 0) <= 7:
            raise ConfigError("ioPriority priority must be in [0, 7]")
    if p.exec_cpu_affinity:
        from .process import parse_cpus
        for k in ("initial", "final"):
            v = p.exec_cpu_affinity.get(k)
            if v:
                try:
                    parse_cpus(v)
                except Exception:
                    raise ConfigError(f"execCPUAffinity.{k}: invalid CPU list {v!r}") from None


def _check_namespaces(spec):
    lx = spec.linux
    seen = set()
    for ns in lx.namespaces:
        if ns.type in seen:
            raise ConfigError(f"duplicate namespace type {ns.type}")
        seen.add(ns.type)
        if not hostpath.exists(f"/proc/self/ns/{NAMESPACE_PROC[ns.type]}"):
            raise ConfigError(f"{ns.type} namespaces aren't enabled in the kernel")
        if ns.path and not ns.path.startswith("/"):
            raise ConfigError(f"{ns.type} namespace path {ns.path!r} is not absolute")
    user = lx.ns("user")
    if user is None:
        if lx.uid_mappings or lx.gid_mappings:
            raise ConfigError("user namespace mappings specified, but user namespace isn't enabled in the config")
    elif not user.path and not lx.uid_mappings:
        raise ConfigError("user namespaces enabled, but no uid mappings found")
    elif not user.path and not lx.gid_mappings:
        raise ConfigError("user namespaces enabled, but no gid mappings found")
    elif user.path and (lx.uid_mappings or lx.gid_mappings):
        raise ConfigError("user namespace path given together with uid/gid mappings")
    if lx.time_offsets:
        t = lx.ns("time")
        if t is None:
            raise ConfigError("timeOffsets specified, but time namespace isn't enabled in the config")
        if t.path:
            raise ConfigError("timeOffsets cannot be set when joining an existing time namespace")
        for clock in lx.time_offsets:
            if clock not in ("monotonic", "boottime"):
                raise ConfigError(f"timeOffsets: unknown clock {clock!r}")
    if spec.hostname and not _private(lx, "uts"):
        raise ConfigError("unable to set hostname without a private UTS namespace")
    if spec.domainname and not _private(lx, "uts"):
        raise ConfigError("unable to set domainname without a private UTS namespace")
    if (lx.masked_paths or lx.readonly_paths) and not lx.has("mount"):
        raise ConfigError("unable to restrict sys entries without a private MNT namespace")
    if not lx.has("mount"):
        # config-linux.md: the container shares the runtime's mount namespace;
        # mounts are made there (and undone at delete), the root is a chroot
        if spec.root.readonly:
            raise ConfigError("root.readonly needs a private mount namespace "
                              "(it would remount the host's file system)")
        if lx.rootfs_propagation:
            raise ConfigError("rootfsPropagation needs a private mount namespace")
    if lx.net_devices and not _private(lx, "network"):
        raise ConfigError("netDevices require a private network namespace")


def _private(lx, nstype):
    return lx.has(nstype)


def _check_sysctl(lx):
    for key in lx.sysctl:
        if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
            if not lx.has("ipc"):
                raise ConfigError(f"sysctl {key!r} is not allowed in the host's ipc namespace")
        elif key.startswith("net."):
            if not lx.has("network"):
                raise ConfigError(f"sysctl {key!r} is not allowed in the host's network namespace")
        elif key in _UTS_SYSCTLS:
            if not lx.has("uts"):
                raise ConfigError(f"sysctl {key!r} is not allowed in the host's uts namespace")
        else:
            raise ConfigError(f"sysctl {key!r} is not in a separate kernel namespace")
        if "/" in key or ".." in key.split("."):
            raise ConfigError(f"sysctl {key!r} is not a valid sysctl name")


def _check_mounts(spec, log):
    for raw in spec.raw.get("mounts") or ():
        if not raw["destination"].startswith("/"):
            log.warn(f"mount destination {raw['destination']!r} is not absolute: "
                     "taken as relative to / (deprecated)")
    for m in spec.mounts:
        dest = _clean(m.destination)
        if dest == "/proc" and m.type != "proc":
            raise ConfigError(f'"{m.destination}" cannot be mounted because it is not of type proc')
        if dest.startswith("/proc/"):
            from .mounts import PROC_ALLOWED
            if dest not in PROC_ALLOWED:
                raise ConfigError(f'"{m.destination}" cannot be mounted because it is inside /proc')
        if not m.is_bind and not m.type:
            raise ConfigError(f"mount {m.destination!r}: type is required unless it is a bind mount")
        if m.is_bind and not m.source:
            raise ConfigError(f"bind mount {m.destination!r}: source is required")
        if (m.uid_mappings or m.gid_mappings) and not m.is_bind:
            raise ConfigError(f"mount {m.destination!r}: uidMappings/gidMappings need a bind mount")
        if bool(m.uid_mappings) != bool(m.gid_mappings):
            raise ConfigError(f"mount {m.destination!r}: uidMappings and gidMappings must be given together")
        idmap = any(e in ("idmap", "ridmap") for e in m.extensions)
        if (m.uid_mappings or idmap) and not m.is_bind:
            raise ConfigError(f"mount {m.destination!r}: idmapped mounts must be bind mounts")
        if idmap and not m.uid_mappings and not spec.linux.has("user"):
            raise ConfigError(f"mount {m.destination!r}: idmap without mappings needs a user namespace")


def _check_hooks(spec):
    h = spec.hooks
    for kind in h.__slots__:
        for hook in getattr(h, kind):
            if not hook.path.startswith("/"):
                raise ConfigError(f"{kind} hook path {hook.path!r} is not absolute")
            if hook.timeout is not None and hook.timeout <= 0:
                raise ConfigError(f"{kind} hook {hook.path}: timeout must be greater than zero")


def _check_linux(spec, log):
    lx = spec.linux
    mem = (lx.resources or {}).get("memory") or {}
    if mem.get("kernel") or mem.get("kernelTCP"):
        log.warn("Kernel memory settings are ignored and will be removed")  # runc's words
    _check_sysctl(lx)
    for d in lx.devices:
        if not d.path.startswith("/dev/"):
            raise ConfigError(f"device path {d.path!r} must be under /dev")
        if d.type not in ("c", "b", "u", "p"):
            raise ConfigError(f"device {d.path}: invalid type {d.type!r}")
    if lx.personality:
        from .process import PERSONALITY
        if lx.personality.get("domain") not in PERSONALITY:
            raise ConfigError(f"personality domain {lx.personality.get('domain')!r} is not supported")
    if lx.intel_rdt is not None and not hostpath.isdir("/sys/fs/resctrl/info"):
        # the same test as intelrdt.available(), without importing it
        raise ConfigError("intelRdt is specified in config, but Intel RDT is not supported or enabled "
                          "(resctrl is not mounted at /sys/fs/resctrl)")
    if lx.memory_policy:
        from .process import MPOL_FLAGS, MPOL_MODES, parse_cpus
        mp = lx.memory_policy
        if mp.get("mode") not in MPOL_MODES:
            raise ConfigError(f"memoryPolicy mode {mp.get('mode')!r} is not supported")
        for f in mp.get("flags") or ():
            if f not in MPOL_FLAGS:
                raise ConfigError(f"memoryPolicy flag {f!r} is not supported")
        if mp.get("nodes"):
            try:
                parse_cpus(mp["nodes"])
            except Exception:
                raise ConfigError(f"memoryPolicy nodes {mp['nodes']!r} is not a valid node list") from None
        elif mp["mode"] in ("MPOL_BIND", "MPOL_INTERLEAVE", "MPOL_PREFERRED_MANY", "MPOL_WEIGHTED_INTERLEAVE"):
            raise ConfigError(f"memoryPolicy mode {mp['mode']} needs nodes")
    for name, dev in lx.net_devices.items():
        if not name or "/" in name or len(name) > 15:
            raise ConfigError(f"netDevices: invalid interface name {name!r}")
        new = (dev or {}).get("name")
        if new is not None and (not new or "/" in new or len(new) > 15):
            raise ConfigError(f"netDevices.{name}.name: invalid interface name {new!r}")
