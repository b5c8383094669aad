"""The command line: runc's commands, flags, outputs and exit codes.

Parsing follows urfave/cli v1 as runc uses it: global flags before the
command; command flags anywhere among the arguments (`create ID --bundle B`
works) unless the command keeps its arguments verbatim; `-flag` and
`--flag`, `--flag value` and `--flag=value`; `--` ends flags.

argparse is not used: importing it costs ~6 ms and `pyrunc state` has a
budget of about 10 ms in total. Heavy modules are imported inside the
commands that need them, never at the top of this file.
"""

import posix
import sys

from . import OCI_VERSION, __version__
from .errors import PyruncError, UsageError
from .log import Log

NAME = "pyrunc"


class Flag:
    __slots__ = ("name", "aliases", "kind", "default", "help", "hidden")

    def __init__(self, name, kind="string", aliases=(), default=None, help="", hidden=False):
        self.name = name
        self.aliases = aliases
        self.kind = kind  # "bool", "string", "int", "list"
        self.default = default if default is not None else (False if kind == "bool" else
                                                           [] if kind == "list" else None)
        self.help = help
        self.hidden = hidden


GLOBAL_FLAGS = (
    Flag("debug", "bool", help="enable debug logging (each kernel-facing step with its duration)"),
    Flag("log", help="set the log file to write pyrunc logs to (default is '/dev/stderr')"),
    Flag("log-format", default="text", help="set the log format ('text' (default), or 'json')"),
    Flag("root", default="/run/pyrunc", help="root directory for storage of container state (this should be located in tmpfs)"),
    Flag("criu", default="criu", help="path to the criu binary used for checkpoint and restore"),
    Flag("systemd-cgroup", "bool", help='enable systemd cgroup support, expects cgroupsPath to be of form "slice:prefix:name"'),
    Flag("rootless", default="auto", help="ignore cgroup permission errors ('true', 'false', or 'auto')"),
    Flag("help", "bool", ("h",), help="show help"),
    Flag("version", "bool", ("v",), help="print the version"),
)

