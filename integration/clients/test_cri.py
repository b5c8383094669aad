"""containerd's CRI plugin (what a kubelet talks to) with the runtime handler whose BinaryName is the
runtime under test — what a Kubernetes RuntimeClass selects. start-containerd.sh defines the handlers
`pyrunc` (/usr/local/bin/pyrunc) and `runc` (/usr/sbin/runc).

The CRI calls go through cri_bridge.py, run by the CRI client's venv python (tools/clients/cri-setup.sh),
which reuses the stubs tools/clients/cri.py loads. Pods use the host network (containerd 1.6 needs a CNI
IP otherwise) and cgroup parent /pyrunc-smoke; every pod and container made here is removed at the end.
"""

import base64
import itertools
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from clientlib import BUSYBOX, CLIENT_TOOLS, alive, cgroup_dirs, cgroup_value, handles, lines, show, wait_for

pytestmark = pytest.mark.clients

VENV_PY = Path("/opt/clients/cri/venv/bin/python")
GEN = Path(os.environ.get("CRI_GEN", "/opt/clients/cri/gen"))
if not VENV_PY.exists() or not (GEN / "api_pb2.py").exists():
    pytest.skip("CRI client missing: run ../shared/tools/clients/cri-setup.sh API_PROTO", allow_module_level=True)
if not (CLIENT_TOOLS / "cri.py").exists():
    pytest.skip(f"{CLIENT_TOOLS}/cri.py missing", allow_module_level=True)

SHIM_ROOT = "/run/containerd/runc/k8s.io"     # the shim's --root for the CRI namespace
CGROUP_PARENT = "/pyrunc-smoke"
LOOP = 'trap "exit 0" TERM; echo started; while :; do sleep 0.2; done'
_seq = itertools.count(1)


class CRIError(Exception):
    def __init__(self, code, details):
        super().__init__(f"{code}: {details}")
        self.code = code


