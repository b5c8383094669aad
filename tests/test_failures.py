"""Bad input, tested as carefully as the happy path: every failure is one
clear error line, and leaves nothing behind.

For every failing `create` this file checks: the exit status, exactly one
error line on stderr (no traceback), the last line of `--log F
--log-format json` is `{"level": "error", "msg": ...}` with the same
message, and afterwards nothing is left: no entry for the ID under --root
(no state dir, no exec.fifo, no `.new-*` temp dir), no process of the
container, no host mount under the bundle or the test dirs, no pid file.
Some failures happen before the fork (validation), some inside the init
after it (mounts, hooks, signals to the runtime): both must clean up.
"""

import copy
import itertools
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from support import mounts_under, wait_exec

HOST_PIDNS = os.readlink("/proc/self/ns/pid")
_seq = itertools.count()


def marker():
    """A unique `sleep` argument: finds this test's container process by its cmdline."""
    return str(random.randint(1_000_000, 9_999_999))


# --- process, state and mount scans ------------------------------------------

def _live_procs():
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                st = f.read()
            if st[st.rfind(b")") + 2:st.rfind(b")") + 3] in (b"Z", b"X", b"x"):
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue

        def link(n, pid=pid):
            try:
                return os.readlink(f"/proc/{pid}/{n}")
            except OSError:
                return ""
        yield pid, cmd, link("root"), link("cwd"), link("ns/pid")


def _under(path, prefix):
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def container_processes(paths, markers=(), exclude=()):
    """Live processes of a container of these bundles/roots: root or cwd inside
    one of `paths`, a cmdline naming one (the forked init is a copy of `pyrunc
    create`), or another PID namespace and a cmdline with one of `markers`."""
    me = os.getpid()
    paths = [str(p) for p in paths]
    out = []
    for pid, cmd, root, cwd, pidns in _live_procs():
        if pid == me or pid in exclude:
            continue
        inside = any(_under(root, p) or _under(cwd, p) or p in cmd for p in paths)
        foreign = pidns != HOST_PIDNS and any(m in cmd for m in markers)
        if inside or foreign:
            out.append((pid, cmd))
    return out


def wait_no_processes(paths, markers=(), exclude=(), timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        procs = container_processes(paths, markers, exclude)
        if not procs or time.monotonic() > deadline:
            return procs
        time.sleep(0.02)


def assert_nothing_left(rt, cid, bundles, markers=(), pid_file=None, keep=(), extra_paths=()):
    """No container process, no state, no temp dir, no mount, no pid file.
    `keep`: IDs that are expected to remain under --root (other containers)."""
    bundles = [bundles] if isinstance(bundles, (str, os.PathLike)) else list(bundles)
    paths = [*map(str, bundles), rt.root, *map(str, extra_paths)]
    # the inits of the containers that stay (a waiting init is a copy of `pyrunc create`)
    kept_pids = [json.loads(Path(rt.root, k, "state.json").read_text())["pid"] for k in keep]
    procs = wait_no_processes(paths, markers, exclude=kept_pids)
    assert not procs, f"container processes left behind: {procs}"
    entries = sorted(os.listdir(rt.root)) if os.path.isdir(rt.root) else []
    assert entries == sorted(keep), f"--root holds {entries}"
    if cid and cid not in (".", "..") and cid not in keep and len(cid) < 256:
        assert not os.path.lexists(os.path.join(rt.root, cid))
    for dirpath, _, files in os.walk(rt.root):
        assert "exec.fifo" not in files or os.path.basename(dirpath) in keep, dirpath
    for p in paths + [str(rt.workdir)]:
        assert mounts_under(p) == [], f"mounts left under {p}: {mounts_under(p)}"
    if pid_file is not None:
        pid_file = Path(pid_file)
        assert not pid_file.exists(), "pid file written by a failed create"
        assert not (pid_file.parent / ("." + pid_file.name)).exists(), "pid file temp left"


# --- error reporting ---------------------------------------------------------

def check_error(p, log_path, match=None, code=1):
    """Exit status, exactly one error line on stderr, the same msg as the last
    JSON line of the log."""
    assert p.returncode == code, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), f"want one error line, got: {p.stderr!r}"
    text = Path(log_path).read_text()
    assert "Traceback" not in text
    last = json.loads(text.splitlines()[-1])
    assert isinstance(last, dict), last
    assert last["level"] == "error", last
    assert isinstance(last["msg"], str) and last["msg"].strip(), last
    assert last["msg"] == lines[0], (last["msg"], lines[0])
    if match:
        assert re.search(match, last["msg"], re.I), f"{match!r} not in {last['msg']!r}"
    return last["msg"]


