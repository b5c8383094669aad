"""The same action on pyrunc and on Debian's runc 1.1.5: same observable behaviour.

runc has its own default root, its own name in messages and an older spec
version: the comparisons are on structure (exit codes, key sets, column
layout, what a container sees), not on names or values such as pids and
timestamps. Where pyrunc deliberately differs (runtime-spec over runc), the
test asserts the difference.
"""

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from support import base_config

pytestmark = pytest.mark.runc

SLEEP = ["sleep", "300"]
LOGRUS = re.compile(r'^time="[^"]+" level=(\w+) msg=')


def both(runtime, runc_runtime):
    return (("pyrunc", runtime), ("runc", runc_runtime))


def tabwrite(rows, minwidth=12, padding=3):
    widths = [max(minwidth, max(len(r[c]) for r in rows) + padding) for c in range(len(rows[0]) - 1)]
    return "".join("".join(r[c].ljust(w) for c, w in enumerate(widths)) + r[-1] + "\n" for r in rows)


# --- lifecycle matrix ------------------------------------------------------------

OPS = {
    "state": lambda cid: ["state", cid],
    "kill KILL": lambda cid: ["kill", cid, "KILL"],
    "kill --all KILL": lambda cid: ["kill", "--all", cid, "KILL"],
    "start": lambda cid: ["start", cid],
    "delete": lambda cid: ["delete", cid],
    "delete --force": lambda cid: ["delete", "--force", cid],
}


def prepare(rt, bundle, cid, status):
    if status == "missing":
        return
    rt.create(cid, bundle)
    if status in ("running", "stopped"):
        rt("start", cid, check=True)
    if status == "stopped":
        rt("kill", cid, "KILL", check=True)
        assert rt.wait_status(cid, "stopped")
    assert rt.status(cid) == status


def outcome(rt, bundle, status, op, cid="m"):
    """(exit code, status afterwards or None if gone, stderr line count) of `op` in `status`."""
    prepare(rt, bundle, cid, status)
    try:
        p = rt(*OPS[op](cid))
        after = rt.status(cid)
        if op.startswith("kill") and p.returncode == 0 and after not in (None, "stopped"):
            rt.wait_status(cid, "stopped")  # the signal is asynchronous
            after = rt.status(cid)
        assert "Traceback" not in p.stderr
        return p.returncode, after, len(p.stderr.splitlines())
    finally:
        rt("delete", "--force", cid)


@pytest.mark.parametrize("status", ["missing", "created", "running", "stopped"])
def test_lifecycle_exit_codes_match(runtime, runc_runtime, make_bundle, status):
    b = make_bundle(SLEEP)
    results = {}
    for name, rt in both(runtime, runc_runtime):
        results[name] = {op: outcome(rt, b, status, op) for op in OPS
                         if not (status == "created" and op == "delete")}  # see the next test
    assert results["pyrunc"] == results["runc"]


def test_delete_of_created_container_follows_the_spec_not_runc(runtime, runc_runtime, make_bundle):
    """runtime.md: deleting a container that is not stopped MUST error; runc 1.1.5 kills and deletes it."""
    b = make_bundle(SLEEP)
    runtime.create("c", b)
    p = runtime("delete", "c")
    assert p.returncode == 1 and "not stopped: created" in p.stderr
    assert runtime.status("c") == "created"

    runc_runtime.create("c", b)
    p = runc_runtime("delete", "c")
    assert p.returncode == 0, p.stderr
    assert runc_runtime.status("c") is None


# --- state, list -----------------------------------------------------------------

def test_state_keys_match_through_the_lifecycle(runtime, runc_runtime, make_bundle):
    b = make_bundle(SLEEP, annotations={"org.example.a": "1", "b": "two words"})
    seen = {}
    for name, rt in both(runtime, runc_runtime):
        rt.create("s", b)
        steps = []
        for action in (None, ["start", "s"], ["kill", "s", "KILL"]):
            if action:
                rt(*action, check=True)
            if action and action[0] == "kill":
                assert rt.wait_status("s", "stopped")
            raw = rt("state", "s").stdout
            st = json.loads(raw)
            assert not raw.endswith("\n") and raw == json.dumps(st, indent=2), name
            steps.append((list(st), {k: st[k] for k in ("id", "status", "bundle", "rootfs",
                                                       "annotations", "owner")}))
        seen[name] = steps
    assert seen["pyrunc"] == seen["runc"]
    assert [s[1]["status"] for s in seen["pyrunc"]] == ["created", "running", "stopped"]


