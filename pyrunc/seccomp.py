"""linux.seccomp: the spec's profile → a libseccomp filter; loading it; notify.

Everything goes through the host's libseccomp (`libseccomp`): pyrunc never
generates BPF itself. The semantics are runc's (libcontainer/seccomp and
specconv.SetupSeccomp), with runtime-spec v1.3.0's MUSTs on top:

- `prepare` builds the whole filter context in the runtime, before any
  side effect: `validate.check` calls it, so every name, action, errno,
  architecture, operator and flag the host cannot honour fails `create`
  with the JSON path of the culprit (``linux.seccomp.syscalls[3].action:
  …``). The built context is kept (per profile dict) and inherited by the
  forked container process, whose only libseccomp call is `seccomp_load`
  (BPF generation + seccomp(2)): nothing to import or resolve once it has
  lost the host's root.
- Syscall names libseccomp does not know are skipped with one warning
  (runc logs them). Several args on one syscall: distinct indexes make one
  rule with all comparisons; an index used twice makes one rule per
  comparison (runc's "old behaviour"; libseccomp refuses the former).
  Rules whose action equals the default action are dropped, as runc does.
- `flags` absent means SPEC_ALLOW where supported (runc's default); listed
  flags the library or kernel lacks are an error naming the flag. An
  errnoRet/defaultErrnoRet on an action without an errno is an error
  (runtime-spec MUST; runc ignores it).
- The no_new_privs attribute is off: the runtime sets no_new_privs itself
  (process.noNewPrivileges), and without it loads the filter while it still
  has CAP_SYS_ADMIN (see init.py / setns.py).
- Not done: runc's patchbpf, which prepends a hand-assembled BPF stub
  returning ENOSYS for syscall numbers above the highest one the profile
  names (when the default action is not ALLOW/LOG/TRACE). Such syscalls get
  the profile's default action here.

Notify (SCMP_ACT_NOTIFY): the container process loads the filter, writes
the listener fd's number on the sync pipe and waits; the runtime copies the
fd out of it with pidfd_getfd(2) (runc >= 1.2 does the same), lets it go
on, and sends the ContainerProcessState JSON with the fd (SCM_RIGHTS, one
message, then close) on a connection to `listenerPath` it opened before
forking. Right after the load the process writes and reads its sync pipe,
so `write` cannot be NOTIFY (runc's rule too).
"""

import posix

from . import OCI_VERSION
from .errors import ConfigError, ContainerError, PyruncError

# spec action → (libseccomp value, takes an errno)
ACTIONS = {
    "SCMP_ACT_KILL": (0x00000000, False),  # = KILL_THREAD, as in seccomp.h and runc
    "SCMP_ACT_KILL_THREAD": (0x00000000, False),
    "SCMP_ACT_KILL_PROCESS": (0x80000000, False),
    "SCMP_ACT_TRAP": (0x00030000, False),
    "SCMP_ACT_ERRNO": (0x00050000, True),
    "SCMP_ACT_TRACE": (0x7FF00000, True),
    "SCMP_ACT_ALLOW": (0x7FFF0000, False),
    "SCMP_ACT_LOG": (0x7FFC0000, False),
    "SCMP_ACT_NOTIFY": (0x7FC00000, False),
}
OPERATORS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
             "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
# spec flag → libseccomp filter attribute (enum scmp_filter_attr)
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 4,  # SCMP_FLTATR_CTL_TSYNC
    "SECCOMP_FILTER_FLAG_LOG": 6,  # SCMP_FLTATR_CTL_LOG
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 7,  # SCMP_FLTATR_CTL_SSB
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 10,  # SCMP_FLTATR_CTL_WAITKILL (libseccomp >= 2.6)
}
# the spec's names; libseccomp's token is the lower-case suffix ("x86_64", "aarch64", ...)
ARCHS = ("SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64",
         "SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64", "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL",
         "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32", "SCMP_ARCH_PPC", "SCMP_ARCH_PPC64",
         "SCMP_ARCH_PPC64LE", "SCMP_ARCH_S390", "SCMP_ARCH_S390X", "SCMP_ARCH_PARISC",
         "SCMP_ARCH_PARISC64", "SCMP_ARCH_RISCV64", "SCMP_ARCH_LOONGARCH64", "SCMP_ARCH_M68K",
         "SCMP_ARCH_SH", "SCMP_ARCH_SHEB")
EPERM = 1
MAX_ARGS = 6  # a Linux syscall has at most six arguments
_EEXIST = 17

SECCOMP_FD_NAME = "seccompFd"


def _lib():
    from . import libseccomp
    return libseccomp.lib()