def check_text_error(p, match=None, code=1):
    """Without --log: one logrus text line on stderr."""
    assert p.returncode == code, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1, f"want one error line, got: {p.stderr!r}"
    assert re.match(r'time="[^"]+" level=error msg=', lines[0]), lines[0]
    if match:
        assert re.search(match, lines[0], re.I), f"{match!r} not in {lines[0]!r}"
    return lines[0]


def json_log_args(rt):
    log = rt.workdir / f"log-{next(_seq)}.json"
    return log, ("--log", str(log), "--log-format", "json")


def create_fails(rt, cid, bundle, *flags, match=None, code=1):
    """`create` that must fail: checks the error report; returns the message."""
    log, gargs = json_log_args(rt)
    n = next(_seq)
    p = rt.create(cid, bundle, *flags, check=False, global_args=gargs, out=rt.workdir / f"c{n}.out",
                  timeout=30)
    msg = check_error(p, log, match, code)
    assert Path(p.output_path).read_bytes() == b"", "a failed create's container wrote output"
    return msg


# --- fixtures ----------------------------------------------------------------

def _kill_pid(pid, must_contain=None):
    """SIGKILL one process we started (checked by cmdline against PID reuse)."""
    try:
        if must_contain is not None:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if must_contain.encode() not in f.read():
                    return
        os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass


@pytest.fixture
def rt(runtime):
    """`runtime`, plus: whatever a pyrunc bug leaves under --root (temp dirs,
    debris, processes naming the root) is removed before the fixture's own
    check, so a bug fails its test once instead of erroring the teardown."""
    yield runtime
    for pid, cmd in container_processes([runtime.root]):
        _kill_pid(pid, runtime.root)
    for cid in runtime.ids():
        runtime("delete", "--force", cid, timeout=30)
    if os.path.isdir(runtime.root):
        for name in os.listdir(runtime.root):
            p = os.path.join(runtime.root, name)
            if name.startswith(".") or not os.path.exists(os.path.join(p, "state.json")):
                shutil.rmtree(p, ignore_errors=True)


@pytest.fixture
def bad(rt, make_bundle):
    """A valid bundle running `sleep <marker>`, to be broken by the test."""
    m = marker()
    b = make_bundle(["sleep", m])
    b.marker = m
    return b


# --- config.json -------------------------------------------------------------

def _pop(path):
    def f(c):
        d = c
        for k in path[:-1]:
            d = d[k]
        del d[path[-1]]
    return f


def _set(path, value):
    def f(c):
        d = c
        for k in path[:-1]:
            d = d[k]
        d[path[-1]] = value
    return f


RAW_CONFIGS = {
    "missing": (None, "config.json not found"),
    "empty": ("", "invalid JSON"),
    "truncated": ('{"ociVersion": "1.3.0", "root": {', "invalid JSON"),
    "trailing-garbage": ('{"ociVersion": "1.3.0"} x', "invalid JSON"),
    "not-utf8": (b'{"ociVersion": "\xff\xfe"}', "config.json"),
    "array": ("[]", "JSON object"),
    "string": ('"config"', "JSON object"),
    "null": ("null", "JSON object"),
}


