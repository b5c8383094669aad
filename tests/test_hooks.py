"""OCI hooks (runtime-spec v1.3.0 config.md "POSIX-platform Hooks", runtime.md lifecycle).

Hooks are small `#!/bin/sh` scripts written into a per-test directory on
the host; they record what they got (the state on stdin, argv, environ,
their namespaces) into files there and append their name to one shared
log, which gives the relative order. The startContainer hook resolves in
the container, so its copy lives in the rootfs and the directory is
bind-mounted at /hostlog.
"""

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from support import TEST_TMP, mounts_under

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")

SCRIPTS = {
    # record.sh KIND DIR
    "record.sh": r"""#!/bin/sh
kind=$1 dir=$2
cat > "$dir/$kind.json"
for n in mnt uts net ipc pid; do echo "$n $(readlink /proc/self/ns/$n)"; done > "$dir/$kind.ns"
hostname > "$dir/$kind.hostname"
echo "$kind" >> "$dir/log"
""",
    # fail.sh KIND DIR: records, then fails with a message on stderr
    "fail.sh": r"""#!/bin/sh
kind=$1 dir=$2
cat > "$dir/$kind.json"
readlink /proc/self/ns/pid > "$dir/$kind.pidns"
echo "$kind" >> "$dir/log"
echo "hook $kind says no" >&2
exit 3
""",
    # hang.sh KIND DIR: never returns (exec: the timeout kill hits the hanging process itself)
    "hang.sh": r"""#!/bin/sh
echo $$ > "$2/$1.pid"
echo "$1" >> "$2/log"
exec sleep 60
""",
    # argv.sh DIR ARGS...: its arguments and its whole environment
    "argv.sh": r"""#!/bin/sh
dir=$1
printf '%s\n' "$#" "$@" > "$dir/argv"
tr '\0' '\n' < /proc/$$/environ > "$dir/env"
""",
}


class HookDir:
    """The scripts, where hooks record, and how a hook entry points at them."""

    def __init__(self, path):
        self.path = path
        for name, text in SCRIPTS.items():
            p = path / name
            p.write_text(text)
            p.chmod(0o755)

    def prepare(self, b):
        """Scripts copied into the rootfs (for startContainer), the directory at /hostlog."""
        shutil.copytree(self.path, b.rootfs / "hooks")
        b.config["mounts"].append({"destination": "/hostlog", "type": "bind", "source": str(self.path),
                                   "options": ["rbind"]})
        return b

    def hook(self, kind, script="record.sh", name=None, args=None, **extra):
        """A hook entry; startContainer's path and directory are container paths."""
        if kind == "startContainer":
            path, d = "/hooks/" + script, "/hostlog"
        else:
            path, d = str(self.path / script), str(self.path)
        h = {"path": path, "args": [script, name or kind, d] if args is None else args}
        h.update(extra)
        return h

    def log(self):
        p = self.path / "log"
        return p.read_text().split() if p.exists() else []

    def state(self, name):
        return json.loads((self.path / f"{name}.json").read_text())

    def ns(self, name):
        return dict(line.split(" ", 1) for line in (self.path / f"{name}.ns").read_text().splitlines())

    def text(self, name):
        return (self.path / name).read_text()


@pytest.fixture
def hooks():
    d = Path(tempfile.mkdtemp(prefix="hooks-", dir=TEST_TMP))
    yield HookDir(d)
    shutil.rmtree(d, ignore_errors=True)


def hooked_bundle(make_bundle, hooks, table, args=("sleep", "300"), annotations=None):
    b = hooks.prepare(make_bundle(list(args)))
    b.config["hooks"] = table
    if annotations:
        b.config["annotations"] = annotations
    return b.write()


def lifecycle(runtime, b, cid):
    """create, start, kill, delete; returns the init's host PID."""
    runtime.create(cid, b)
    pid = runtime.state(cid)["pid"]
    runtime("start", cid, check=True)
    runtime("kill", cid, "KILL", check=True)
    assert runtime.wait_status(cid, "stopped")
    runtime("delete", cid, check=True)
    return pid


def ns_of(pid):
    return {n: os.readlink(f"/proc/{pid}/ns/{n}") for n in ("mnt", "uts", "net", "ipc", "pid")}


def gone(pid, timeout=5.0):
    """True once pid has exited (a zombie waiting for the lazy host reaper counts as gone)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            st = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return True
        if st.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def live_in_pidns(ns):
    """Live (non-zombie) processes whose PID namespace is `ns` ("pid:[N]")."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{name}/ns/pid") == ns and not gone(int(name), 0):
                out.append(int(name))
        except OSError:
            pass
    return out