def preload():
    """Parent: import and dlopen everything the container process will use.

    The forked process cannot import or dlopen once it has pivoted (or
    joined the container's mount namespace)."""
    from . import libseccomp  # noqa: F401
    lib = _lib()
    lib.seccomp_api_get()  # libseccomp probes the kernel once and caches it
    return lib


def arch_token(name):
    return name[len("SCMP_ARCH_"):].lower().encode()


class Filter:
    """A built libseccomp context, ready for `load` in the container process."""

    __slots__ = ("ctx", "notify", "listener_path", "listener_metadata", "unknown", "_allowed")

    def __init__(self, ctx, notify, listener_path, listener_metadata, unknown, allowed=frozenset()):
        self.ctx = ctx
        self.notify = notify
        self.listener_path = listener_path
        self.listener_metadata = listener_metadata
        self.unknown = unknown
        self._allowed = allowed

    def allows(self, name):
        """Whether the filter lets syscall `name` through whatever its arguments:
        may the runtime still make that call once the filter is loaded?"""
        return name in self._allowed

    def load(self):
        """Container process: load the filter; the notify listener fd, or -1."""
        lib = _lib()
        rc = lib.seccomp_load(self.ctx)
        if rc < 0:
            raise ContainerError(f"error loading seccomp filter into kernel: {_strerror(-rc)}")
        if not self.notify:
            return -1
        fd = lib.seccomp_notify_fd(self.ctx)
        if fd < 0:
            raise ContainerError("error loading seccomp filter into kernel: no notify listener fd")
        return fd

    def release(self):
        if self.ctx:
            _lib().seccomp_release(self.ctx)
            self.ctx = None


def _strerror(err):
    from .linux import go_strerror
    return go_strerror(err)


def _action(name, errno_ret, where, errno_where):
    try:
        value, takes_errno = ACTIONS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"{where}: {name!r} is not a valid seccomp action") from None
    if errno_ret is not None and not takes_errno:
        # runtime-spec: "When the action doesn't support an errno, the runtime MUST print and error and fail."
        raise ConfigError(f"{errno_where}: {name} does not take an errno (only SCMP_ACT_ERRNO and SCMP_ACT_TRACE do)")
    if takes_errno:
        value |= (EPERM if errno_ret is None else errno_ret) & 0xFFFF
    return value


def _conditions(args, where):
    conds = []
    for j, a in enumerate(args or ()):
        w = f"{where}.args[{j}]"
        index = a.get("index")
        if not isinstance(index, int) or not 0 <= index < MAX_ARGS:
            raise ConfigError(f"{w}.index: {index!r} is out of range: a syscall has arguments 0 to {MAX_ARGS - 1}")
        op = OPERATORS.get(a.get("op"))
        if op is None:
            raise ConfigError(f"{w}.op: {a.get('op')!r} is not a valid seccomp operator")
        conds.append((index, op, a.get("value", 0), a.get("valueTwo", 0)))
    # runc: an index compared twice → one rule per comparison; otherwise one rule with all
    indexes = [c[0] for c in conds]
    if len(set(indexes)) != len(indexes):
        return [[c] for c in conds]
    return [conds]


_cache = {}


def prepare(sc, log, where="linux.seccomp", warn=True):
    """The Filter for a linux.seccomp dict, built once per dict; ConfigError on any problem."""
    hit = _cache.get(id(sc))
    if hit is not None and hit[0] is sc:
        return hit[1]
    f = _build(sc, log, where, warn)
    _cache[id(sc)] = (sc, f)
    return f