@pytest.mark.parametrize("case", RAW_CONFIGS, ids=list(RAW_CONFIGS))
def test_unreadable_config(rt, bad, case):
    raw, match = RAW_CONFIGS[case]
    cfg = bad.path / "config.json"
    if raw is None:
        cfg.unlink()
    else:
        cfg.write_bytes(raw if isinstance(raw, bytes) else raw.encode())
    create_fails(rt, "c", bad, match=match)
    assert_nothing_left(rt, "c", bad, [bad.marker])


INVALID_CONFIGS = {
    "ociVersion-missing": (_pop(["ociVersion"]), "ociVersion"),
    "ociVersion-invalid": (_set(["ociVersion"], "invalid"), "ociVersion"),
    "args-not-array": (_set(["process", "args"], "sleep 1"), r"process\.args"),
    "args-not-strings": (_set(["process", "args"], ["sleep", 1]), r"process\.args"),
    "namespace-foo": (lambda c: c["linux"]["namespaces"].append({"type": "foo"}), "namespaces"),
    "mount-no-destination": (lambda c: c["mounts"].append({"type": "tmpfs", "source": "tmpfs"}),
                             "destination"),
    "uid-negative": (_set(["process", "user", "uid"], -1), "uid"),
    "gid-too-big": (_set(["process", "user", "gid"], 1 << 32), "gid"),
    "rlimit-hard-string": (_set(["process", "rlimits", 0, "hard"], "1024"), "hard"),
    "root-missing": (_pop(["root"]), "root"),
    "process-missing": (_pop(["process"]), "process"),
    "args-empty": (_set(["process", "args"], []), "args"),
    "cwd-relative": (_set(["process", "cwd"], "tmp"), "cwd"),
    "rlimit-soft-above-hard": (_set(["process", "rlimits", 0], {"type": "RLIMIT_NOFILE", "soft": 2048,
                                                               "hard": 1024}), "soft"),
    "hook-path-relative": (_set(["hooks"], {"prestart": [{"path": "bin/true"}]}), "hook"),
}


@pytest.mark.parametrize("case", INVALID_CONFIGS, ids=list(INVALID_CONFIGS))
def test_invalid_config(rt, bad, case):
    mutate, match = INVALID_CONFIGS[case]
    cfg = copy.deepcopy(bad.config)
    mutate(cfg)
    bad.write(cfg)
    pid_file = rt.workdir / "pid"
    create_fails(rt, "c", bad, "--pid-file", pid_file, match=match)
    assert_nothing_left(rt, "c", bad, [bad.marker], pid_file=pid_file)


# Unknown properties: runtimes MAY log them but MUST otherwise ignore them,
# whatever their value (config.md "Extensibility").
UNKNOWN_PROPERTIES = {
    "top-string": (["xTop"], "x"),
    "top-object": (["xTop"], {"a": [1, {"b": None}], "c": True}),
    "process-array": (["process", "xProcess"], [1, "two", 3.5]),
    "user-negative": (["process", "user", "xUser"], -1),
    "root-bool": (["root", "xRoot"], False),
    "mount-string": (["mounts", 1, "xMount"], "nonsense"),
    "namespace-object": (["linux", "namespaces", 0, "xNamespace"], {"type": "foo"}),
    "linux-null": (["linux", "xLinux"], None),
    "unknown-hook-kind": (["hooks"], {"xHookKind": [{"path": "/bin/false"}]}),
}


@pytest.mark.parametrize("case", UNKNOWN_PROPERTIES, ids=list(UNKNOWN_PROPERTIES))
def test_unknown_properties_are_ignored(rt, make_bundle, case):
    path, value = UNKNOWN_PROPERTIES[case]
    b = make_bundle(["sh", "-c", "echo ran"])
    cfg = copy.deepcopy(b.config)
    _set(path, value)(cfg)
    b.write(cfg)
    p = rt("run", "--bundle", b, "u")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "ran\n"
    assert "Traceback" not in p.stderr
    assert rt.ids() == []