def assert_nothing_left(runtime, b):
    assert runtime.ids() == []
    assert os.listdir(runtime.root) == []
    assert mounts_under(b.path) == []


# --- when hooks run ----------------------------------------------------------


def test_hooks_run_in_order_at_their_moments(runtime, make_bundle, hooks):
    table = {k: [hooks.hook(k)] for k in KINDS}
    table["createRuntime"].append(hooks.hook("createRuntime", name="createRuntime2"))
    table["poststart"].append(hooks.hook("poststart", name="poststart2"))
    b = hooked_bundle(make_bundle, hooks, table)
    runtime.create("order", b)
    assert hooks.log() == ["prestart", "createRuntime", "createRuntime2", "createContainer"]
    runtime("start", "order", check=True)
    assert hooks.log()[4:] == ["startContainer", "poststart", "poststart2"]
    runtime("kill", "order", "KILL", check=True)
    assert runtime.wait_status("order", "stopped")
    assert "poststop" not in hooks.log()
    runtime("delete", "order", check=True)
    assert hooks.log()[7:] == ["poststop"]


def test_hooks_with_foreground_run(runtime, make_bundle, hooks):
    b = hooked_bundle(make_bundle, hooks, {k: [hooks.hook(k)] for k in KINDS},
                      args=["sh", "-c", "echo process >> /hostlog/log"])
    p = runtime("run", "--bundle", b, "fg")
    assert p.returncode == 0, p.stderr
    log = hooks.log()
    assert log[:4] == ["prestart", "createRuntime", "createContainer", "startContainer"]
    assert log[-1] == "poststop"
    assert sorted(log[4:6]) == ["poststart", "process"]  # the process and poststart race
    assert runtime.ids() == []


# --- what hooks receive --------------------------------------------------------

# prestart/createRuntime see "created", as with runc and as runtime-tools' hooks_stdin checks
EXPECTED_STATUS = {"prestart": "created", "createRuntime": "created", "createContainer": "created",
                   "startContainer": "created", "poststart": "running", "poststop": "stopped"}


@pytest.mark.parametrize("kind", KINDS)
def test_hook_state_on_stdin(runtime, make_bundle, hooks, kind):
    ann = {"org.example.key": "value", "other": "x y"}
    b = hooked_bundle(make_bundle, hooks, {kind: [hooks.hook(kind)]}, annotations=ann)
    pid = lifecycle(runtime, b, f"st-{kind}")
    st = hooks.state(kind)
    assert st["id"] == f"st-{kind}"
    assert st["status"] == EXPECTED_STATUS[kind]
    assert st["bundle"] == str(b)
    assert st["annotations"] == ann
    assert st["ociVersion"]
    if kind in ("createContainer", "startContainer"):
        # container namespace: the PID as seen by the container
        assert st["pid"] == 1
    elif kind != "poststop":
        assert st["pid"] == pid


def test_hook_args_are_argv(runtime, make_bundle, hooks):
    d = str(hooks.path)
    table = {"createRuntime": [hooks.hook("createRuntime", "argv.sh", args=["ignored-argv0", d, "two words", "x"])]}
    b = hooked_bundle(make_bundle, hooks, table)
    lifecycle(runtime, b, "argv")
    # args[0] is argv[0] (replaced by the script name under #!): the script sees args[1:]
    assert hooks.text("argv").splitlines() == ["3", d, "two words", "x"]


def test_hook_argv0_is_args0(runtime, make_bundle, hooks):
    out = str(hooks.path / "cmdline")
    table = {"createRuntime": [{"path": "/bin/sh",
                                "args": ["custom-argv0", "-c", r'tr "\0" "\n" < /proc/$$/cmdline > "$0"', out]}]}
    b = hooked_bundle(make_bundle, hooks, table)
    lifecycle(runtime, b, "argv0")
    assert Path(out).read_text().splitlines()[0] == "custom-argv0"


@pytest.mark.parametrize("kind", ["createRuntime", "startContainer"])
def test_hook_gets_only_its_own_env(runtime, make_bundle, hooks, kind):
    d = "/hostlog" if kind == "startContainer" else str(hooks.path)
    table = {kind: [hooks.hook(kind, "argv.sh", args=["argv.sh", d], env=["FOO=bar", "HOOK_ONLY=1 2"])]}
    b = hooked_bundle(make_bundle, hooks, table)
    b.config["process"]["env"].append("CONTAINER_VAR=leak")
    b.write()
    lifecycle(runtime, b, "env")
    assert hooks.text("env").splitlines() == ["FOO=bar", "HOOK_ONLY=1 2"]