def test_list_empty_matches(runtime, runc_runtime):
    outs = {name: tuple(rt(*argv).stdout for argv in (["list"], ["list", "--format", "json"], ["list", "-q"]))
            for name, rt in both(runtime, runc_runtime)}
    assert outs["pyrunc"] == outs["runc"]
    assert outs["runc"][1] == "null\n"


def test_list_layout_and_json_keys_match(runtime, runc_runtime, make_bundle):
    b = make_bundle(SLEEP, annotations={"x": "y"})
    shapes = {}
    for name, rt in both(runtime, runc_runtime):
        rt.create("c-with-a-long-id", b)
        rt.create("c", b)
        raw = rt("list", "--format", "json").stdout
        items = json.loads(raw)
        assert raw.endswith("]\n") and ", " not in raw and '": ' not in raw  # compact
        rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        rows += [(i["id"], str(i["pid"]), i["status"], i["bundle"], i["created"], i["owner"]) for i in items]
        table = rt("list").stdout
        assert table == tabwrite(rows), name
        shapes[name] = (table.splitlines()[0].split(), [list(i) for i in items],
                        [(i["id"], i["status"], i["owner"]) for i in items], rt("list", "-q").stdout)
    assert shapes["pyrunc"] == shapes["runc"]


# --- invalid configurations ------------------------------------------------------

def _missing_rootfs(cfg):
    cfg["root"]["path"] = "no-such-rootfs"


def _relative_mount(cfg):
    cfg["mounts"].append({"destination": "relx", "type": "tmpfs", "source": "tmpfs"})


def _hostname_without_uts(cfg):
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "uts"]


@pytest.mark.parametrize("mutate", [
    _missing_rootfs,
    _relative_mount,
    _hostname_without_uts,
    "invalid-json",
], ids=["missing-rootfs", "relative-mount-destination", "hostname-without-uts", "invalid-json"])
def test_invalid_config_same_verdict(runtime, runc_runtime, make_bundle, mutate):
    cfg = base_config(["sh", "-c", "grep -c ' /relx tmpfs ' /proc/mounts; exit 0"])
    b = make_bundle(config=cfg)
    if mutate == "invalid-json":
        (b.path / "config.json").write_text('{"ociVersion": "1.3.0", "process": {"args": [')
    else:
        mutate(cfg)
        b.write(cfg)
    got = {}
    for name, rt in both(runtime, runc_runtime):
        p = rt("run", "--bundle", b, "inv")
        errors = [line for line in p.stderr.splitlines() if LOGRUS.match(line) and "level=error" in line]
        got[name] = (p.returncode, p.stdout, len(errors))
        assert rt.ids() == [], name
    assert got["pyrunc"] == got["runc"]


# --- what a container sees -------------------------------------------------------

def _run_both(runtime, runc_runtime, make_bundle, script):
    b = make_bundle(["sh", "-c", script])
    out = {}
    for name, rt in both(runtime, runc_runtime):
        p = rt("run", "--bundle", b, "see")
        assert p.returncode == 0, (name, p.stderr)
        out[name] = p.stdout
    return out


def test_run_identity_matches(runtime, runc_runtime, make_bundle):
    out = _run_both(runtime, runc_runtime, make_bundle,
                    "hostname; id -u; id -g; cat /proc/self/status | grep Cap; echo $$")
    assert out["pyrunc"] == out["runc"]
    assert out["runc"].splitlines()[0] == "pyrunc-test"