def test_annotations_round_trip(rt, make_bundle):
    ann = {"org.opencontainers.image.ref.name": "x", "com.example.empty": "",
           "com.example.unicode": "é ✓ \"quoted\" \\ back", "com.example.json": '{"a": [1]}',
           "x": "y" * 2000}
    b = make_bundle(["sleep", marker()], annotations=ann)
    rt.create("ann", b)
    try:
        assert rt.state("ann")["annotations"] == ann
        items = json.loads(rt("list", "--format", "json").stdout)
        assert items[0]["annotations"] == ann
    finally:
        rt("delete", "--force", "ann")


# --- bundle and rootfs -------------------------------------------------------

def _rootfs_missing(b):
    shutil.rmtree(b.rootfs)


def _rootfs_file(b):
    shutil.rmtree(b.rootfs)
    b.rootfs.write_text("not a directory\n")


def _rootfs_symlink(b):
    real = b.path / "real-rootfs"
    b.rootfs.rename(real)
    b.rootfs.symlink_to(real)


ROOTFS_CASES = {
    "missing": (_rootfs_missing, "rootfs.*no such file or directory"),
    "file": (_rootfs_file, "not a directory"),
    "symlink": (_rootfs_symlink, "symlink"),
}


@pytest.mark.parametrize("case", ROOTFS_CASES, ids=list(ROOTFS_CASES))
def test_bad_rootfs(rt, bad, case):
    breaker, match = ROOTFS_CASES[case]
    breaker(bad)
    create_fails(rt, "c", bad, match=match)
    assert_nothing_left(rt, "c", bad, [bad.marker])


@pytest.mark.parametrize("name,target", [("proc", "/"), ("proc", "/proc"), ("sys", "/"),
                                         ("sys", "/sys/kernel")])
def test_proc_or_sys_symlink_in_image(rt, bad, name, target):
    d = bad.rootfs / name
    d.rmdir()
    d.symlink_to(target)
    create_fails(rt, "c", bad, match=f"/{name}")
    assert_nothing_left(rt, "c", bad, [bad.marker])
    assert os.path.islink(d) and os.readlink(d) == target
    assert os.path.isdir("/proc/self") and os.path.isdir("/sys/kernel")


def test_relative_mount_destination_is_relative_to_root(rt, make_bundle):
    b = make_bundle(["sh", "-c", "grep -q ' /tmp tmpfs ' /proc/mounts && echo mounted"])
    b.config["mounts"].append({"destination": "tmp", "type": "tmpfs", "source": "tmpfs"})
    b.write()
    # runtime-spec v1.3 config.md: a relative destination MAY be used, relative to "/"
    p = rt("run", "--bundle", b, "rel")
    assert (p.returncode, p.stdout) == (0, "mounted\n"), p.stderr
    assert "Traceback" not in p.stderr
    assert rt.ids() == []


# The first fails in validation; the other three inside the init, after the
# fork, with namespaces made and earlier mounts done.
MOUNT_CASES = {
    "inside-proc": ({"destination": "/proc/foo", "type": "tmpfs", "source": "tmpfs"}, "inside /proc"),
    "bind-source-missing": ({"destination": "/mnt", "type": "bind", "source": "/nonexistent-pyrunc-src",
                             "options": ["rbind"]}, "no such file or directory"),
    "type-unknown": ({"destination": "/mnt", "type": "nosuchfs", "source": "none"}, "nosuchfs|no such device"),
    "tmpfs-bad-option": ({"destination": "/mnt", "type": "tmpfs", "source": "tmpfs",
                          "options": ["mode=zzz"]}, "mode|invalid argument"),
}