_CREATE_FLAGS = (
    Flag("bundle", aliases=("b",), help="path to the root of the bundle directory, defaults to the current directory"),
    Flag("console-socket", help="path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
    Flag("pid-file", help="specify the file to write the process id to"),
    Flag("no-pivot", "bool", help="do not use pivot root to jail process inside rootfs.  This should be used whenever the rootfs is on top of a ramdisk"),
    Flag("no-new-keyring", "bool", help="do not create a new session keyring for the container.  This will cause the container to inherit the calling processes session key"),
    Flag("preserve-fds", "int", default=0, help="Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"),
)


class Command:
    __slots__ = ("name", "usage", "summary", "flags", "min_args", "max_args", "fn", "reorder", "hidden")

    def __init__(self, name, usage, summary, flags, min_args, max_args, fn, reorder=True, hidden=False):
        self.name = name
        self.usage = usage
        self.summary = summary
        self.flags = flags
        self.min_args = min_args
        self.max_args = max_args
        self.fn = fn
        self.reorder = reorder
        self.hidden = hidden


def _find(flags, name):
    for f in flags:
        if f.name == name or name in f.aliases:
            return f
    return None


def parse_flags(flags, argv, reorder=True):
    """(values, positional) per urfave/cli v1 rules; UsageError on a bad flag."""
    values = {f.name: (list(f.default) if f.kind == "list" else f.default) for f in flags}
    pos = []
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            pos.extend(argv[i:])
            break
        if len(a) > 1 and a[0] == "-" and (reorder or not pos):
            body = a[2:] if a.startswith("--") else a[1:]
            name, eq, val = body.partition("=")
            f = _find(flags, name)
            if f is None:
                raise UsageError(f"flag provided but not defined: -{name}")
            if f.kind == "bool":
                if eq:
                    if val.lower() in ("1", "t", "true"):
                        values[f.name] = True
                    elif val.lower() in ("0", "f", "false"):
                        values[f.name] = False
                    else:
                        raise UsageError(f'invalid boolean value "{val}" for -{name}')
                else:
                    values[f.name] = True
                continue
            if not eq:
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: -{name}")
                val = argv[i]
                i += 1
            if f.kind == "int":
                try:
                    values[f.name] = int(val, 0)
                except ValueError:
                    raise UsageError(f'invalid value "{val}" for flag -{name}: parse error') from None
            elif f.kind == "list":
                values[f.name].append(val)
            else:
                values[f.name] = val
        else:
            pos.append(a)
            if not reorder:
                pos.extend(argv[i:])
                break
    return values, pos


# --- commands ---------------------------------------------------------------

def _create_opts(g, v, cid):
    from . import hostpath
    from .parent import CreateOptions, abs_bundle
    if v["preserve-fds"] < 0:
        raise UsageError("--preserve-fds must not be negative")
    return CreateOptions(root=g["root"], id=cid, bundle=abs_bundle(v["bundle"]), pid_file=v["pid-file"],
                         console_socket=v["console-socket"] and hostpath.abspath(v["console-socket"]),
                         no_pivot=v["no-pivot"], no_new_keyring=v["no-new-keyring"],
                         preserve_fds=v["preserve-fds"], listen_fds=_listen_fds(posix.environ),
                         systemd_cgroup=g["systemd-cgroup"], detach=v.get("detach", True))


def _listen_fds(env):
    """Socket-activation fds handed to us (sd_listen_fds): passed on like runc does.
    `env` is posix.environ (bytes: os.environ would cost an `import os`)."""
    try:
        n = int(env.get(b"LISTEN_FDS", b"0"))
        pid = int(env.get(b"LISTEN_PID", b"0"))
    except ValueError:
        return 0
    return n if n > 0 and pid == posix.getpid() else 0


def check_preserved_fds(n, log):
    """runc: every fd to pass on (3 .. 3+n-1) must be one the caller gave us.

    A hole would be filled by one of the runtime's own fds (the state
    directory, its lock, the exec fifo) and handed to the container.
    """
    ours = set(log.fds())
    for fd in range(3, 3 + n):
        try:
            posix.fstat(fd)
        except OSError:
            fd = None
        if fd is None or fd in ours:
            raise PyruncError(f"unable to stat preserved-fd {fd if fd is not None else '?'} (of {n})")


def _warm_up(g):
    """Only the systemd driver still has a running process moved into its
    cgroups (by systemd, which pays the grace period warm_up starts paying);
    the fs drivers let the init be born in them (cgroups.manager.Join)."""
    if not g["systemd-cgroup"]:
        return None
    from .cgroups import warm_up
    return warm_up()


def _preserved(v):
    return max(0, v["preserve-fds"]) + _listen_fds(posix.environ)


def cmd_create(g, v, args, log):
    check_preserved_fds(_preserved(v), log)
    warm = _warm_up(g)
    from . import parent
    parent.create(_create_opts(g, v, args[0]), log, warm)
    return 0


def cmd_run(g, v, args, log):
    check_preserved_fds(_preserved(v), log)
    warm = _warm_up(g)
    from . import container, parent, signals
    opts = _create_opts(g, v, args[0])
    created = parent.create(opts, log, warm)
    c = container.Container(created.dir, created.state)
    fwd = None if v["detach"] else signals.Forwarder()
    try:
        c.start(log)
        if fwd is None:
            c.close()
            return 0
        fwd.to(created.pid)
        if created.console is not None:
            from . import console
            code = console.proxy(created.console.receive(), created.pid, container.wait_exit)
        else:
            code = container.wait_exit(created.pid)
    except BaseException:
        # as runc's run: a container it failed to start or to follow goes (not with --keep)
        if fwd is not None:
            fwd.restore()
        if not v["keep"]:
            _force_destroy(c, log)
        raise
    fwd.restore()
    if not v["keep"]:
        c.destroy(log)
    else:
        c.close()
    return code


def _force_destroy(c, log):
    try:
        c.delete(True, log)
    except PyruncError as e:
        log.warn(f"cleanup after failed start: {e}")


def cmd_start(g, v, args, log):
    from . import container
    c = container.Container.load(g["root"], args[0])
    try:
        c.start(log, hold=True)
    finally:
        c.close()  # lets the program run
    return 0


def cmd_state(g, v, args, log):
    from . import container, fastjson
    c = container.Container.load(g["root"], args[0], lock=False)
    try:
        out = fastjson.dumps(c.oci_state(), indent=2)
    finally:
        c.close()
    posix.write(1, out.encode())
    return 0


def cmd_list(g, v, args, log):
    from . import container, fastjson
    items = container.list_containers(g["root"])
    fmt = v["format"]
    if v["quiet"]:
        sys.stdout.write("".join(i["id"] + "\n" for i in items))
    elif fmt == "table":
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(i["id"], str(i["pid"]), i["status"], i["bundle"], i["created"], i["owner"]) for i in items]
        sys.stdout.write(tabwrite(rows))
    elif fmt == "json":
        sys.stdout.write((fastjson.dumps(items) if items else "null") + "\n")
    else:
        raise PyruncError(f"invalid format option {fmt!r}".replace("'", '"'))
    return 0