def test_run_mounts_match(runtime, runc_runtime, make_bundle):
    out = _run_both(runtime, runc_runtime, make_bundle, "cat /proc/mounts")
    views = {name: [tuple(line.split()[1:3]) for line in text.splitlines()] for name, text in out.items()}
    assert [m[0] for m in views["pyrunc"]] == [m[0] for m in views["runc"]]
    masked = set(base_config()["linux"]["maskedPaths"])
    for (point, py_type), (_, runc_type) in zip(views["pyrunc"], views["runc"]):
        if py_type != runc_type:
            # deliberate: pyrunc masks files with the host's verified /dev/null (CVE-2025-31133),
            # runc 1.1.5 with the container's own /dev/null node on the /dev tmpfs
            assert point in masked and (py_type, runc_type) == ("devtmpfs", "tmpfs"), (point, py_type, runc_type)


def test_run_exit_status_matches(runtime, runc_runtime, make_bundle):
    no_pidns = base_config(["sh", "-c", "kill -KILL $$"])
    no_pidns["linux"]["namespaces"] = [n for n in no_pidns["linux"]["namespaces"] if n["type"] != "pid"]
    for cfg in (base_config(["sh", "-c", "exit 7"]), no_pidns, base_config(["no-such-binary"])):
        b = make_bundle(config=cfg)
        codes = {name: rt("run", "--bundle", b, "x").returncode for name, rt in both(runtime, runc_runtime)}
        assert codes["pyrunc"] == codes["runc"], (cfg["process"]["args"], codes)


def test_concurrent_runs_of_a_fast_exiting_process(runtime, runc_runtime, make_bundle):
    b = make_bundle(["true"])
    for name, rt in reversed(both(runtime, runc_runtime)):  # runc first: the baseline
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda i: rt("run", "--bundle", b, f"fast{i}"), range(32)))
        failed = [p.stderr.strip() for p in results if p.returncode != 0]
        assert failed == [], (name, len(failed), failed[0])
        assert rt.ids() == []


# --- command line ----------------------------------------------------------------

def test_cli_errors_match(runtime, runc_runtime):
    for argv in (["bogus"], ["--bogus", "state", "x"], ["state", "--bogus", "x"], ["state"],
                 ["state", "a", "b"], ["kill"], ["kill", "a", "b", "c"], ["list", "--format", "yaml"],
                 ["state", "nope"], ["start", "nope"], ["kill", "nope"], ["delete", "nope"],
                 ["delete", "--force", "nope"]):
        got = {}
        for name, rt in both(runtime, runc_runtime):
            p = rt(*argv)
            assert "Traceback" not in p.stderr
            levels = [LOGRUS.match(line).group(1) if LOGRUS.match(line) else None
                      for line in p.stderr.splitlines()]
            got[name] = (p.returncode, levels, p.stdout.startswith("Incorrect Usage"))
        assert got["pyrunc"] == got["runc"], argv


def test_log_json_matches(runtime, runc_runtime, tmp_path):
    got = {}
    for name, rt in both(runtime, runc_runtime):
        log = tmp_path / f"{name}.json"
        p = rt("start", "nope", global_args=["--log", log, "--log-format", "json"])
        objs = [json.loads(line) for line in log.read_text().splitlines()]
        got[name] = (p.returncode, p.stderr, [(list(o), o["level"], o["msg"]) for o in objs])
    assert got["pyrunc"] == got["runc"]


def test_version_structure_matches(runtime, runc_runtime):
    got = {}
    for name, rt in both(runtime, runc_runtime):
        lines = rt("--version").stdout.splitlines()
        assert lines[0].startswith(f"{name} version "), lines
        got[name] = [line.split(":")[0] for line in lines if line.startswith(("commit:", "spec:"))]
    assert got["pyrunc"] == got["runc"] == ["commit", "spec"]


def test_spec_matches(runtime, runc_runtime, tmp_path):
    for flags in ([], ["--rootless"]):
        docs = {}
        for name, rt in both(runtime, runc_runtime):
            d = tmp_path / f"{name}{''.join(flags)}"
            d.mkdir()
            p = rt("spec", *flags, "--bundle", d)
            assert (p.returncode, p.stderr) == (0, ""), name
            docs[name] = json.loads((d / "config.json").read_text())
            # runc-specific values: its spec version and its name as the hostname
            assert docs[name].pop("hostname") == name
            docs[name].pop("ociVersion")
            again = rt("spec", *flags, "--bundle", d)
            assert again.returncode == 1 and "File config.json exists. Remove it first" in again.stderr
        assert docs["pyrunc"] == docs["runc"], flags