@pytest.mark.parametrize("case", MOUNT_CASES, ids=list(MOUNT_CASES))
def test_bad_mount(rt, bad, case):
    mount, match = MOUNT_CASES[case]
    bad.config["mounts"].append(mount)
    bad.write()
    pid_file = rt.workdir / "pid"
    msg = create_fails(rt, "c", bad, "--pid-file", pid_file, match=match)
    assert "/mnt" in msg or "/proc/foo" in msg, msg  # names the mount
    assert_nothing_left(rt, "c", bad, [bad.marker], pid_file=pid_file)


# --- container IDs -----------------------------------------------------------

BAD_IDS = {
    "dotdot-slash": "../x",
    "slash": "a/b",
    "empty": "",
    "dot": ".",
    "dotdot": "..",
    "too-long-1025": "i" * 1025,
    "tab": "a\tb",
    "newline": "a\nb",
    "escape": "a\x1b[31mb",
    "space": "a b",
}


@pytest.mark.parametrize("case", BAD_IDS, ids=list(BAD_IDS))
def test_invalid_container_id(rt, bad, case):
    cid = BAD_IDS[case]
    create_fails(rt, cid, bad, match="container id")
    assert_nothing_left(rt, cid, bad, [bad.marker])
    assert not os.path.lexists(os.path.join(os.path.dirname(rt.root), "x"))


@pytest.mark.parametrize("cmd", ["state", "delete"])
def test_invalid_id_on_other_commands(rt, cmd):
    log, gargs = json_log_args(rt)
    p = rt(cmd, "../x", global_args=gargs)
    check_error(p, log, "container id")


def test_longest_valid_id_works(rt, make_bundle):
    cid = "L" * 1024
    b = make_bundle(["sleep", marker()])
    p = rt.create(cid, b, check=False, out=rt.workdir / "long.out")
    try:
        assert not [e for e in os.listdir(rt.root) if e.startswith(".new-")], "temp dir left"
        assert p.returncode == 0, p.stderr
        assert rt.state(cid)["id"] == cid
        assert rt("list", "-q").stdout == cid + "\n"
        assert rt("delete", "--force", cid).returncode == 0
        assert rt.ids() == []
    finally:
        rt("delete", "--force", cid)


@pytest.mark.parametrize("first_status", ["created", "running"])
def test_duplicate_id_leaves_first_container_intact(rt, make_bundle, first_status):
    m1, m2 = marker(), marker()
    b1, b2 = make_bundle(["sleep", m1]), make_bundle(["sleep", m2])
    rt.create("dup", b1)
    if first_status == "running":
        rt("start", "dup", check=True)
    before = rt.state("dup")
    pid_file = rt.workdir / "dup.pid"
    create_fails(rt, "dup", b2, "--pid-file", pid_file, match="container with id exists: dup")
    assert_nothing_left(rt, "dup", b2, [m2], pid_file=pid_file, keep=["dup"])
    assert rt.state("dup") == before
    assert rt.status("dup") == first_status
    if first_status == "created":
        rt("start", "dup", check=True)
    wait_exec(before["pid"], "sleep")
    assert open(f"/proc/{before['pid']}/cmdline").read().split("\0")[:2] == ["sleep", m1]
    assert rt("delete", "--force", "dup").returncode == 0
    assert_nothing_left(rt, "dup", [b1, b2], [m1, m2])


def test_concurrent_creates_of_one_id(rt, make_bundle):
    m = marker()
    b = make_bundle(["sleep", m])
    procs, files = [], []
    try:
        for i in range(8):
            log = rt.workdir / f"conc{i}.log"
            out, err = open(rt.workdir / f"conc{i}.out", "wb"), open(rt.workdir / f"conc{i}.err", "wb")
            files += [out, err]
            procs.append((subprocess.Popen(
                rt.cmd("create", "--bundle", b, "same",
                       global_args=("--log", str(log), "--log-format", "json")),
                stdin=subprocess.DEVNULL, stdout=out, stderr=err), log, err.name))
        for p, _, _ in procs:
            p.wait(timeout=30)
    finally:
        for p, _, _ in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for f in files:
            f.close()
    codes = [p.returncode for p, _, _ in procs]
    assert codes.count(0) == 1, codes
    for p, log, errname in procs:
        if p.returncode:
            p.stderr = Path(errname).read_text()
            check_error(p, log, "container with id exists: same")
    assert rt("list", "-q").stdout == "same\n"
    assert sorted(os.listdir(rt.root)) == ["same"], os.listdir(rt.root)
    st = rt.state("same")
    assert st["status"] == "created"
    live = container_processes([b, rt.root], [m])
    assert [pid for pid, _ in live] == [st["pid"]], live
    rt("delete", "--force", "same", check=True)
    assert_nothing_left(rt, "same", b, [m])