def test_hook_without_env_gets_empty_env(runtime, make_bundle, hooks):
    table = {"poststart": [hooks.hook("poststart", "argv.sh", args=["argv.sh", str(hooks.path)])]}
    b = hooked_bundle(make_bundle, hooks, table)
    lifecycle(runtime, b, "noenv")
    assert hooks.text("env") == ""


# --- where hooks run ------------------------------------------------------------


def test_runtime_namespace_hooks(runtime, make_bundle, hooks):
    kinds = ("prestart", "createRuntime", "poststart", "poststop")
    b = hooked_bundle(make_bundle, hooks, {k: [hooks.hook(k)] for k in kinds})
    lifecycle(runtime, b, "rtns")
    mine = ns_of("self")
    host = os.uname().nodename
    for k in kinds:
        assert hooks.ns(k) == mine, k
        assert hooks.text(f"{k}.hostname").strip() == host, k


def test_create_container_hook_runs_in_container_namespaces(runtime, make_bundle, hooks):
    # its path resolves in the runtime namespace: the script exists only on the host
    b = hooked_bundle(make_bundle, hooks, {"createContainer": [hooks.hook("createContainer")]})
    runtime.create("cc", b)
    init = ns_of(runtime.state("cc")["pid"])
    assert hooks.ns("createContainer") == init
    assert init["mnt"] != ns_of("self")["mnt"]


def test_start_container_hook_runs_in_container(runtime, make_bundle, hooks):
    # its path resolves in the container: /hooks/record.sh exists only in the rootfs
    assert not os.path.exists("/hooks/record.sh")
    b = hooked_bundle(make_bundle, hooks, {"startContainer": [hooks.hook("startContainer")]})
    runtime.create("sc", b)
    pid = runtime.state("sc")["pid"]
    runtime("start", "sc", check=True)
    assert hooks.ns("startContainer") == ns_of(pid)
    assert hooks.text("startContainer.hostname") == "pyrunc-test\n"


def test_start_container_path_on_host_only_fails_start(runtime, make_bundle, hooks):
    # a host path that does not exist in the container: startContainer must not find it
    b = hooked_bundle(make_bundle, hooks,
                      {"startContainer": [{"path": str(hooks.path / "record.sh"),
                                           "args": ["record.sh", "startContainer", "/hostlog"]}]},
                      args=["sh", "-c", "echo ran > /hostlog/ran; sleep 300"])
    runtime.create("scpath", b)
    p = runtime("start", "scpath")
    assert p.returncode != 0
    assert runtime.wait_status("scpath", "stopped")
    assert not (hooks.path / "ran").exists()
    assert hooks.log() == []


# --- failures ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create_and_leaves_nothing(runtime, make_bundle, hooks, kind):
    table = {kind: [hooks.hook(kind, "fail.sh")]}
    later = {"prestart": "createRuntime", "createRuntime": "createContainer", "createContainer": "startContainer"}
    table[later[kind]] = [hooks.hook(later[kind])]
    b = hooked_bundle(make_bundle, hooks, table)
    p = runtime.create("fail", b, check=False)
    assert p.returncode != 0
    assert f"hook {kind} says no" in p.stderr or "exit status 3" in p.stderr, p.stderr
    assert hooks.log() == [kind]  # the later hooks did not run
    assert_nothing_left(runtime, b)
    if kind == "createContainer":
        assert live_in_pidns(hooks.text(f"{kind}.pidns").strip()) == []
    else:
        assert gone(hooks.state(kind)["pid"])


def test_failing_create_runtime_hook_still_runs_poststop(runtime, make_bundle, hooks):
    b = hooked_bundle(make_bundle, hooks, {"createRuntime": [hooks.hook("createRuntime", "fail.sh")],
                                          "poststop": [hooks.hook("poststop")]})
    p = runtime.create("fail-ps", b, check=False)
    assert p.returncode != 0
    assert hooks.log() == ["createRuntime", "poststop"]
    assert hooks.state("poststop")["status"] == "stopped"
    assert_nothing_left(runtime, b)


