"""containerd 1.6 + shim runc.v2 through `ctr run --runc-binary <runtime>`, with pyrunc and with runc.

The containerd is private (tools/clients/start-containerd.sh; config, state and socket under
/var/tmp/pyrunc-containerd) and is stopped by its PID at the end of the session if the session
started it. Every container/task made here is killed and deleted at the end of its test or module.
"""

import itertools
import json
import os
import re
import shutil
import signal
import time

import pytest

from clientlib import (BUSYBOX, CAP_NET_RAW_BIT, CAPEFF_CTR_DEFAULT, DEBIAN, alive, capeff, cgroup_dirs, handles,
                       cgroup_value, lines, show, tty_run, wait_for)

pytestmark = pytest.mark.clients

if not shutil.which("ctr") or not shutil.which("containerd"):
    pytest.skip("containerd/ctr not installed (run ../shared/tools/clients/setup.sh)", allow_module_level=True)

LOOP = 'trap "exit 0" TERM; echo started; while :; do sleep 0.2; done'
TOKEN = f"tok-{os.getpid()}-{int(time.time())}"
SHIM_ROOT = "/run/containerd/runc/default"     # the shim's --root for namespace "default"
_seq = itertools.count(1)


class Ctr:
    """ctr (namespace default) with --runc-binary <runtime>; remembers every container ID it hands out."""

    def __init__(self, containerd, runtime):
        self.cd = containerd
        self.rt = runtime
        self.ids = []

    def __call__(self, *args, timeout=60, input=None):
        return self.cd.ctr(*args, timeout=timeout, input=input)

    def new_id(self):
        i = f"pyrunc-it-{os.getpid()}-{self.rt.name}-{next(_seq)}"
        self.ids.append(i)
        return i

    def run(self, *args, image=BUSYBOX, cmd=(), timeout=60):
        """`ctr run --rm --runc-binary RT ARGS IMAGE ID CMD` (foreground)."""
        return self("run", "--rm", "--runc-binary", self.rt.path, *args, image, self.new_id(), *cmd,
                    timeout=timeout)

    def detached(self, *args, cmd=("sh", "-c", LOOP), trap=signal.SIGTERM):
        """Start a detached task, wait until it runs and its init handles `trap` (None: no trap)."""
        cid = self.new_id()
        cp = self("run", "-d", "--runc-binary", self.rt.path, *args, BUSYBOX, cid, *cmd)
        assert cp.returncode == 0, show(cp)
        assert wait_for(lambda: self.task(cid)[1] == "RUNNING"), self.task(cid)
        if trap is not None:
            assert wait_for(lambda: handles(self.task(cid)[0], trap), 10, 0.01), f"{cid}: no trap for {trap}"
        return cid

    def task(self, cid):
        """(pid, STATUS) from `ctr task ls`, or (None, None)."""
        for ln in lines(self("task", "ls").stdout)[1:]:
            f = ln.split()
            if f[0] == cid:
                return int(f[1]), f[2]
        return None, None

    def remove(self, ids):
        for cid in ids:
            if self.task(cid)[1] is not None:
                self("task", "kill", "-a", "-s", "SIGKILL", cid)
                wait_for(lambda: self.task(cid)[1] in (None, "STOPPED"), 5)
                self("task", "rm", "-f", cid)
            self("container", "rm", cid)


@pytest.fixture(scope="module")
def ctrd(containerd, runtime):
    if BUSYBOX not in lines(containerd.ctr("images", "ls", "-q").stdout):
        pytest.skip(f"image {BUSYBOX} not in containerd (run setup.sh, then start-containerd.sh)")
    c = Ctr(containerd, runtime)
    yield c
    c.remove(c.ids)


@pytest.fixture
def ctr(ctrd):
    before = len(ctrd.ids)
    yield ctrd
    ctrd.remove(ctrd.ids[before:])
    del ctrd.ids[before:]


@pytest.fixture(scope="module")
def limited(ctrd):
    """A long-running task with a memory and CPU limit, shared by the read-only checks."""
    return ctrd.detached("--memory-limit", str(48 << 20), "--cpus", "0.5", "--env", "FOO=bar")


# ------------------------------------------------------------------------------- foreground `run`
def test_run_output_and_exit_code(ctr):
    cp = ctr.run(cmd=["sh", "-c", f"echo out-{TOKEN}; exit 7"])
    assert cp.returncode == 7, show(cp)
    assert lines(cp.stdout) == [f"out-{TOKEN}"], show(cp)
    cp = ctr.run(cmd=["true"])
    assert (cp.returncode, cp.stdout) == (0, ""), show(cp)


def test_run_env_cwd_pid1(ctr):
    cp = ctr.run("--env", "FOO=bar", "--cwd", "/tmp", cmd=["sh", "-c", "echo $FOO $(pwd) $$"])
    assert (cp.returncode, lines(cp.stdout)) == (0, ["bar /tmp 1"]), show(cp)