# --- hooks and signals -------------------------------------------------------

@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_hook(rt, bad, kind):
    bad.config["hooks"] = {kind: [{"path": "/bin/sh", "args": ["sh", "-c", "echo oops >&2; exit 1"]}]}
    bad.write()
    pid_file = rt.workdir / "pid"
    msg = create_fails(rt, "c", bad, "--pid-file", pid_file, match=f"{kind} hook")
    assert "exit status 1" in msg and "oops" in msg, msg
    assert_nothing_left(rt, "c", bad, [bad.marker], pid_file=pid_file)


def test_missing_hook_binary(rt, bad):
    bad.config["hooks"] = {"prestart": [{"path": "/nonexistent/pyrunc-hook"}]}
    bad.write()
    create_fails(rt, "c", bad, match="prestart hook.*no such file or directory")
    assert_nothing_left(rt, "c", bad, [bad.marker])


def test_hook_timeout(rt, bad):
    hm = f"{marker()}.5"
    bad.config["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", hm], "timeout": 1}]}
    bad.write()
    create_fails(rt, "c", bad, match="timed out")
    assert_nothing_left(rt, "c", bad, [bad.marker])
    assert not [p for p, cmd, *_ in _live_procs() if cmd == f"sleep {hm}"], "timed-out hook still runs"


def _sleeping_hook(bundle, kind, pid_path, hm):
    bundle.config["hooks"] = {kind: [{"path": "/bin/sh", "args": [
        "sh", "-c", f"echo $$ > {pid_path}.tmp && mv {pid_path}.tmp {pid_path}; exec sleep {hm}"]}]}
    bundle.write()


def _start_create(rt, cid, bundle, gargs):
    n = next(_seq)
    out, err = rt.workdir / f"bg{n}.out", rt.workdir / f"bg{n}.err"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        p = subprocess.Popen(rt.cmd("create", "--bundle", bundle, cid, global_args=gargs),
                             stdin=subprocess.DEVNULL, stdout=fo, stderr=fe)
    p.err_path = err
    return p