def test_failing_start_container_hook_fails_start(runtime, make_bundle, hooks):
    b = hooked_bundle(make_bundle, hooks, {"startContainer": [hooks.hook("startContainer", "fail.sh")],
                                          "poststart": [hooks.hook("poststart")],
                                          "poststop": [hooks.hook("poststop")]},
                      args=["sh", "-c", "echo ran > /hostlog/ran; sleep 300"])
    runtime.create("scfail", b)
    pid = runtime.state("scfail")["pid"]
    p = runtime("start", "scfail")
    assert p.returncode != 0
    assert runtime.wait_status("scfail", "stopped")
    assert gone(pid)
    assert not (hooks.path / "ran").exists()  # the user program never ran
    assert hooks.log() == ["startContainer"]  # nor did poststart
    runtime("delete", "scfail", check=True)
    assert hooks.log() == ["startContainer", "poststop"]
    assert_nothing_left(runtime, b)


def test_failing_poststart_hook_fails_start_and_stops_container(runtime, make_bundle, hooks):
    b = hooked_bundle(make_bundle, hooks, {"poststart": [hooks.hook("poststart", "fail.sh"),
                                                         hooks.hook("poststart", name="poststart2")]})
    runtime.create("psfail", b)
    pid = runtime.state("psfail")["pid"]
    p = runtime("start", "psfail")
    assert p.returncode != 0
    assert runtime.wait_status("psfail", "stopped")
    assert gone(pid)
    assert hooks.log() == ["poststart"]
    runtime("delete", "psfail", check=True)
    assert_nothing_left(runtime, b)


def test_failing_poststop_hook_only_warns(runtime, make_bundle, hooks):
    b = hooked_bundle(make_bundle, hooks, {"poststop": [hooks.hook("poststop", "fail.sh"),
                                                        hooks.hook("poststop", name="poststop2")]},
                      args=["true"])
    runtime.create("pstop", b)
    runtime("start", "pstop", check=True)
    assert runtime.wait_status("pstop", "stopped")
    p = runtime("delete", "pstop")
    assert p.returncode == 0, p.stderr
    assert "poststop" in p.stderr  # the warning
    assert hooks.log() == ["poststop", "poststop2"]  # the remaining hooks still run
    assert_nothing_left(runtime, b)


def test_delete_force_of_running_container_runs_poststop(runtime, make_bundle, hooks):
    b = hooked_bundle(make_bundle, hooks, {"poststop": [hooks.hook("poststop")]})
    runtime.create("force", b)
    pid = runtime.state("force")["pid"]
    runtime("start", "force", check=True)
    assert hooks.log() == []
    runtime("delete", "--force", "force", check=True)
    assert hooks.log() == ["poststop"]
    assert hooks.state("poststop")["status"] == "stopped"
    assert gone(pid)
    assert_nothing_left(runtime, b)


def test_hook_timeout_kills_hook_and_fails_create(runtime, make_bundle, hooks):
    b = hooked_bundle(make_bundle, hooks, {"createRuntime": [hooks.hook("createRuntime", "hang.sh", timeout=1)],
                                          "createContainer": [hooks.hook("createContainer")]})
    p = runtime.create("tmo", b, check=False, timeout=20)
    assert p.returncode != 0
    assert gone(int(hooks.text("createRuntime.pid")))
    assert hooks.log() == ["createRuntime"]
    assert_nothing_left(runtime, b)


def test_poststart_timeout_fails_start(runtime, make_bundle, hooks):
    b = hooked_bundle(make_bundle, hooks, {"poststart": [hooks.hook("poststart", "hang.sh", timeout=1)]})
    runtime.create("pstmo", b)
    p = runtime("start", "pstmo", timeout=20)
    assert p.returncode != 0
    assert gone(int(hooks.text("poststart.pid")))
    assert runtime.wait_status("pstmo", "stopped")
    runtime("delete", "pstmo", check=True)


def test_relative_hook_path_refused_at_create(runtime, make_bundle, hooks):
    kind = "poststop"  # refused at create even though it would only run at delete
    table = {k: [hooks.hook(k)] for k in ("prestart", "createRuntime")}
    table.setdefault(kind, []).append({"path": "hooks/record.sh", "args": ["record.sh", "rel", str(hooks.path)]})
    b = hooked_bundle(make_bundle, hooks, table)
    p = runtime.create("rel", b, check=False)
    assert p.returncode != 0
    assert "hooks/record.sh" in p.stderr
    assert hooks.log() == []  # refused before anything ran
    assert_nothing_left(runtime, b)