def _build(sc, log, where, warn):
    try:
        lib = preload()
    except OSError as e:
        raise ConfigError(f"{where}: seccomp is not available: {e.strerror or e}") from None
    from .libseccomp import arg_array
    version = lib.version_str()

    default = sc.get("defaultAction")
    def_act = _action(default, sc.get("defaultErrnoRet"), f"{where}.defaultAction", f"{where}.defaultErrnoRet")
    if default == "SCMP_ACT_NOTIFY":
        # the container process writes the listener fd to the runtime after the load (runc's rule)
        raise ConfigError(f"{where}.defaultAction: SCMP_ACT_NOTIFY cannot be used as default action")
    syscalls = sc.get("syscalls") or ()
    notify = any(s.get("action") == "SCMP_ACT_NOTIFY" for s in syscalls)
    listener = sc.get("listenerPath") or None
    metadata = sc.get("listenerMetadata") or None
    if metadata is not None and listener is None:
        raise ConfigError(f"{where}.listenerMetadata: must not be set without listenerPath")
    if notify:
        if listener is None:
            raise ConfigError(f"{where}.listenerPath: required when SCMP_ACT_NOTIFY is used")
        api = lib.seccomp_api_get()
        if api < 6:
            raise ConfigError(f"{where}: seccomp notify unsupported: API level {api}, want at least 6 "
                              f"(libseccomp >= 2.5.0 and Linux >= 5.7); libseccomp is {version}")

    ctx = lib.seccomp_init(def_act)
    if not ctx:
        raise ConfigError(f"{where}: error creating seccomp filter (libseccomp {version})")
    ok = False
    try:
        lib.seccomp_attr_set(ctx, 3, 0)  # SCMP_FLTATR_CTL_NNP off: no_new_privs is the runtime's job
        lib.seccomp_attr_set(ctx, 9, 1)  # SCMP_FLTATR_API_SYSRAWRC: real errnos from seccomp_load
        for i, name in enumerate(sc.get("architectures") or ()):
            if name not in ARCHS:
                raise ConfigError(f"{where}.architectures[{i}]: {name!r} is not a valid seccomp architecture")
            token = lib.seccomp_arch_resolve_name(arch_token(name))
            if not token:
                raise ConfigError(f"{where}.architectures[{i}]: {name} is not supported by libseccomp {version}")
            rc = lib.seccomp_arch_add(ctx, token)
            if rc < 0 and rc != -_EEXIST:  # the native arch is always there
                raise ConfigError(f"{where}.architectures[{i}]: adding {name}: {_strerror(-rc)}")
        flags = sc.get("flags")
        if flags is None:
            # runc's default: no Speculative Store Bypass mitigation forced on the container
            lib.seccomp_attr_set(ctx, FLAGS["SECCOMP_FILTER_FLAG_SPEC_ALLOW"], 1)
        for i, flag in enumerate(flags or ()):
            attr = FLAGS.get(flag)
            if attr is None:
                raise ConfigError(f"{where}.flags[{i}]: {flag!r} is not a valid seccomp flag")
            rc = lib.seccomp_attr_set(ctx, attr, 1)
            if rc < 0:
                raise ConfigError(f"{where}.flags[{i}]: {flag} is not supported by libseccomp {version} "
                                  f"on this kernel: {_strerror(-rc)}")
        # runc >= 1.2 asks for SCMP_FLTATR_CTL_OPTIMIZE=2 (a binary tree) above 32
        # syscalls; runc 1.1 and pyrunc keep libseccomp's default. The tree doubles
        # BPF generation in seccomp_load (~+20 ms per create/exec for a 5-arch Docker
        # profile here) while the kernel's action cache (Linux >= 5.11) already skips
        # the filter for the unconditionally allowed syscalls that make up such a
        # profile. The filter's decisions are the same either way.

        unknown = []
        for i, s in enumerate(syscalls):
            w = f"{where}.syscalls[{i}]"
            act = _action(s.get("action"), s.get("errnoRet"), f"{w}.action", f"{w}.errnoRet")
            rules = _conditions(s.get("args"), w)
            for k, name in enumerate(s.get("names") or ()):
                if not name:
                    raise ConfigError(f"{w}.names[{k}]: empty string is not a valid syscall")
                if name == "write" and s.get("action") == "SCMP_ACT_NOTIFY":
                    raise ConfigError(f"{w}: SCMP_ACT_NOTIFY cannot be used for the write syscall")
                if act == def_act:
                    continue  # redundant: libseccomp would refuse it (runc skips it silently)
                nr = lib.seccomp_syscall_resolve_name(name.encode())
                if nr == -1:  # __NR_SCMP_ERROR: unknown to this libseccomp
                    unknown.append(name)
                    continue
                for conds in rules:
                    arr = arg_array(conds)
                    rc = lib.seccomp_rule_add_array(ctx, act, nr, len(conds), arr)
                    if rc < 0:
                        raise ConfigError(f"{w}: error adding seccomp rule for syscall {name}: {_strerror(-rc)}")
        if unknown:
            uniq = list(dict.fromkeys(unknown))
            msg = (f"seccomp: {len(uniq)} syscall(s) unknown to libseccomp {version} ignored: "
                   + ", ".join(uniq))
            if warn:
                log.warn(msg)
            else:
                log.debug(msg)
        ok = True
        return Filter(ctx, notify, listener, metadata, tuple(unknown), _allowed(default, syscalls))
    finally:
        if not ok:
            lib.seccomp_release(ctx)