def tabwrite(rows, minwidth=12, padding=3):
    """Go's text/tabwriter as runc configures it (minwidth 12, padding 3); last column free."""
    ncols = len(rows[0])
    widths = [max(minwidth, max(len(r[c]) for r in rows) + padding) for c in range(ncols - 1)]
    out = []
    for r in rows:
        out.append("".join(r[c].ljust(widths[c]) for c in range(ncols - 1)) + r[-1] + "\n")
    return "".join(out)


def cmd_kill(g, v, args, log):
    from . import container, signals
    sig = signals.parse(args[1]) if len(args) > 1 else signals.SIGTERM
    c = container.Container.load(g["root"], args[0], lock=False)
    try:
        c.signal(sig, v["all"])
    finally:
        c.close()
    return 0


def cmd_delete(g, v, args, log):
    from . import container
    from .errors import NotExistError
    try:
        c = container.Container.load(g["root"], args[0])
    except NotExistError:
        if v["force"]:
            return 0
        raise
    try:
        c.delete(v["force"], log)
    finally:
        c.close()
    return 0


def cmd_spec(g, v, args, log):
    import os
    from . import fastjson, specconv
    bundle = v["bundle"] or "."
    path = os.path.join(bundle, "config.json")
    if os.path.exists(path):
        raise PyruncError("File config.json exists. Remove it first")
    doc = specconv.example(rootless=v["rootless"])
    try:
        with open(path, "w") as f:
            f.write(fastjson.dumps(doc, indent=4))
    except OSError as e:
        raise PyruncError(f"write {path}: {e.strerror.lower()}") from None
    return 0


def _with_container(g, cid, fn, lock=True):
    from . import container
    c = container.Container.load(g["root"], cid, lock=lock)
    try:
        return fn(c)
    finally:
        c.close()


def cmd_exec(g, v, args, log):
    from . import hostpath, setns
    if not v["process"] and len(args) < 2:
        raise PyruncError("process args cannot be empty")  # runc 1.1.5's words
    check_preserved_fds(max(0, v["preserve-fds"]), log)
    opts = setns.ExecOptions(process_file=v["process"], args=args[1:], env=v["env"], cwd=v["cwd"],
                             user=v["user"], additional_gids=v["additional-gids"], caps=v["cap"],
                             no_new_privs=v["no-new-privs"], tty=v["tty"], detach=v["detach"],
                             pid_file=v["pid-file"], console_socket=v["console-socket"],
                             preserve_fds=v["preserve-fds"], cgroup=v["cgroup"],
                             ignore_paused=v["ignore-paused"], apparmor=v["apparmor"],
                             process_label=v["process-label"])
    if opts.console_socket:
        opts.console_socket = hostpath.abspath(opts.console_socket)
    return setns.exec_process(g["root"], args[0], opts, log)


def cmd_pause(g, v, args, log):
    _with_container(g, args[0], lambda c: c.pause())
    return 0


def cmd_resume(g, v, args, log):
    _with_container(g, args[0], lambda c: c.resume())
    return 0