def test_run_bind_ro_and_rw(ctr, workdir):
    src = workdir / f"ctr-ro-{ctr.rt.name}.txt"
    src.write_text(f"{TOKEN}\n")
    d = workdir / f"ctr-rw-{ctr.rt.name}"
    d.mkdir(exist_ok=True)
    cp = ctr.run("--mount", f"type=bind,src={src},dst=/mnt/t.txt,options=rbind:ro",
                 "--mount", f"type=bind,src={d},dst=/mnt/d,options=rbind:rw",
                 cmd=["sh", "-c", "cat /mnt/t.txt; echo x 2>/dev/null >/mnt/t.txt && echo WROTE || echo ro-ok; "
                                  f"echo ctr-{TOKEN} > /mnt/d/out.txt && echo rw-ok"])
    assert (cp.returncode, lines(cp.stdout)) == (0, [TOKEN, "ro-ok", "rw-ok"]), show(cp)
    assert src.read_text() == f"{TOKEN}\n"
    assert (d / "out.txt").read_text() == f"ctr-{TOKEN}\n"


def test_run_read_only(ctr):
    cp = ctr.run("--read-only", cmd=["sh", "-c", "touch /x 2>/dev/null && echo rw || echo ro-ok"])
    assert (cp.returncode, lines(cp.stdout)) == (0, ["ro-ok"]), show(cp)


def test_run_capabilities_default_and_drop(ctr):
    cp = ctr.run(cmd=["cat", "/proc/self/status"])
    assert cp.returncode == 0 and capeff(cp.stdout) == CAPEFF_CTR_DEFAULT, show(cp)
    cp = ctr.run("--cap-drop", "CAP_NET_RAW", cmd=["cat", "/proc/self/status"])
    want = int(CAPEFF_CTR_DEFAULT, 16) & ~CAP_NET_RAW_BIT
    assert cp.returncode == 0 and capeff(cp.stdout) == f"{want:016x}", show(cp)


def test_run_missing_binary(ctr):
    cp = ctr.run(cmd=["/nonexistent"])
    assert cp.returncode != 0, show(cp)
    # the shim shows the runtime's last JSON error log line: it must name the cause
    assert re.search(r"nonexistent.*(no such file|not found)", cp.stderr, re.I), show(cp)


def test_run_tty(ctr):
    cid = ctr.new_id()
    rc, out = tty_run(f"ctr --address {ctr.cd.address} -n default run --rm -t --runc-binary {ctr.rt.path} "
                      f"{BUSYBOX} {cid} sh -c 'tty; [ -t 0 ] && [ -t 1 ] && echo both-tty; exit 3'")
    assert re.search(r"/dev/pts/\d+$", out, re.M) and "both-tty" in out, out
    assert rc == 3, out


def test_run_debian_glibc(ctr):
    if DEBIAN not in lines(ctr("images", "ls", "-q").stdout):
        pytest.skip(f"image {DEBIAN} not in containerd")
    cp = ctr.run(image=DEBIAN, cmd=["bash", "-c", "cat /etc/debian_version; getent passwd root | cut -d: -f1,7"])
    out = lines(cp.stdout)
    assert cp.returncode == 0 and re.match(r"^12\.", out[0]) and out[1] == "root:/bin/bash", show(cp)


# -------------------------------------------------------------------------------- a detached task
def test_task_runs_on_this_runtime(ctr, limited):
    pid, status = ctr.task(limited)
    assert status == "RUNNING" and alive(pid)
    cp = ctr.rt.state(limited, root=SHIM_ROOT)
    assert cp.returncode == 0, show(cp)
    st = json.loads(cp.stdout)
    assert (st["status"], st["pid"]) == ("running", pid), st


def test_memory_and_cpu_limits_in_cgroup(ctr, limited):
    pid, _ = ctr.task(limited)
    path, v = cgroup_value(pid, "memory")
    assert v == str(48 << 20), path
    assert path.split("/")[-3:-1] == ["default", limited], path
    path, v = cgroup_value(pid, "cpu")
    assert v == "50000", path


def test_task_ps(ctr, limited):
    pid, _ = ctr.task(limited)
    cp = ctr("task", "ps", limited)
    assert cp.returncode == 0, show(cp)
    pids = [int(ln.split()[0]) for ln in lines(cp.stdout)[1:]]
    assert pid in pids, show(cp)
    # every listed PID is the container's: a sleep of the loop besides the init
    # `start` returns before the init's execve (as runc's does)
    assert wait_for(lambda: open(f"/proc/{pid}/comm").read().strip() == "sh", 5, 0.01)
    comms, nss = {}, {}
    for p in pids:
        try:  # a `sleep 0.2` of the loop may be gone by now
            comms[p] = open(f"/proc/{p}/comm").read().strip()
            nss[p] = os.readlink(f"/proc/{p}/ns/pid")
        except FileNotFoundError:
            continue
    assert comms.get(pid) == "sh", comms
    assert set(nss.values()) == {nss[pid]}, (nss, comms)