def _allowed(default, syscalls):
    """The syscalls of RUNTIME_CALLS a profile allows unconditionally: named
    only by SCMP_ACT_ALLOW rules without argument conditions, or by no rule
    under an SCMP_ACT_ALLOW default."""
    verdict = {}
    for s in syscalls:
        plain = s.get("action") == "SCMP_ACT_ALLOW" and not s.get("args")
        for name in s.get("names") or ():
            if name in RUNTIME_CALLS:
                verdict[name] = verdict.get(name, True) and plain
    return frozenset(n for n in RUNTIME_CALLS if verdict.get(n, default == "SCMP_ACT_ALLOW"))


# optional calls the init makes after the filter is loaded, only if allowed (Filter.allows)
RUNTIME_CALLS = ("ppoll",)


# --- the container process ----------------------------------------------------


def load(filt, chan, log=None):
    """Container process: load the filter; hand a notify listener fd to the runtime.

    After seccomp_load the process only writes and reads the sync pipe
    (and closes the fd) before going on.
    """
    if log is not None and log.debug_enabled:
        with log.step("seccomp: load filter"):
            fd = filt.load()
    else:
        fd = filt.load()
    if fd < 0:
        return
    chan.send({"type": "seccomp", "fd": fd})
    chan.expect("seccomp-done")
    posix.close(fd)


# --- the runtime: notify ------------------------------------------------------


class Agent:
    """The runtime's connection to the seccomp agent; close() is idempotent."""

    __slots__ = ("sock", "path")

    def __init__(self, sock, path):
        self.sock = sock
        self.path = path

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def connect(path):
    """A connected SOCK_STREAM socket (close-on-exec) to the seccomp agent at listenerPath."""
    from .sync import connect_unix
    try:
        return Agent(connect_unix(path), path)
    except OSError as e:
        raise PyruncError("failed to connect with seccomp agent specified in the seccomp profile: "
                          f"dial unix {path}: connect: {_strerror(e.errno)}") from None


def _pidfd_getfd(pid, fd):
    """A copy of fd `fd` of process `pid` (pidfd_getfd(2), Linux >= 5.6)."""
    from . import linux
    pidfd = linux.pidfd_open(pid)
    try:
        return linux.pidfd_getfd(pidfd, fd)
    except OSError as e:
        raise ContainerError(f"get seccomp fd {fd} from process {pid}: pidfd_getfd: {_strerror(e.errno)}") from None
    finally:
        posix.close(pidfd)


def process_state(pid, state):
    """The runtime-spec ContainerProcessState for the process `pid`."""
    return {"ociVersion": OCI_VERSION, "fds": [SECCOMP_FD_NAME], "pid": pid, "state": state}


def forward_listener(chan, msg, pid, agent, filt, state):
    """Runtime: the container process `pid` announced its listener fd in `msg`
    ({"type": "seccomp", "fd": N}); copy it, let the process go on, and send it
    with the ContainerProcessState to the agent (whose connection is closed here)."""
    import _socket
    from . import fastjson
    from .sync import pack_fds
    if not isinstance(msg.get("fd"), int):
        raise ContainerError(f"bad seccomp message from the container process: {msg!r}")
    fd = _pidfd_getfd(pid, msg["fd"])
    try:
        # we hold a copy: the process may go on (it waits for the agent if it hits a NOTIFY rule)
        chan.send({"type": "seccomp-done"})
        doc = process_state(pid, state)
        if filt.listener_metadata:
            doc["metadata"] = filt.listener_metadata
        data = fastjson.dumps(doc).encode()
        try:
            agent.sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, pack_fds([fd]))])
        except OSError as e:
            raise ContainerError(f"cannot send seccomp fd to {agent.path}: {_strerror(e.errno)}") from None
        finally:
            agent.close()  # one message per connection, then closed (runtime-spec)
    finally:
        posix.close(fd)


# --- features -----------------------------------------------------------------


def features():
    """linux.seccomp of the features document: what this host's libseccomp and kernel support."""
    lib = preload()
    api = lib.seccomp_api_get()
    actions = [a for a in ACTIONS
               if not (a in ("SCMP_ACT_LOG", "SCMP_ACT_KILL_PROCESS") and api < 3)
               and not (a == "SCMP_ACT_NOTIFY" and api < 6)]
    archs = [a for a in ARCHS if lib.seccomp_arch_resolve_name(arch_token(a))]
    supported = []
    ctx = lib.seccomp_init(ACTIONS["SCMP_ACT_ALLOW"][0])
    try:
        for flag, attr in FLAGS.items():
            if lib.seccomp_attr_set(ctx, attr, 1) == 0:
                supported.append(flag)
    finally:
        lib.seccomp_release(ctx)
    return {"enabled": True, "actions": sorted(actions), "operators": sorted(OPERATORS), "archs": sorted(archs),
            "knownFlags": list(FLAGS), "supportedFlags": supported}