def _wait_file(path, proc, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        assert proc.poll() is None, f"create exited {proc.returncode} before the hook ran"
        time.sleep(0.01)
    raise AssertionError("the hook did not start")


@pytest.mark.parametrize("kind,sig", [("prestart", signal.SIGTERM), ("createRuntime", signal.SIGTERM),
                                      ("createContainer", signal.SIGTERM), ("createRuntime", signal.SIGINT)])
def test_signal_to_create_during_hook(rt, bad, kind, sig):
    hook_pid_file, hm = rt.workdir / "hook.pid", f"{marker()}.25"
    _sleeping_hook(bad, kind, hook_pid_file, hm)
    log, gargs = json_log_args(rt)
    pid_file = rt.workdir / "pid"
    p = _start_create(rt, "c", bad, gargs)
    hook_pid = None
    try:
        hook_pid = _wait_file(hook_pid_file, p)
        p.send_signal(sig)
        p.wait(timeout=15)
        p.stderr = p.err_path.read_text()
        assert p.returncode != 0
        check_error(p, log, "interrupted|signal", code=p.returncode)
        # a createContainer hook runs in the container's PID namespace: it dies with it
        markers = [bad.marker] + ([hm] if kind == "createContainer" else [])
        assert_nothing_left(rt, "c", bad, markers, pid_file=pid_file)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if hook_pid and kind != "createContainer":
            _kill_pid(hook_pid, hm)


def _cgroup_dirs(pid):
    """The v1 cgroup directories of a process that are not the runtime's own."""
    mine = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        mine[ctrls] = path
    out = []
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if not ctrls or path == mine.get(ctrls):
            continue
        name = ctrls.split(",")[0].removeprefix("name=")
        out.append(f"/sys/fs/cgroup/{name}{path}")
    return out


@pytest.mark.parametrize("next_cmd,mount_ns,nested", [("state", True, False), ("list", True, False),
                                                      ("list", False, False), ("state", True, True)])
def test_kill9_create_during_hook_leaves_nothing(rt, bad, next_cmd, mount_ns, nested):
    """No rollback runs: the next command finds the debris and undoes what the create had
    made outside its directory (cgroups, with the parents it made for a nested cgroupsPath;
    host mounts when there is no mount namespace)."""
    hook_pid_file, hm = rt.workdir / "hook.pid", f"{marker()}.75"
    if nested:
        bad.config["linux"]["cgroupsPath"] = f"/pyrunc-test-{marker()}/k9"
    if not mount_ns:
        lx = bad.config["linux"]
        lx["namespaces"] = [n for n in lx["namespaces"] if n["type"] != "mount"]
        lx.pop("maskedPaths", None)
        lx.pop("readonlyPaths", None)
        bad.config["root"]["readonly"] = False
    _sleeping_hook(bad, "createRuntime", hook_pid_file, hm)
    p = _start_create(rt, "k9", bad, ())
    hook_pid = None
    try:
        hook_pid = _wait_file(hook_pid_file, p)
        inits = container_processes([bad, rt.root], [bad.marker], exclude=[p.pid, hook_pid])
        assert inits, "no container init while the createRuntime hook runs"
        cgroups = _cgroup_dirs(inits[0][0])
        assert cgroups, "the init is in no cgroup of its own"
        if nested:
            cgroups += [os.path.dirname(d) for d in cgroups]
        p.kill()
        p.wait(timeout=10)
        # the init sees its parent die (EOF on the sync channel) and exits
        left = wait_no_processes([bad, rt.root], [bad.marker], exclude=[hook_pid])
        assert not left, f"container processes survived the runtime's SIGKILL: {left}"
        q = rt(next_cmd, *(["k9"] if next_cmd == "state" else ["-q"]))
        if next_cmd == "state":
            assert q.returncode == 1 and "container does not exist" in q.stderr, q.stderr
        else:
            assert q.returncode == 0 and q.stdout == "", (q.stdout, q.stderr)
        assert os.listdir(rt.root) == [], "debris of the killed create not collected"
        # its cgroups went with the debris, without the ID being reused
        assert [d for d in cgroups if os.path.isdir(d)] == [], "cgroups of the killed create left"
        assert mounts_under(bad.path) == [], "mounts of the killed create left"
        # the ID is free again
        bad.config.pop("hooks")
        bad.write()
        rt.create("k9", bad)
        assert rt.status("k9") == "created"
        rt("delete", "--force", "k9", check=True)
        assert_nothing_left(rt, "k9", bad, [bad.marker])
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if hook_pid:
            _kill_pid(hook_pid, hm)


# --- --root and --pid-file ---------------------------------------------------

@pytest.fixture
def ro_dir(test_tmp):
    """A read-only tmpfs this test mounts (and unmounts): outside the dirs
    that assert_nothing_left scans for mounts."""
    d = Path(tempfile.mkdtemp(prefix="ro-", dir=test_tmp))
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "pyrunc-test-ro", str(d)], check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", str(d)], check=True)
        d.rmdir()