def cmd_ps(g, v, args, log):
    from . import fastjson
    pids = _with_container(g, args[0], lambda c: c.pids(), lock=False)
    if v["format"] == "json":
        sys.stdout.write(fastjson.dumps(pids) + "\n")
        return 0
    if v["format"] != "table":
        raise PyruncError(f'invalid format option "{v["format"]}"')
    import subprocess
    ps_args = args[1:] or ["-ef"]
    try:
        out = subprocess.run(["ps", *ps_args], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise PyruncError(f"ps: {getattr(e, 'stderr', '') or e}".strip()) from None
    lines = out.splitlines()
    if not lines:
        return 0
    try:
        col = lines[0].split().index("PID")
    except ValueError:
        raise PyruncError("couldn't find PID field in ps output") from None
    keep = set(pids)
    sys.stdout.write(lines[0] + "\n")
    for line in lines[1:]:
        f = line.split()
        if len(f) > col and f[col].isdigit() and int(f[col]) in keep:
            sys.stdout.write(line + "\n")
    return 0


def ram_in_bytes(s):
    """docker/go-units RAMInBytes: "512m", "1g", "100" (binary multiples)."""
    t = s.strip().lower()
    for suffix in ("ib", "b"):
        if t.endswith(suffix) and len(t) > len(suffix) and not t[:-len(suffix)][-1:].isdigit():
            t = t[:-len(suffix)]
            break
    mult = 1
    if t and t[-1] in "kmgtp":
        mult = 1024 ** ("kmgtp".index(t[-1]) + 1)
        t = t[:-1]
    try:
        value = float(t)
    except ValueError:
        raise PyruncError(f"invalid size: '{s}'") from None
    if value < 0:
        raise PyruncError(f"invalid size: '{s}'")
    return int(value * mult)


def _update_resources(v):
    """runc update's flags as a runtime-spec LinuxResources dict (only what was given)."""
    r = {}

    def put(section, key, val):
        r.setdefault(section, {})[key] = val

    def num(flag, cast=int):
        val = v.get(flag)
        if val in (None, ""):
            return None
        try:
            return cast(val)
        except (ValueError, PyruncError) as e:
            raise PyruncError(f"invalid value for {flag}: {val}") from e

    for flag, sec, key in (("cpu-period", "cpu", "period"), ("cpu-rt-period", "cpu", "realtimePeriod"),
                           ("cpu-share", "cpu", "shares"), ("cpu-shares", "cpu", "shares"),
                           ("cpu-quota", "cpu", "quota"), ("cpu-rt-runtime", "cpu", "realtimeRuntime"),
                           ("cpu-burst", "cpu", "burst"), ("blkio-weight", "blockIO", "weight")):
        n = num(flag)
        if n:
            put(sec, key, n)
    for flag, key in (("cpuset-cpus", "cpus"), ("cpuset-mems", "mems")):
        if v.get(flag):
            put("cpu", key, v[flag])
    for flag, key in (("memory", "limit"), ("memory-swap", "swap"), ("memory-reservation", "reservation")):
        val = v.get(flag)
        if val:
            put("memory", key, -1 if val.strip() == "-1" else ram_in_bytes(val))
    n = num("pids-limit")
    if n:
        put("pids", "limit", n)
    return r


def cmd_update(g, v, args, log):
    from . import fastjson, schemacheck
    src = v["resources"]
    if src:
        try:
            data = sys.stdin.buffer.read() if src == "-" else open(src, "rb").read()
        except OSError as e:
            raise PyruncError(f"open {src}: {e.strerror.lower()}") from None
        try:
            r = fastjson.loads(data)
        except ValueError as e:
            raise PyruncError(f"invalid resources JSON: {e}") from None
    else:
        r = _update_resources(v)
    if not isinstance(r, dict):
        raise PyruncError("resources must be a JSON object")
    schemacheck.validate(r, "config-schema.json#/definitions/LinuxResources", "resources")
    _with_container(g, args[0], lambda c: c.update(r, log))
    return 0


def _duration(s):
    """Go's time.ParseDuration for the forms runc's users pass ("5s", "100ms", "1m30s")."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    total, num, i = 0.0, "", 0
    while i < len(s):
        ch = s[i]
        if ch.isdigit() or ch == ".":
            num += ch
            i += 1
            continue
        unit = next((u for u in ("ns", "us", "µs", "ms", "s", "m", "h") if s.startswith(u, i)), None)
        if unit is None or not num:
            raise PyruncError(f'time: invalid duration "{s}"')
        total += float(num) * units[unit]
        num = ""
        i += len(unit)
    if num:
        raise PyruncError(f'time: missing unit in duration "{s}"')
    return total


def cmd_events(g, v, args, log):
    import time
    from . import container, fastjson, state
    cid = args[0]
    c = container.Container.load(g["root"], cid, lock=False)
    try:
        if v["stats"]:
            data = c.stats()
            sys.stdout.write(fastjson.dumps({"type": "stats", "id": cid, "data": data}) + "\n")
            return 0
        interval = _duration(v["interval"])
        if interval <= 0:
            raise PyruncError("duration interval must be greater than 0")
        cgm = c._need_cgroup()
        ooms = cgm.oom_kills()
        from . import stay
        stay()
        next_stats = time.monotonic()
        while c.status() != state.STOPPED:
            n = cgm.oom_kills()
            if n > ooms:
                sys.stdout.write(fastjson.dumps({"type": "oom", "id": cid}) + "\n")
                sys.stdout.flush()
                ooms = n
            if time.monotonic() >= next_stats:
                sys.stdout.write(fastjson.dumps({"type": "stats", "id": cid, "data": cgm.stats()}) + "\n")
                sys.stdout.flush()
                next_stats += interval
            time.sleep(min(0.1, interval))
        return 0
    finally:
        c.close()


def cmd_help(g, v, args, log):
    if args:
        cmd = COMMANDS.get(args[0])
        if cmd is None:
            sys.stderr.write(f"No help topic for '{args[0]}'\n")
            return 3
        sys.stdout.write(command_help(cmd))
    else:
        sys.stdout.write(app_help())
    return 0


_ID = "<container-id>"
COMMANDS = {c.name: c for c in (
    Command("create", f"[command options] {_ID}", "create a container", _CREATE_FLAGS, 1, 1, cmd_create),
    Command("run", f"[command options] {_ID}", "create and run a container", _CREATE_FLAGS + (
        Flag("detach", "bool", ("d",), help="detach from the container's process"),
        Flag("keep", "bool", help="do not delete the container after it exits"),
        Flag("no-subreaper", "bool", help="disable the use of the subreaper used to reap reparented processes"),
    ), 1, 1, cmd_run),
    Command("start", _ID, "executes the user defined process in a created container", (), 1, 1, cmd_start),
    Command("state", _ID, "output the state of a container", (), 1, 1, cmd_state),
    Command("list", "[command options]", "lists containers started by pyrunc with the given root", (
        Flag("format", aliases=("f",), default="table", help="select one of: table or json (default: \"table\")"),
        Flag("quiet", "bool", ("q",), help="display only container IDs"),
    ), 0, 0, cmd_list),
    Command("kill", f"[command options] {_ID} [signal]",
            "kill sends the specified signal (default: SIGTERM) to the container's init process", (
        Flag("all", "bool", ("a",), help="send the specified signal to all processes inside the container", hidden=True),
    ), 1, 2, cmd_kill),
    Command("delete", f"[command options] {_ID}",
            "delete any resources held by the container often used with detached container", (
        Flag("force", "bool", ("f",), help="Forcibly deletes the container if it is still running (uses SIGKILL)"),
    ), 1, 1, cmd_delete),
    Command("spec", "[command options]", "create a new specification file", (
        Flag("bundle", aliases=("b",), help="path to the root of the bundle directory"),
        Flag("rootless", "bool", help="generate a configuration for a rootless container"),
    ), 0, 0, cmd_spec),
    Command("help", "[command]", "Shows a list of commands or help for one command", (), 0, 1, cmd_help),
)}
COMMANDS["h"] = COMMANDS["help"]
_UPDATE_FLAGS = (
    Flag("resources", aliases=("r",), help="path to the file containing the resources to update or '-' to read from the standard input"),
    Flag("blkio-weight", help="Specifies per cgroup weight, range is from 10 to 1000"),
    Flag("cpu-period", help="CPU CFS period to be used for hardcapping (in usecs). 0 to use system default"),
    Flag("cpu-quota", help="CPU CFS hardcap limit (in usecs). Allowed cpu time in a given period"),
    Flag("cpu-burst", help="CPU CFS hardcap burst limit (in usecs). Allowed accumulated cpu time additionally for burst a given period"),
    Flag("cpu-share", aliases=("cpu-shares",), help="CPU shares (relative weight vs. other containers)"),
    Flag("cpu-rt-period", help="CPU realtime period to be used for hardcapping (in usecs). 0 to use system default"),
    Flag("cpu-rt-runtime", help="CPU realtime hardcap limit (in usecs). Allowed cpu time in a given period"),
    Flag("cpuset-cpus", help="CPU(s) to use"),
    Flag("cpuset-mems", help="Memory node(s) to use"),
    Flag("memory", help="Memory limit (in bytes)"),
    Flag("memory-reservation", help="Memory reservation or soft_limit (in bytes)"),
    Flag("memory-swap", help="Total memory usage (memory + swap); set '-1' to enable unlimited swap"),
    Flag("pids-limit", help="Maximum number of pids allowed in the container"),
)
for _cmd in (
    Command("pause", _ID, "pause suspends all processes inside the container", (), 1, 1, cmd_pause),
    Command("resume", _ID, "resumes all processes that have been previously paused", (), 1, 1, cmd_resume),
    Command("ps", f"[command options] {_ID} [ps options]", "ps displays the processes running inside a container", (
        Flag("format", aliases=("f",), default="table", help='select one of: table or json (default: "table")'),
    ), 1, 1 << 30, cmd_ps, reorder=False),
    Command("update", f"[command options] {_ID}", "update container resource constraints", _UPDATE_FLAGS, 1, 1, cmd_update),
    Command("events", f"[command options] {_ID}",
            "display container events such as OOM notifications, cpu, memory, and IO usage statistics", (
        Flag("interval", default="5s", help="set the stats collection interval"),
        Flag("stats", "bool", help="display the container's stats then exit"),
    ), 1, 1, cmd_events),
):
    COMMANDS[_cmd.name] = _cmd
COMMANDS["exec"] = Command(
    "exec", f"[command options] {_ID} <command> [command options]  || -p process.json {_ID}",
    "execute new process inside the container", (
        Flag("console-socket", help="path to an AF_UNIX socket which will receive a file descriptor referencing the master end of the console's pseudoterminal"),
        Flag("cwd", help="current working directory in the container"),
        Flag("env", "list", ("e",), help="set environment variables"),
        Flag("tty", "bool", ("t",), help="allocate a pseudo-TTY"),
        Flag("user", aliases=("u",), help="UID (format: <uid>[:<gid>])"),
        Flag("additional-gids", "list", ("g",), help="additional gids"),
        Flag("process", aliases=("p",), help="path to the process.json"),
        Flag("detach", "bool", ("d",), help="detach from the container's process"),
        Flag("pid-file", help="specify the file to write the process id to"),
        Flag("process-label", help="set the asm process label for the process commonly used with selinux"),
        Flag("apparmor", help="set the apparmor profile for the process"),
        Flag("no-new-privs", "bool", help="set the no new privileges value for the process"),
        Flag("cap", "list", ("c",), help="add a capability to the bounding set for the process"),
        Flag("preserve-fds", "int", default=0, help="Pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N in total)"),
        Flag("cgroup", help="run the process in an (existing) sub-cgroup(s). Format is [<controller>:]<cgroup>."),
        Flag("ignore-paused", "bool", help="allow exec in a paused container"),
    ), 1, 1 << 30, cmd_exec, reorder=False)
def cmd_features(g, v, args, log):
    from . import fastjson, features
    sys.stdout.write(fastjson.dumps(features.document(), indent=4) + "\n")
    return 0


COMMANDS["features"] = Command("features", "", "show the enabled features", (), 0, 0, cmd_features)


def version_text():
    lines = [f"{NAME} version {__version__}", f"commit: v{__version__}", f"spec: {OCI_VERSION}",
             f"python: {sys.version.split()[0]}"]
    return "\n".join(lines) + "\n"


def _flag_help(flags):
    out = []
    for f in flags:
        if f.hidden:
            continue
        names = ", ".join([f"--{f.name}"] + [("-" if len(a) == 1 else "--") + a for a in f.aliases])
        if f.kind != "bool":
            names = ", ".join(n + " value" for n in names.split(", "))
        out.append(f"   {names:<26}{f.help}\n")
    return "".join(out)


def command_help(cmd):
    opts = _flag_help(cmd.flags)
    return (f"NAME:\n   {NAME} {cmd.name} - {cmd.summary}\n\nUSAGE:\n   {NAME} {cmd.name} {cmd.usage}\n"
            + (f"\nOPTIONS:\n{opts}" if opts else ""))


def app_help():
    cmds = "".join(f"   {c.name:<10}  {c.summary}\n" for n, c in COMMANDS.items() if n == c.name and not c.hidden)
    return (f"NAME:\n   {NAME} - Open Container Initiative runtime\n\n"
            f"USAGE:\n   {NAME} [global options] command [command options] [arguments...]\n\n"
            f"VERSION:\n   {version_text().split(' version ', 1)[1]}\n"
            f"COMMANDS:\n{cmds}\nGLOBAL OPTIONS:\n{_flag_help(GLOBAL_FLAGS)}")


_PREFIXED = {"create": "create failed", "run": "run failed", "exec": "exec failed"}


def _prefixed(name, msg):
    """runc's wording: "runc create failed: …", "exec failed: unable to start container process: …"."""
    if name == "exec":
        return f"exec failed: {msg}"
    if name in _PREFIXED:
        return f"{NAME} {_PREFIXED[name]}: {msg}"
    return msg


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    log = None
    try:
        g, rest = parse_flags(GLOBAL_FLAGS, argv, reorder=False)
    except UsageError as e:
        sys.stdout.write("Incorrect Usage. " + str(e) + "\n\n" + app_help())
        Log().fatal(str(e))
        return 1
    try:
        log = Log(g["log"], g["log-format"], g["debug"])
    except (OSError, ValueError) as e:
        sys.stderr.write(f"{NAME}: {e}\n")
        return 1
    try:
        if g["version"]:
            sys.stdout.write(version_text())
            return 0
        if not rest or g["help"]:
            sys.stdout.write(app_help())
            return 0
        name, cargv = rest[0], rest[1:]
        cmd = COMMANDS.get(name)
        if cmd is None:
            log.fatal(f"No help topic for '{name}'")
            return 3
        try:
            v, args = parse_flags(cmd.flags + (Flag("help", "bool", ("h",)),), cargv, cmd.reorder)
        except UsageError as e:
            sys.stdout.write("Incorrect Usage: " + str(e) + "\n\n" + command_help(cmd))
            log.fatal(str(e))
            return 1
        if v.get("help"):
            sys.stdout.write(command_help(cmd))
            return 0
        if len(args) < cmd.min_args or len(args) > cmd.max_args:
            sys.stdout.write("Incorrect Usage.\n\n" + command_help(cmd))
            if cmd.min_args == cmd.max_args:
                need = f"exactly {cmd.min_args} argument(s)"
            elif len(args) < cmd.min_args:
                need = f"a minimum of {cmd.min_args} argument(s)"
            else:
                need = f"a maximum of {cmd.max_args} argument(s)"
            log.fatal(f'{NAME}: "{name}" requires {need}')
            return 1
        try:
            return cmd.fn(g, v, args, log)
        except PyruncError as e:
            msg = _prefixed(name, str(e))
            log.fatal(msg)
            return 255 if name == "exec" else e.exit_code
        except OSError as e:
            # an expected environment failure without a better message
            from .linux import go_strerror
            what = f"{e.filename}: " if getattr(e, "filename", None) else ""
            text = str(e) if hasattr(e, "what") else f"{what}{go_strerror(e.errno) if e.errno else e}"
            msg = _prefixed(name, text)
            log.fatal(msg)
            return 255 if name == "exec" else 1
    finally:
        if log is not None:
            log.close()


def run(argv=None):
    """Entry point of the launcher: main(), then exit without interpreter teardown.

    Module and object teardown costs ~0.8 ms and frees nothing the kernel
    would not; every file the runtime writes is closed explicitly by then.
    """
    try:
        code = main(argv)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    posix._exit(code if isinstance(code, int) else 1)
