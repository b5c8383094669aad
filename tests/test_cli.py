"""The command line as runc's users see it: flags, logs, exit codes, outputs.

Every check here is on what a client observes (exit status, stdout, stderr,
the --log file, files the runtime writes), with real containers.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone


import pyrunc
from support import base_config, wait_exec

TS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:Z|[+-]\d\d:\d\d)"
LOGRUS = re.compile(r'^time="(' + TS + r')" level=(\w+) msg=("(?:[^"\\]|\\.)*"|\S+)$')
RFC3339NANO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z$")
STATE_KEYS = ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created", "owner"]
SLEEP = ["sleep", "300"]
TRAP_TERM = ["sh", "-c", 'trap "echo got-term; exit 0" TERM; echo ready; while :; do sleep 0.1; done']


# --- helpers -----------------------------------------------------------------

def logrus(line):
    """(time, level, msg) of one logrus text line; AssertionError if it is not one."""
    m = LOGRUS.match(line)
    assert m, f"not a logrus line: {line!r}"
    msg = m.group(3)
    if msg.startswith('"'):
        msg = json.loads(msg)
    return m.group(1), m.group(2), msg


def one_error(p, text=None, code=1):
    """A failed command: exit `code`, exactly one logrus error line on stderr, no traceback."""
    assert "Traceback" not in p.stderr, p.stderr
    assert p.returncode == code, (p.returncode, p.stderr)
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    _, level, msg = logrus(lines[0])
    assert level == "error"
    if text is not None:
        assert text in msg, msg
    return msg


def run_files(runtime, *args, cwd=None, global_args=(), timeout=60):
    """A pyrunc command whose stdio are files (for anything that leaves a container behind)."""
    out = runtime.workdir / f"cmd-{time.monotonic_ns()}.out"
    err = out.with_suffix(".err")
    with open(out, "w+") as fo, open(err, "w+") as fe:
        p = subprocess.run(runtime.cmd(*args, global_args=global_args), stdin=subprocess.DEVNULL,
                           stdout=fo, stderr=fe, cwd=cwd, timeout=timeout, text=True)
        fo.seek(0)
        fe.seek(0)
        p.stdout, p.stderr = fo.read(), fe.read()
    return p


def wait_for_text(path, text, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if text in open(path).read():
                return True
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    return False


def tabwrite(rows, minwidth=12, padding=3):
    """Go text/tabwriter.NewWriter(out, 12, 1, 3, ' ', 0): the last cell is not padded."""
    widths = [max(minwidth, max(len(r[c]) for r in rows) + padding) for c in range(len(rows[0]) - 1)]
    return "".join("".join(r[c].ljust(w) for c, w in enumerate(widths)) + r[-1] + "\n" for r in rows)


def parse_created(s):
    """RFC3339Nano UTC -> aware datetime (microsecond precision)."""
    m = RFC3339NANO_UTC.match(s)
    assert m, s
    frac = (m.group(1) or ".0")[1:]
    base = datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return base.replace(microsecond=int(frac[:6].ljust(6, "0")))


# --- global flags and logging --------------------------------------------------

def test_error_without_log_goes_to_stderr_as_logrus_text(runtime):
    p = runtime("state", "nope")
    assert p.stdout == ""
    assert one_error(p) == "container does not exist"


def test_log_file_json_is_what_containerd_reads(runtime, tmp_path):
    log = tmp_path / "log.json"
    for _ in range(2):
        p = runtime("state", "nope", global_args=["--log", log, "--log-format", "json"])
        assert p.returncode == 1 and "Traceback" not in p.stderr
        assert p.stderr == "container does not exist\n"  # the plain message also goes to stderr
    lines = log.read_text().splitlines()
    assert len(lines) == 2  # appended, one object per line
    for line in lines:
        obj = json.loads(line)
        assert list(obj) == ["level", "msg", "time"]
        assert obj["level"] == "error"
        assert obj["msg"] == "container does not exist"
        assert re.fullmatch(TS, obj["time"]), obj["time"]


def test_log_file_json_on_create_failure(runtime, make_bundle, tmp_path):
    b = make_bundle(["true"])
    b.config["root"]["path"] = "missing-rootfs"
    b.write()
    log = tmp_path / "log.json"
    p = run_files(runtime, "create", "--bundle", b, "c", global_args=["--log", log, "--log-format=json"])
    assert p.returncode == 1 and "Traceback" not in p.stderr
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["level"] == "error"
    assert last["msg"].startswith("pyrunc create failed: ") and "rootfs" in last["msg"]
    assert p.stderr == last["msg"] + "\n"
    assert runtime.ids() == []


def test_log_file_text_is_logrus(runtime, tmp_path):
    log = tmp_path / "log.txt"
    p = runtime("kill", "nope", "KILL", global_args=["--log", log, "--log-format", "text"])
    assert p.returncode == 1
    assert p.stderr == "container does not exist\n"
    (line,) = log.read_text().splitlines()
    assert logrus(line)[1:] == ("error", "container does not exist")


def test_debug_run_logs_steps_with_durations(runtime, make_bundle):
    b = make_bundle(["true"])
    p = runtime("run", "--bundle", b, "dbg", global_args=["--debug"])
    assert p.returncode == 0, p.stderr
    msgs = [logrus(line)[2] for line in p.stderr.splitlines() if logrus(line)[1] == "debug"]
    dur = r": \d+(\.\d+)? ms$"
    assert any(re.match(r"pivot_root" + dur, m) for m in msgs), msgs
    assert any(re.match(r"mount .*proc.*" + dur, m) for m in msgs), msgs
    assert all(re.search(dur, m) for m in msgs if "pivot_root" in m or m.startswith("mount "))


def test_no_debug_lines_without_debug(runtime, make_bundle):
    b = make_bundle(["true"])
    p = runtime("run", "--bundle", b, "quiet")
    assert p.returncode == 0
    assert p.stderr == ""


def test_version(runtime):
    outs = []
    for flag in ("--version", "-v"):
        p = subprocess.run([runtime.binary, flag], capture_output=True, text=True, timeout=30)
        assert p.returncode == 0 and p.stderr == "", flag
        lines = p.stdout.splitlines()
        assert lines[0] == f"pyrunc version {pyrunc.__version__}"
        assert "spec: 1.3.0" in lines
        assert any(line.startswith("commit: ") for line in lines)
        outs.append(p.stdout)
    assert outs[0] == outs[1]


def test_single_dash_and_equals_forms(runtime, bundle):
    runtime.create("c", bundle)
    b, root = runtime.binary, runtime.root
    for argv in ([b, "-root", root, "state", "c"], [b, f"-root={root}", "state", "c"],
                 [b, f"--root={root}", "--log-format=text", "state", "c"]):
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, (argv, p.stderr)
        assert json.loads(p.stdout)["status"] == "created"


def test_flags_after_container_id(runtime, bundle, tmp_path):
    pidfile = tmp_path / "pid"
    p = run_files(runtime, "create", "c", "--bundle", bundle, f"--pid-file={pidfile}")
    assert p.returncode == 0, p.stderr
    st = runtime.state("c")
    assert st["status"] == "created" and st["bundle"] == str(bundle)
    assert pidfile.read_text() == str(st["pid"])
    p = run_files(runtime, "create", "d", "-b", bundle)
    assert p.returncode == 0, p.stderr
    assert runtime.ids() == ["c", "d"]


# --- exit codes and messages ----------------------------------------------------

def test_unknown_command_exits_3(runtime):
    one_error(runtime("bogus", "x"), "No help topic for 'bogus'", code=3)


def test_unknown_flag(runtime):
    for argv in (["--bogus", "state", "x"], ["state", "--bogus", "x"]):
        p = subprocess.run([runtime.binary, *argv], capture_output=True, text=True, timeout=30)
        one_error(p, "flag provided but not defined: -bogus")
        assert p.stdout.startswith("Incorrect Usage"), argv


def test_wrong_number_of_arguments(runtime):
    for argv, need in (
        (["state"], 'pyrunc: "state" requires exactly 1 argument(s)'),
        (["start", "a", "b"], 'pyrunc: "start" requires exactly 1 argument(s)'),
        (["delete"], 'pyrunc: "delete" requires exactly 1 argument(s)'),
        (["kill"], 'pyrunc: "kill" requires a minimum of 1 argument(s)'),
        (["kill", "a", "KILL", "x"], 'pyrunc: "kill" requires a maximum of 2 argument(s)'),
        (["list", "x"], 'pyrunc: "list" requires exactly 0 argument(s)'),
    ):
        p = runtime(*argv)
        assert one_error(p) == need
        assert p.stdout.startswith("Incorrect Usage."), argv


def test_missing_container(runtime):
    for cmd in ("state", "kill", "start", "delete"):
        assert one_error(runtime(cmd, "nope")) == "container does not exist", cmd


def test_delete_force_of_missing_container_succeeds(runtime):
    p = runtime("delete", "--force", "nope")
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    assert runtime("delete", "-f", "nope").returncode == 0


def test_kill_signal_forms(runtime, bundle):
    for sig in ("KILL", "SIGKILL", "kill", "9"):
        cid = f"k-{sig}"
        runtime.create(cid, bundle)
        p = runtime("kill", cid, sig)
        assert (p.returncode, p.stderr) == (0, ""), sig
        assert runtime.wait_status(cid, "stopped"), sig


def test_kill_default_signal_is_term(runtime, make_bundle):
    b = make_bundle(TRAP_TERM)
    c = runtime.create("t", b)
    runtime("start", "t", check=True)
    assert wait_for_text(c.output_path, "ready")
    p = runtime("kill", "t")
    assert (p.returncode, p.stderr) == (0, "")
    assert runtime.wait_status("t", "stopped")
    assert "got-term" in c.output_path.read_text()


def test_kill_unknown_signal(runtime, bundle):
    runtime.create("k", bundle)
    for sig in ("FOO", "SIGBOGUS"):
        assert one_error(runtime("kill", "k", sig)) == f'unknown signal "{sig}"'
    assert runtime.status("k") == "created"


def test_kill_all_on_stopped_container_succeeds(runtime, make_bundle):
    b = make_bundle(["true"])
    runtime.create("s", b)
    runtime("start", "s", check=True)
    assert runtime.wait_status("s", "stopped")
    for flag in ("--all", "-a"):
        p = runtime("kill", flag, "s", "9")
        assert (p.returncode, p.stderr) == (0, ""), flag
    one_error(runtime("kill", "s", "9"), "container not running")


def test_start_of_stopped_container(runtime, make_bundle):
    b = make_bundle(["true"])
    runtime.create("s", b)
    runtime("start", "s", check=True)
    assert runtime.wait_status("s", "stopped")
    assert one_error(runtime("start", "s")) == "cannot start a container that has stopped"


def test_delete_running_container_needs_force(runtime, bundle):
    runtime.create("r", bundle)
    runtime("start", "r", check=True)
    assert one_error(runtime("delete", "r")) == "cannot delete container r that is not stopped: running"
    assert runtime.status("r") == "running"
    p = runtime("delete", "--force", "r")
    assert (p.returncode, p.stderr) == (0, "")
    assert runtime.ids() == []


def test_invalid_and_duplicate_container_ids(runtime, bundle):
    one_error(run_files(runtime, "create", "--bundle", bundle, "bad/id"), "invalid container ID format")
    runtime.create("dup", bundle)
    msg = one_error(run_files(runtime, "create", "--bundle", bundle, "dup"))
    assert msg.startswith("pyrunc create failed: ") and "exists" in msg
    assert runtime.ids() == ["dup"]


def test_missing_config_json(runtime, make_bundle):
    b = make_bundle(["true"])
    (b.path / "config.json").unlink()
    msg = one_error(runtime("run", "--bundle", b, "x"))
    assert msg == "pyrunc run failed: JSON specification file config.json not found"


def _invalid_json_fails_cleanly(runtime, make_bundle, texts):
    b = make_bundle(["true"])
    for text in texts:
        (b.path / "config.json").write_text(text)
        msg = one_error(run_files(runtime, "create", "--bundle", b, "x"))
        assert msg.startswith("pyrunc create failed: "), text
        assert runtime.ids() == []


def test_truncated_json_config_is_one_line_error(runtime, make_bundle):
    _invalid_json_fails_cleanly(runtime, make_bundle, ["", "[1,", '{"ociVersion": "1.3.0"} x'])


def test_malformed_json_config_is_one_line_error(runtime, make_bundle):
    _invalid_json_fails_cleanly(runtime, make_bundle,
                                ["{bad", '{"ociVersion": "1.3.0",}', '{"ociVersion" "1.3.0"}'])


# --- state ---------------------------------------------------------------------

def test_state_json_shape(runtime, bundle):
    before = datetime.now(timezone.utc)
    runtime.create("c", bundle)
    raw = runtime("state", "c").stdout
    assert not raw.endswith("\n")
    st = json.loads(raw)
    assert list(st) == STATE_KEYS
    assert raw == json.dumps(st, indent=2)  # Go's MarshalIndent(…, "", "  ")
    assert st["ociVersion"] == "1.3.0"
    assert (st["id"], st["status"], st["owner"]) == ("c", "created", "")
    assert st["bundle"] == str(bundle)
    assert st["rootfs"] == str(bundle.rootfs)
    assert isinstance(st["pid"], int) and st["pid"] > 0
    created = parse_created(st["created"])
    assert before.replace(microsecond=0) <= created <= datetime.now(timezone.utc)


def test_state_annotations_round_trip(runtime, make_bundle):
    ann = {"org.opencontainers.image.title": "x y", "com.example/empty": "", "k": "é\"<&>"}
    b = make_bundle(SLEEP, annotations=ann)
    runtime.create("a", b)
    st = runtime.state("a")
    assert list(st) == STATE_KEYS[:-1] + ["annotations", "owner"]
    assert st["annotations"] == ann


def test_state_of_stopped_container(runtime, make_bundle):
    b = make_bundle(["true"], annotations={"a": "b"})
    runtime.create("s", b)
    runtime("start", "s", check=True)
    assert runtime.wait_status("s", "stopped")
    first = runtime("state", "s").stdout
    st = json.loads(first)
    assert (st["status"], st["pid"]) == ("stopped", 0)
    assert runtime("state", "s").stdout == first  # byte-identical


# --- list ----------------------------------------------------------------------

def test_list_empty(runtime):
    p = runtime("list")
    assert (p.returncode, p.stderr) == (0, "")
    assert p.stdout == "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n"
    assert runtime("list", "--format", "json").stdout == "null\n"
    assert runtime("list", "-q").stdout == ""


def test_list_table_alignment(runtime, make_bundle):
    short = make_bundle(SLEEP)
    runtime.create("z-a-rather-long-container-id", short)
    runtime.create("a", short)
    b = make_bundle(["true"])
    runtime.create("m", b)
    runtime("start", "m", check=True)
    assert runtime.wait_status("m", "stopped")
    items = json.loads(runtime("list", "--format", "json").stdout)
    assert [i["id"] for i in items] == ["a", "m", "z-a-rather-long-container-id"]
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    rows += [(i["id"], str(i["pid"]), i["status"], i["bundle"], i["created"], i["owner"]) for i in items]
    out = runtime("list").stdout
    assert out == tabwrite(rows)
    assert [i["status"] for i in items] == ["created", "stopped", "created"]
    assert items[1]["pid"] == 0


def test_list_json_and_quiet(runtime, bundle):
    runtime.create("c1", bundle)
    runtime.create("c2", bundle)
    for argv in (["--format", "json"], ["-f", "json"], ["--format=json"]):
        raw = runtime("list", *argv).stdout
        items = json.loads(raw)
        assert raw == json.dumps(items, separators=(",", ":"), ensure_ascii=False) + "\n"  # compact
        assert [list(i) for i in items] == [STATE_KEYS] * 2
        assert [i["owner"] for i in items] == ["root", "root"]
        for i in items:
            assert i == dict(runtime.state(i["id"]), owner="root")
    assert runtime("list", "-q").stdout == "c1\nc2\n"
    assert runtime("list", "--quiet").stdout == "c1\nc2\n"


def test_list_invalid_format(runtime):
    one_error(runtime("list", "--format", "yaml"), "invalid format option")


# --- spec ----------------------------------------------------------------------

def test_spec_writes_config_and_refuses_to_overwrite(runtime, tmp_path):
    d = tmp_path / "b"
    d.mkdir()
    p = runtime("spec", "--bundle", d)
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    text = (d / "config.json").read_text()
    cfg = json.loads(text)
    assert cfg["ociVersion"] == "1.3.0"
    assert cfg["root"]["path"] == "rootfs"
    types = {n["type"] for n in cfg["linux"]["namespaces"]}
    assert {"pid", "network", "ipc", "uts", "mount"} <= types
    assert one_error(runtime("spec", "-b", d)) == "File config.json exists. Remove it first"
    assert (d / "config.json").read_text() == text


def test_spec_in_cwd(runtime, tmp_path):
    p = runtime("spec", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert json.loads((tmp_path / "config.json").read_text())["process"]["args"] == ["sh"]
    one_error(runtime("spec", cwd=tmp_path), "File config.json exists. Remove it first")


def test_spec_rootless(runtime, tmp_path):
    assert runtime("spec", "--rootless", "--bundle", tmp_path).returncode == 0
    cfg = json.loads((tmp_path / "config.json").read_text())
    types = [n["type"] for n in cfg["linux"]["namespaces"]]
    assert "user" in types and "network" not in types
    assert cfg["linux"]["uidMappings"] == [{"containerID": 0, "hostID": os.getuid(), "size": 1}]
    assert cfg["linux"]["gidMappings"] == [{"containerID": 0, "hostID": os.getgid(), "size": 1}]
    (sys_mount,) = [m for m in cfg["mounts"] if m["destination"] == "/sys"]
    assert sys_mount["source"] == "/sys"
    assert {"rbind", "ro"} <= set(sys_mount["options"]) or {"bind", "ro"} <= set(sys_mount["options"])


def test_spec_output_runs(runtime, make_bundle):
    b = make_bundle(["true"])
    for flags in ([], ["--rootless"]):
        (b.path / "config.json").unlink()
        assert runtime("spec", *flags, "--bundle", b).returncode == 0
        cfg = json.loads((b.path / "config.json").read_text())
        cfg["process"]["terminal"] = False
        cfg["process"]["args"] = ["sh", "-c", "echo ok $(hostname) $(id -u)"]
        b.write(cfg)
        p = runtime("run", "--bundle", b, "spec-run")
        assert (p.returncode, p.stdout, p.stderr) == (0, "ok pyrunc 0\n", ""), flags


# --- run -----------------------------------------------------------------------

def _no_pidns(args):
    cfg = base_config(args)
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
    return cfg


def test_run_exit_status_passthrough(runtime, make_bundle):
    b = make_bundle(["true"])
    for cfg, code in (
        (base_config(["sh", "-c", "exit 7"]), 7),
        # without a PID namespace sh is not a namespace init and can die of a signal
        (_no_pidns(["sh", "-c", "kill -KILL $$"]), 128 + signal.SIGKILL),
        (_no_pidns(["sh", "-c", "kill -USR1 $$"]), 128 + signal.SIGUSR1),
    ):
        b.write(cfg)
        p = runtime("run", "--bundle", b, "x")
        assert p.returncode == code, (cfg["process"]["args"], p.stderr)
        assert "Traceback" not in p.stderr
        assert runtime.ids() == []


def test_run_forwards_sigterm(runtime, make_bundle):
    b = make_bundle(["sh", "-c", 'trap "exit 42" TERM; echo ready; while :; do sleep 0.1; done'])
    out = runtime.workdir / "fwd.out"
    with open(out, "w") as fo, open(out.with_suffix(".err"), "w") as fe:
        proc = subprocess.Popen(runtime.cmd("run", "--bundle", b, "fwd"), stdin=subprocess.DEVNULL,
                                stdout=fo, stderr=fe)
    try:
        assert wait_for_text(out, "ready"), out.with_suffix(".err").read_text()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 42
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert runtime.ids() == []


FORWARDER = """
import os, signal, subprocess
from pyrunc import signals
fwd = signals.Forwarder()
os.kill(os.getpid(), signal.SIGUSR1)  # before the process runs: queued, not fatal
os.kill(os.getpid(), signal.SIGTERM)
child = subprocess.Popen(["sleep", "30"])
fwd.to(child.pid)
fwd.restore()
print(child.wait(), len(fwd.pending))
"""


def test_signals_before_the_process_runs_are_queued_then_forwarded():
    """runc buffers what `run` receives between create and start; so does pyrunc.
    The first queued signal (USR1) is the one that ends the process."""
    p = subprocess.run([sys.executable, "-c", FORWARDER], capture_output=True, text=True, timeout=30)
    assert (p.returncode, p.stdout.split(), p.stderr) == (0, [str(-signal.SIGUSR1), "0"], "")


def test_run_detach(runtime, bundle):
    for flag in ("--detach", "-d"):
        p = run_files(runtime, "run", flag, "--bundle", bundle, f"det{flag}")
        assert (p.returncode, p.stderr) == (0, ""), flag
        st = runtime.state(f"det{flag}")
        assert st["status"] == "running"
        wait_exec(st["pid"], "sleep")


def test_run_keep(runtime, make_bundle):
    b = make_bundle(["sh", "-c", "exit 3"])
    p = runtime("run", "--keep", "--bundle", b, "kept")
    assert p.returncode == 3
    items = json.loads(runtime("list", "--format", "json").stdout)
    assert [(i["id"], i["status"], i["pid"]) for i in items] == [("kept", "stopped", 0)]
    assert runtime("delete", "kept").returncode == 0
    assert runtime.ids() == []


def test_run_without_keep_leaves_nothing(runtime, make_bundle):
    b = make_bundle(["true"])
    assert runtime("run", "--bundle", b, "gone").returncode == 0
    assert runtime.ids() == []
    assert os.listdir(runtime.root) == []
    one_error(runtime("state", "gone"), "container does not exist")


# --- pid file --------------------------------------------------------------------

def test_relative_pid_file_is_relative_to_callers_cwd(runtime, bundle, tmp_path):
    for cmd in (["create"], ["run", "--detach"]):
        cid = cmd[0]
        cwd = tmp_path / cid
        cwd.mkdir()
        p = run_files(runtime, *cmd, "--bundle", bundle, "--pid-file", "pid", cid, cwd=cwd)
        assert p.returncode == 0, p.stderr
        raw = (cwd / "pid").read_bytes()
        assert raw.isdigit(), raw  # bare PID, no trailing newline
        assert int(raw) == runtime.state(cid)["pid"]
        assert not (bundle.path / "pid").exists()