@pytest.mark.parametrize("case", ["parent-is-file", "root-is-file", "read-only-parent"])
def test_unusable_root(rt, bad, case, request):
    if case == "read-only-parent":
        root = request.getfixturevalue("ro_dir") / "pyrunc-root"
        match = "read-only file system"
    else:
        f = rt.workdir / "a-file"
        f.write_text("")
        root = f / "pyrunc-root" if case == "parent-is-file" else f
        match = "not a directory" if case == "parent-is-file" else "exists|not a directory"
    log = rt.workdir / "log.json"
    pid_file = rt.workdir / "pid"
    cmd = [rt.binary, "--log", str(log), "--log-format", "json", "--root", str(root),
           "create", "--bundle", str(bad), "--pid-file", str(pid_file), "c"]
    with open(rt.workdir / "o", "wb") as fo:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=fo, stderr=subprocess.PIPE, text=True,
                           timeout=30)
    check_error(p, log, match)
    assert_nothing_left(rt, "c", bad, [bad.marker], pid_file=pid_file, extra_paths=[root])
    if case == "root-is-file":
        assert f.read_text() == ""


def test_pid_file_in_missing_directory(rt, bad):
    pid_file = rt.workdir / "no-such-dir" / "pid"
    create_fails(rt, "c", bad, "--pid-file", pid_file, match="pid.*no such file or directory")
    assert_nothing_left(rt, "c", bad, [bad.marker], pid_file=pid_file)
    assert not pid_file.parent.exists()


def test_pid_file_is_bare_pid_without_newline(rt, bad):
    pid_file = rt.workdir / "pid"
    rt.create("p", bad, "--pid-file", pid_file)
    try:
        raw = pid_file.read_bytes()
        assert re.fullmatch(rb"[1-9][0-9]*", raw), raw
        assert int(raw) == rt.state("p")["pid"]
        assert not (rt.workdir / ".pid").exists(), "pid file temp left"
    finally:
        rt("delete", "--force", "p")


def _bundle_arg(b, how, workdir):
    if how == "absolute":
        return str(b)
    link = workdir / "bundle-link"
    link.symlink_to(b.path)
    return str(link)


@pytest.mark.parametrize("how", [
    "absolute",
    "through-symlink",
])
def test_state_bundle_is_the_bundle_argument(rt, bad, how):
    arg = _bundle_arg(bad, how, rt.workdir)
    p = rt.create("sb", arg, check=False)
    try:
        assert p.returncode == 0, p.stderr
        assert rt.state("sb")["bundle"] == arg
    finally:
        rt("delete", "--force", "sb")


def test_relative_bundle_is_made_absolute(rt, bad):
    p = subprocess.run(rt.cmd("create", "--bundle", bad.path.name, "rb"), cwd=bad.path.parent,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=open(rt.workdir / "rb.err", "w"), timeout=30)
    try:
        assert p.returncode == 0, (rt.workdir / "rb.err").read_text()
        assert rt.state("rb")["bundle"] == str(bad.path)
    finally:
        rt("delete", "--force", "rb")


# --- the same reports without --log: one logrus text line on stderr ---------

def _text_case_invalid_json(b):
    (b.path / "config.json").write_text("{")
    return "c", "invalid JSON"


def _text_case_bad_id(b):
    return "a/b", "container ID"


def _text_case_bind_missing(b):
    b.config["mounts"].append({"destination": "/mnt", "type": "bind", "source": "/nonexistent-pyrunc-src",
                               "options": ["bind"]})
    b.write()
    return "c", "no such file or directory"


def _text_case_hook(b):
    b.config["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    b.write()
    return "c", "createRuntime hook"


@pytest.mark.parametrize("case", [_text_case_invalid_json, _text_case_bad_id, _text_case_bind_missing,
                                  _text_case_hook], ids=["invalid-json", "bad-id", "bind-missing", "hook"])
def test_text_log_format_error_line(rt, bad, case):
    cid, match = case(bad)
    p = rt.create(cid, bad, check=False, out=rt.workdir / "t.out")
    check_text_error(p, match)
    assert_nothing_left(rt, cid, bad, [bad.marker])