class CRI:
    def __init__(self, address):
        self.proc = subprocess.Popen([str(VENV_PY), str(Path(__file__).with_name("cri_bridge.py")),
                                      str(CLIENT_TOOLS), address],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def __call__(self, method, rpc_timeout=60, **params):
        """One CRI call; params are the request's fields (proto names). Raises CRIError."""
        self.proc.stdin.write(json.dumps({"method": method, "params": params, "timeout": rpc_timeout}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise CRIError("BRIDGE", f"bridge exited with {self.proc.wait()}")
        r = json.loads(line)
        if not r["ok"]:
            raise CRIError(r["code"], r["details"])
        return r["result"]

    def close(self):
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def cri(containerd):
    c = CRI(containerd.address)
    try:
        c("Version")
        imgs = {t for i in c("ListImages").get("images", []) for t in i.get("repo_tags", [])}
        if BUSYBOX not in imgs or "localhost/pyrunc-pause:latest" not in imgs:
            pytest.skip(f"images not in containerd's k8s.io namespace: {sorted(imgs)}")
        yield c
    finally:
        c.close()


class Pods:
    """Pods and containers of one runtime handler; removes what it made."""

    def __init__(self, cri, runtime, handler, workdir):
        self.cri, self.rt, self.handler, self.workdir = cri, runtime, handler, workdir
        self.pods, self.ctrs = [], []

    def run_pod(self):
        n = f"pyrunc-it-{os.getpid()}-{self.rt.name}-{next(_seq)}"
        logdir = self.workdir / "podlogs" / n
        logdir.mkdir(parents=True, exist_ok=True)
        cfg = {"metadata": {"name": n, "uid": f"uid-{n}", "namespace": "default", "attempt": 0},
               "log_directory": str(logdir),
               "linux": {"cgroup_parent": CGROUP_PARENT,
                         "security_context": {"namespace_options": {"network": "NODE"}}}}
        pod = self.cri("RunPodSandbox", config=cfg, runtime_handler=self.handler)["pod_sandbox_id"]
        self.pods.append(pod)
        return pod, cfg

    def container(self, pod, cfg, name, command=("sh", "-c", LOOP), resources=None, start=True):
        ccfg = {"metadata": {"name": name, "attempt": 0}, "image": {"image": BUSYBOX},
                "command": list(command), "envs": [{"key": "FOO", "value": "bar"}], "log_path": f"{name}.log",
                "linux": {"resources": resources or {}}}
        cid = self.cri("CreateContainer", pod_sandbox_id=pod, config=ccfg, sandbox_config=cfg)["container_id"]
        self.ctrs.append(cid)
        if start:
            self.cri("StartContainer", container_id=cid)
        return cid

    def status(self, cid):
        return self.cri("ContainerStatus", container_id=cid, verbose=True)

    def pid(self, cid):
        return json.loads(self.status(cid)["info"]["info"])["pid"]

    def cleanup(self, pods=None, ctrs=None):
        for cid in (self.ctrs if ctrs is None else ctrs):
            for m, kw in (("StopContainer", {"timeout": 0}), ("RemoveContainer", {})):
                try:
                    self.cri(m, container_id=cid, **kw)
                except CRIError:
                    pass
        for pod in (self.pods if pods is None else pods):
            for m in ("StopPodSandbox", "RemovePodSandbox"):
                try:
                    self.cri(m, pod_sandbox_id=pod)
                except CRIError:
                    pass


@pytest.fixture(scope="module")
def pods(cri, containerd, runtime, workdir):
    handlers = containerd.handlers()
    names = [h for h, b in handlers.items()
             if b == runtime.path or os.path.realpath(b) == os.path.realpath(runtime.path)]
    if not names:
        pytest.skip(f"no CRI handler with BinaryName {runtime.path} in {containerd.config}: {handlers}")
    p = Pods(cri, runtime, runtime.name if runtime.name in names else names[0], workdir)
    yield p
    p.cleanup()


@pytest.fixture
def fresh(pods):
    """The Pods helper, removing the pods and containers this test made when it ends."""
    np, nc = len(pods.pods), len(pods.ctrs)
    yield pods
    pods.cleanup(pods.pods[np:], pods.ctrs[nc:])
    del pods.pods[np:], pods.ctrs[nc:]


@pytest.fixture(scope="module")
def pod(pods):
    return pods.run_pod()


@pytest.fixture(scope="module")
def c1(pods, pod):
    """A running container with memory and CPU limits, shared by the read-only checks."""
    return pods.container(*pod, "c1", resources={"memory_limit_in_bytes": str(64 << 20),
                                                 "cpu_period": "100000", "cpu_quota": "50000"})


def execsync(cri, cid, *cmd, timeout=10):
    r = cri("ExecSync", rpc_timeout=timeout + 20, container_id=cid, cmd=list(cmd), timeout=timeout)
    return (r.get("exit_code", 0), base64.b64decode(r.get("stdout", "")).decode(),
            base64.b64decode(r.get("stderr", "")).decode())


# ----------------------------------------------------------------------------------------- tests
def test_pod_sandbox_ready_on_this_runtime(pods, pod):
    pod_id, _cfg = pod
    st = pods.cri("PodSandboxStatus", pod_sandbox_id=pod_id, verbose=True)
    assert st["status"]["state"] == "SANDBOX_READY", st["status"]
    assert st["status"]["runtime_handler"] == pods.handler
    # the pause container was created by this runtime: it knows it under the shim's --root
    cp = pods.rt.state(pod_id, root=SHIM_ROOT)
    assert cp.returncode == 0, show(cp)
    state = json.loads(cp.stdout)
    assert state["status"] == "running" and alive(state["pid"]), state
    path, _ = cgroup_value(state["pid"], "memory")
    assert f"{CGROUP_PARENT}/{pod_id}/" in path, path


def test_container_running_on_this_runtime(pods, c1):
    st = pods.status(c1)
    assert st["status"]["state"] == "CONTAINER_RUNNING", st["status"]
    pid = pods.pid(c1)
    cp = pods.rt.state(c1, root=SHIM_ROOT)
    assert cp.returncode == 0, show(cp)
    state = json.loads(cp.stdout)
    assert (state["status"], state["pid"]) == ("running", pid), state
    # `start` returns before the init's execve (as runc's does)
    assert wait_for(lambda: open(f"/proc/{pid}/comm").read().strip() == "sh", 5, 0.01)


def test_container_limits_in_cgroup(pods, c1):
    pid = pods.pid(c1)
    path, v = cgroup_value(pid, "memory")
    assert v == str(64 << 20), path
    assert f"{CGROUP_PARENT}/{c1}/" in path, path
    path, v = cgroup_value(pid, "cpu")
    assert v == "50000", path
    rc, out, err = execsync(pods.cri, c1, "sh", "-c",
                            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max")
    assert (rc, lines(out)) == (0, [str(64 << 20)]), (rc, out, err)


def test_exec_sync_output(pods, c1):
    rc, out, err = execsync(pods.cri, c1, "sh", "-c",
                            'echo $FOO; echo $$; cat /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" " "; echo; echo to-stderr >&2')
    o = lines(out)
    # the pod's PID namespace: the exec sees the container's loop (and the pod's pause as PID 1)
    assert rc == 0 and o[0] == "bar" and o[1] != "1" and "trap" in o[2], (rc, out, err)
    assert lines(err) == ["to-stderr"], (rc, out, err)


def test_exec_sync_exit_code(pods, c1):
    rc, out, err = execsync(pods.cri, c1, "sh", "-c", "exit 4")
    assert rc == 4, (rc, out, err)


def test_container_stats_memory(pods, c1):
    s = pods.cri("ContainerStats", container_id=c1)["stats"]
    mem = s.get("memory", {})
    ws = int(mem.get("working_set_bytes", {}).get("value", 0))
    usage = int(mem.get("usage_bytes", {}).get("value", 0))
    assert ws > 0 or usage > 0, s
    assert s["attributes"]["id"] == c1


def test_container_log(pods, pod, c1):
    log = Path(pod[1]["log_directory"]) / "c1.log"
    text = wait_for(lambda: log.exists() and "started" in log.read_text() and log.read_text(), 5)
    assert text, log.read_text() if log.exists() else f"{log} missing"
    # CRI log format: TIMESTAMP STREAM TAG MESSAGE
    assert any(ln.split(" ", 3)[1:] == ["stdout", "F", "started"] for ln in text.splitlines()), text


def test_update_container_resources(fresh, pod):
    cid = fresh.container(*pod, "c-update", resources={"memory_limit_in_bytes": str(64 << 20),
                                                       "cpu_period": "100000", "cpu_quota": "50000"})
    pid = fresh.pid(cid)
    fresh.cri("UpdateContainerResources", container_id=cid,
              linux={"memory_limit_in_bytes": str(96 << 20), "cpu_period": "100000", "cpu_quota": "30000"})
    path, v = cgroup_value(pid, "memory")
    assert v == str(96 << 20), path
    path, v = cgroup_value(pid, "cpu")
    assert v == "30000", path
    rc, out, err = execsync(fresh.cri, cid, "sh", "-c",
                            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max")
    assert (rc, lines(out)) == (0, [str(96 << 20)]), (rc, out, err)


def test_stop_sigterm_then_remove(fresh, pod):
    cid = fresh.container(*pod, "c-stop")
    pid = fresh.pid(cid)
    # the pod shares one PID namespace: the shell is no PID 1, a TERM before its trap kills it
    assert wait_for(lambda: handles(pid, signal.SIGTERM), 10, 0.01)
    dirs = cgroup_dirs(pid)
    t0 = time.monotonic()
    fresh.cri("StopContainer", container_id=cid, timeout=20)
    took = time.monotonic() - t0
    st = fresh.status(cid)["status"]
    assert (st["state"], st.get("exit_code", 0)) == ("CONTAINER_EXITED", 0), st
    assert took < 15, took              # the trap answered SIGTERM: no SIGKILL after the timeout
    assert not alive(pid)
    fresh.cri("RemoveContainer", container_id=cid)
    with pytest.raises(CRIError) as e:
        fresh.status(cid)
    assert e.value.code == "NOT_FOUND"
    assert fresh.rt.state(cid, root=SHIM_ROOT).returncode != 0
    left = [d for d in dirs if d.exists()]
    assert not left, f"cgroup dirs left: {left}"


def test_stop_kills_after_timeout(fresh, pod):
    cid = fresh.container(*pod, "c-stubborn", command=("sh", "-c", 'trap "" TERM; while :; do sleep 0.2; done'))
    pid = fresh.pid(cid)
    assert wait_for(lambda: handles(pid, signal.SIGTERM, ignored=True), 10, 0.01)
    fresh.cri("StopContainer", container_id=cid, timeout=1)
    st = fresh.status(cid)["status"]
    assert (st["state"], st.get("exit_code", 0)) == ("CONTAINER_EXITED", 137), st
    assert not alive(pid)


def test_pod_stop_and_remove(fresh):
    pod, cfg = fresh.run_pod()
    cid = fresh.container(pod, cfg, "c-in-pod")
    pid = fresh.pid(cid)
    pause = json.loads(fresh.rt.state(pod, root=SHIM_ROOT).stdout)["pid"]
    dirs = cgroup_dirs(pid) | cgroup_dirs(pause)
    fresh.cri("StopPodSandbox", pod_sandbox_id=pod)
    st = fresh.cri("PodSandboxStatus", pod_sandbox_id=pod)["status"]
    assert st["state"] == "SANDBOX_NOTREADY", st
    assert fresh.status(cid)["status"]["state"] == "CONTAINER_EXITED"
    assert wait_for(lambda: not alive(pid) and not alive(pause), 5)
    fresh.cri("RemovePodSandbox", pod_sandbox_id=pod)
    for m, kw in (("PodSandboxStatus", {"pod_sandbox_id": pod}), ("ContainerStatus", {"container_id": cid})):
        with pytest.raises(CRIError) as e:
            fresh.cri(m, **kw)
        assert e.value.code == "NOT_FOUND", (m, e.value)
    ids = {p["id"] for p in fresh.cri("ListPodSandbox").get("items", [])}
    assert pod not in ids
    for i in (pod, cid):
        assert fresh.rt.state(i, root=SHIM_ROOT).returncode != 0
    left = [d for d in dirs if d.exists()]
    assert not left, f"cgroup dirs left: {left}"