def test_task_metrics_memory(ctr, limited):
    cp = ctr("task", "metrics", "--format", "json", limited)
    assert cp.returncode == 0, show(cp)
    m = json.loads(cp.stdout)
    mem = m["memory"]["usage"] if "usage" in m.get("memory", {}) else None
    if mem is not None:                                # cgroup v1 metrics
        assert mem["usage"] > 0 and mem["limit"] == 48 << 20, m["memory"]
    else:                                              # cgroup v2 metrics
        assert m["memory"]["usage"] > 0 and m["memory"]["usage_limit"] == 48 << 20, m["memory"]
    assert m["pids"]["current"] >= 1, m


def test_exec_output_and_exit_code(ctr, limited):
    cp = ctr("task", "exec", "--exec-id", "e1", limited, "sh", "-c", f"echo exec-{TOKEN} $FOO $$")
    out = lines(cp.stdout)
    assert cp.returncode == 0 and out[0].split()[:2] == [f"exec-{TOKEN}", "bar"], show(cp)
    assert out[0].split()[2] != "1", show(cp)
    cp = ctr("task", "exec", "--exec-id", "e2", limited, "sh", "-c", "exit 5")
    assert cp.returncode == 5, show(cp)
    cp = ctr("task", "exec", "--exec-id", "e3", "--cwd", "/tmp", "--user", "1000", limited,
             "sh", "-c", 'echo $(id -u) $(pwd); tr "\\0" " " < /proc/1/cmdline')
    out = lines(cp.stdout)
    assert cp.returncode == 0 and out[0] == "1000 /tmp" and "trap" in out[1], show(cp)


def test_exec_tty(ctr, limited):
    rc, out = tty_run(f"ctr --address {ctr.cd.address} -n default task exec -t --exec-id t1 {limited} "
                      "sh -c 'tty; [ -t 0 ] && echo in-tty; exit 4'")
    assert re.search(r"/dev/pts/\d+$", out, re.M) and "in-tty" in out, out
    assert rc == 4, out


# ---------------------------------------------------------------------- state-changing operations
def test_pause_resume(ctr):
    cid = ctr.detached()
    pid, _ = ctr.task(cid)
    cp = ctr("task", "pause", cid)
    assert cp.returncode == 0, show(cp)
    assert ctr.task(cid)[1] == "PAUSED"
    path, v = cgroup_value(pid, "freezer")
    assert v == "FROZEN", path
    st = json.loads(ctr.rt.state(cid, root=SHIM_ROOT).stdout)
    assert st["status"] == "paused", st
    cp = ctr("task", "resume", cid)
    assert cp.returncode == 0, show(cp)
    assert ctr.task(cid)[1] == "RUNNING"
    assert cgroup_value(pid, "freezer")[1] == "THAWED"
    cp = ctr("task", "exec", "--exec-id", "after", cid, "echo", "alive")
    assert lines(cp.stdout) == ["alive"], show(cp)


def test_kill_term_then_delete(ctr):
    cid = ctr.detached()
    pid, _ = ctr.task(cid)
    dirs = cgroup_dirs(pid)
    assert dirs
    cp = ctr("task", "kill", "-s", "SIGTERM", cid)
    assert cp.returncode == 0, show(cp)
    assert wait_for(lambda: ctr.task(cid)[1] == "STOPPED"), ctr.task(cid)
    assert not alive(pid)
    cp = ctr("task", "rm", cid)
    # ctr warns "exit with non-zero exit code N" on delete: none here, the trap exited 0
    assert cp.returncode == 0 and "exit code" not in cp.stderr, show(cp)
    assert ctr.task(cid) == (None, None)
    cp = ctr("container", "rm", cid)
    assert cp.returncode == 0, show(cp)
    assert cid not in lines(ctr("containers", "ls", "-q").stdout)
    assert ctr.rt.state(cid, root=SHIM_ROOT).returncode != 0
    left = [d for d in dirs if d.exists()]
    assert not left, f"cgroup dirs left: {left}"


def test_kill_all_sigkill_exit_137(ctr):
    cid = ctr.detached(cmd=("sh", "-c", "sleep 1000 & sleep 1000"), trap=None)
    ps = lambda: [int(ln.split()[0]) for ln in lines(ctr("task", "ps", cid).stdout)[1:]]
    pids = wait_for(lambda: (lambda p: p if len(p) >= 2 else None)(ps()), 5)
    assert pids, ps()
    cp = ctr("task", "kill", "--all", "-s", "SIGKILL", cid)
    assert cp.returncode == 0, show(cp)
    assert wait_for(lambda: ctr.task(cid)[1] == "STOPPED"), ctr.task(cid)
    cp = ctr("task", "rm", cid)
    assert cp.returncode == 0 and "exit code 137" in cp.stderr, show(cp)
    assert ctr.task(cid) == (None, None)
    assert not [p for p in pids if alive(p)]
