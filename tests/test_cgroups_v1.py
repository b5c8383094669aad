"""cgroup v1 (hybrid host) with real containers: paths, every resource, OOM,
pids, freezer, update, ps, events and kill --all.

Values are read back from the directories pyrunc recorded in
`<root>/<id>/state.json` ("cgroup" → "paths"), membership is proven with
/proc/<pid>/cgroup, and where pyrunc should have put a cgroup is computed
here independently from /proc/self/cgroup and /proc/self/mountinfo.

IDs and cgroupsPaths carry a per-session suffix: the default cgroup of a
container sits directly below the runtime's own cgroup (often a hierarchy
root), shared with anything else running on the machine.
"""

import errno
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from support import base_config, rmdir_cgroup

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/sys/fs/cgroup/memory") or os.path.exists("/sys/fs/cgroup/cgroup.controllers"),
    reason="needs a cgroup v1 (or hybrid) host")

SUF = uuid.uuid4().hex[:8]
MiB = 1024 * 1024
V1 = ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "name=systemd")


def cid(name):
    return f"{name}-{SUF}"


# --- the host's hierarchies, read independently of pyrunc -------------------

def host_hierarchies():
    """{paths key: (mountpoint, this process's cgroup in it)}; "" is the unified one."""
    own = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, path = line.rstrip("\n").split(":", 2)
            for c in (ctrls.split(",") if ctrls else [""]):
                own[c] = path
    out = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fl, fr = left.split(), right.split()
            if fr[0] == "cgroup":
                for c in fr[2].split(","):
                    if c in V1 and c not in out:
                        out[c] = (fl[4], own.get(c, "/"))
            elif fr[0] == "cgroup2" and fl[4] == "/sys/fs/cgroup/unified":
                out[""] = (fl[4], own.get("", "/"))
    return out


HOST = host_hierarchies()


def v1_mounted(controller):
    with open("/proc/self/mountinfo") as f:
        return any(r.split()[0] == "cgroup" and controller in r.split()[2].split(",")
                   for r in (line.partition(" - ")[2] for line in f))


def expected_paths(inner):
    """Where runc puts cgroupsPath `inner` (absolute: below each root; else below our own cgroup)."""
    out = {}
    for key, (mnt, own) in HOST.items():
        base = mnt if inner.startswith("/") else mnt.rstrip("/") + own
        out[key] = base.rstrip("/") + "/" + inner.strip("/")
    return out


def block_device():
    """major:minor of a real disk of this machine (not loop/zram/ram if possible)."""
    names = sorted(os.listdir("/sys/block"))
    names.sort(key=lambda n: n.startswith(("loop", "zram", "ram")))
    for n in names:
        try:
            ma, mi = Path(f"/sys/block/{n}/dev").read_text().strip().split(":")
            return int(ma), int(mi)
        except (OSError, ValueError):
            continue
    pytest.skip("no block device under /sys/block")


# --- helpers ------------------------------------------------------------------

def rd(path):
    return Path(path).read_text().strip()


def keyed(path):
    return dict(line.split() for line in Path(path).read_text().splitlines() if line.strip())


def gone(pid):
    """Exited: no /proc entry, or a zombie waiting for the host's lazy reaper."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return data[data.rindex(")") + 2] == "Z"


def wait_for(pred, timeout=5.0, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())


def utime(pid):
    data = Path(f"/proc/{pid}/stat").read_text()
    return int(data[data.rindex(")") + 2:].split()[11])  # field 14


def children(pid):
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def comm(pid):
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def proc_cgroups(pid):
    out = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        for c in (ctrls.split(",") if ctrls else [""]):
            out[c] = path
    return out


def existing(dirs):
    return sorted(d for d in set(dirs) if os.path.isdir(d))


def with_resources(b, **resources):
    cfg = b.config
    cfg["linux"].setdefault("resources", {}).update(resources)
    b.write(cfg)
    return b


@pytest.fixture
def rt(runtime):
    """`runtime` that also sweeps, even when a test fails, every cgroup directory
    pyrunc made for this test's containers (registered in `rt.cg_dirs`)."""
    runtime.cg_dirs = []
    yield runtime
    for c in runtime.ids():
        runtime("delete", "--force", c, timeout=30)
    for d in sorted(set(runtime.cg_dirs), key=len, reverse=True):
        for _ in range(100):
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno != errno.EBUSY:
                    break
                # only ever our own containers' processes: the directory names are ours
                try:
                    for pid in Path(d, "cgroup.procs").read_text().split():
                        try:
                            os.kill(int(pid), signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                except OSError:
                    pass
                time.sleep(0.02)


def cg(rt, c):
    """The container's cgroup paths from state.json (registered for the sweep)."""
    st = json.loads(Path(rt.root, c, "state.json").read_text())
    paths = st["cgroup"]["paths"]
    rt.cg_dirs.extend(paths.values())
    rt.cg_dirs.extend(st["cgroup"].get("created") or ())
    return paths


def expect(rt, inner):
    """Register the paths a container with cgroupsPath `inner` should get (and their new parents)."""
    paths = expected_paths(inner)
    parts = inner.strip("/").split("/")
    for key, p in paths.items():
        for i in range(len(parts)):
            rt.cg_dirs.append(p.rsplit("/", i)[0] if i else p)
    return paths


def assert_member(pid, paths):
    """/proc/<pid>/cgroup puts the process in the recorded directory of every hierarchy."""
    seen = proc_cgroups(pid)
    for key, p in paths.items():
        mnt = HOST[key][0]
        assert p.startswith(mnt.rstrip("/") + "/"), (key, p)
        assert seen.get(key) == p[len(mnt.rstrip("/")):], (key, seen.get(key), p)
        assert str(pid) in rd(p + "/cgroup.procs").split(), (key, p)


def run_detached(rt, b, c, check=True):
    """`run --detach` with the container's stdio on files (it keeps them open);
    returns the init's PID, or the failed process (stderr read back) with check=False."""
    out = rt.workdir / f"{c}.out"
    with open(out, "wb") as fo, open(out.with_suffix(".err"), "w+") as fe:
        p = rt("run", "--detach", "--bundle", b, c, stdin=subprocess.DEVNULL, stdout=fo, stderr=fe)
        fe.seek(0)
        p.stderr = fe.read()
    if not check:
        return p
    assert p.returncode == 0, p.stderr
    return rt.state(c)["pid"]


# --- cgroupsPath ----------------------------------------------------------------

@pytest.mark.parametrize("kind", ["default", "relative", "absolute"])
def test_cgroups_path_semantics_and_removal(rt, make_bundle, kind):
    c = cid("cgp")
    inner = {"default": c, "relative": f"rel-{SUF}/b", "absolute": f"/pyrunc-test-{SUF}/c"}[kind]
    b = make_bundle(["sleep", "300"])
    if kind != "default":
        b.config["linux"]["cgroupsPath"] = inner
        b.write()
    want = expect(rt, inner)
    top = {k: v.rsplit("/", 1)[0] for k, v in want.items()} if kind != "default" else {}
    # parents we expect pyrunc to create are new: nothing of ours may pre-exist
    assert existing(want.values()) == [] and existing(top.values()) == []
    pid = run_detached(rt, b, c)
    paths = cg(rt, c)
    assert set(V1) <= set(paths), sorted(paths)
    for key, p in paths.items():
        assert p == want[key], (key, p, want[key])
        assert os.path.isdir(p)
    assert_member(pid, paths)
    assert rt("delete", "--force", c).returncode == 0
    assert existing(want.values()) == []
    # parents it had to create go too: "rel-SUF", "/pyrunc-test-SUF"
    assert existing(top.values()) == []


def test_delete_force_of_created_container_removes_its_cgroups(rt, make_bundle):
    c = cid("cgcr")
    want = expect(rt, c)
    rt.create(c, make_bundle(["sleep", "300"]))
    paths = cg(rt, c)
    assert paths == {k: want[k] for k in paths}
    assert_member(rt.state(c)["pid"], paths)
    assert rt("delete", "--force", c).returncode == 0
    assert existing(want.values()) == []


def test_delete_force_of_running_container_removes_its_cgroups(rt, make_bundle):
    c = cid("cgrun")
    want = expect(rt, c)
    b = make_bundle(["sh", "-c", "sleep 300 & sleep 300 & wait"])
    pid = run_detached(rt, b, c)
    assert wait_for(lambda: len(children(pid)) == 2)
    procs = [pid, *children(pid)]
    assert rt("delete", "--force", c).returncode == 0
    assert existing(want.values()) == []
    assert wait_for(lambda: all(gone(p) for p in procs))


def test_failed_create_leaves_no_cgroup(rt, make_bundle):
    c = cid("cgbad")
    want = expect(rt, c)
    if not os.path.exists(HOST["memory"][0] + "/memory.memsw.limit_in_bytes"):
        pytest.skip("no swap accounting (memory.memsw) on this host")
    # memory+swap below memory: only the kernel can refuse it (EINVAL), after the cgroups exist
    b = with_resources(make_bundle(["true"]), memory={"limit": 64 * MiB, "swap": 32 * MiB})
    p = rt.create(c, b, check=False)
    assert p.returncode != 0
    assert "memsw" in p.stderr or "swap" in p.stderr, p.stderr
    assert rt.ids() == []
    assert existing(want.values()) == []


# --- every v1 resource: written = read back ------------------------------------

def test_memory_resources_read_back(rt, make_bundle):
    c = cid("mem")
    mem = {"limit": 96 * MiB, "reservation": 48 * MiB, "swappiness": 30, "disableOOMKiller": True}
    memsw = os.path.exists(HOST["memory"][0] + "/memory.memsw.limit_in_bytes")
    if memsw:
        mem["swap"] = 128 * MiB
    b = with_resources(make_bundle(["sleep", "300"]), memory=mem)
    run_detached(rt, b, c)
    m = cg(rt, c)["memory"]
    assert int(rd(m + "/memory.limit_in_bytes")) == 96 * MiB
    assert int(rd(m + "/memory.soft_limit_in_bytes")) == 48 * MiB
    assert int(rd(m + "/memory.swappiness")) == 30
    assert keyed(m + "/memory.oom_control")["oom_kill_disable"] == "1"
    if memsw:
        assert int(rd(m + "/memory.memsw.limit_in_bytes")) == 128 * MiB


def test_memory_swap_equal_to_limit(rt, make_bundle):
    if not os.path.exists(HOST["memory"][0] + "/memory.memsw.limit_in_bytes"):
        pytest.skip("no memory.memsw on this host")
    c = cid("memsw")
    b = with_resources(make_bundle(["sleep", "300"]), memory={"limit": 32 * MiB, "swap": 32 * MiB})
    run_detached(rt, b, c)
    m = cg(rt, c)["memory"]
    assert int(rd(m + "/memory.limit_in_bytes")) == 32 * MiB
    assert int(rd(m + "/memory.memsw.limit_in_bytes")) == 32 * MiB


def test_cpu_resources_read_back(rt, make_bundle):
    c = cid("cpu")
    cpus = "1" if os.cpu_count() > 1 else "0"
    b = with_resources(make_bundle(["sleep", "300"]),
                       cpu={"shares": 512, "quota": 25000, "period": 50000, "cpus": cpus, "mems": "0"})
    run_detached(rt, b, c)
    p = cg(rt, c)
    assert int(rd(p["cpu"] + "/cpu.shares")) == 512
    assert int(rd(p["cpu"] + "/cpu.cfs_quota_us")) == 25000
    assert int(rd(p["cpu"] + "/cpu.cfs_period_us")) == 50000
    assert rd(p["cpuset"] + "/cpuset.cpus") == cpus
    assert rd(p["cpuset"] + "/cpuset.mems") == "0"
    pid = rt.state(c)["pid"]
    allowed = [ln for ln in Path(f"/proc/{pid}/status").read_text().splitlines()
               if ln.startswith("Cpus_allowed_list:")][0]
    assert allowed.split()[1] == cpus


def test_cpu_realtime_read_back(rt, make_bundle):
    c = cid("rt")
    if not os.path.exists(HOST["cpu"][0] + "/cpu.rt_runtime_us"):
        pytest.skip("no CONFIG_RT_GROUP_SCHED")
    b = with_resources(make_bundle(["sleep", "300"]),
                       cpu={"realtimePeriod": 500000, "realtimeRuntime": 10000})
    expect(rt, c)
    p = run_detached(rt, b, c, check=False)
    if p.returncode != 0:
        low = p.stderr.lower()
        if "invalid argument" in low or "operation not permitted" in low:
            pytest.skip(f"realtime group scheduling refused here: {p.stderr.strip()}")
        raise AssertionError(p.stderr)
    d = cg(rt, c)["cpu"]
    assert int(rd(d + "/cpu.rt_period_us")) == 500000
    assert int(rd(d + "/cpu.rt_runtime_us")) == 10000


# runtime-spec v1.3: -1 is "no limit", 0 a limit of zero new tasks
@pytest.mark.parametrize("limit,want", [(20, "20"), (0, "0"), (-1, "max")])
def test_pids_limit(rt, make_bundle, limit, want):
    c = cid(f"pids{limit}".replace("-", "m"))
    b = with_resources(make_bundle(["sleep", "300"]), pids={"limit": limit})
    run_detached(rt, b, c)
    assert rd(cg(rt, c)["pids"] + "/pids.max") == want


def test_blkio_throttle_read_back(rt, make_bundle):
    c = cid("blk")
    ma, mi = block_device()
    dev = lambda rate: [{"major": ma, "minor": mi, "rate": rate}]  # noqa: E731
    b = with_resources(make_bundle(["sleep", "300"]), blockIO={
        "throttleReadBpsDevice": dev(1048576), "throttleWriteBpsDevice": dev(2097152),
        "throttleReadIOPSDevice": dev(100), "throttleWriteIOPSDevice": dev(200)})
    run_detached(rt, b, c)
    d = cg(rt, c)["blkio"]
    for f, rate in (("read_bps_device", 1048576), ("write_bps_device", 2097152),
                    ("read_iops_device", 100), ("write_iops_device", 200)):
        assert rd(f"{d}/blkio.throttle.{f}").splitlines() == [f"{ma}:{mi} {rate}"], f


@pytest.mark.parametrize("res,needles", [
    ({"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * 2 * MiB}]}, ("hugepagelimits",)),
    ({"unified": {"memory.max": "67108864"}}, ("unified",)),
    ({"network": {"classID": 1048577}}, ("classid",)),
], ids=["hugetlb", "unified", "net_cls"])
def test_unavailable_resources_are_clear_errors(rt, make_bundle, res, needles):
    if "hugepageLimits" in res and v1_mounted("hugetlb"):
        pytest.skip("hugetlb is mounted here")
    if "network" in res and v1_mounted("net_cls"):
        pytest.skip("net_cls is mounted here")
    c = cid("unav")
    want = expect(rt, c)
    b = with_resources(make_bundle(["true"]), **res)
    p = rt.create(c, b, check=False)
    assert p.returncode != 0
    low = p.stderr.lower()
    assert all(n in low for n in needles), p.stderr
    assert "traceback" not in low, p.stderr
    assert rt.ids() == []
    assert existing(want.values()) == []


# --- the kernel enforces them ---------------------------------------------------

HOG = 'x=$(head -c 200000000 /dev/zero | tr "\\0" x)'


def test_memory_hog_is_oom_killed_in_foreground_run(rt, make_bundle):
    c = cid("oomfg")
    want = expect(rt, c)
    b = with_resources(make_bundle(["sh", "-c", HOG + "; echo survived"]), memory={"limit": 32 * MiB})
    p = rt("run", "--bundle", b, c, stdin=subprocess.DEVNULL, timeout=60)
    assert p.returncode == 137, (p.returncode, p.stdout, p.stderr)
    assert "survived" not in p.stdout
    assert rt.ids() == []
    assert existing(want.values()) == []


def test_memory_hog_oom_kill_counted_and_reported(rt, make_bundle):
    c = cid("oom")
    b = with_resources(make_bundle(["sh", "-c", f"({HOG}); echo hog=$?; sleep 300"]),
                       memory={"limit": 32 * MiB})
    rt.create(c, b)
    m = cg(rt, c)["memory"]
    out = rt.workdir / "events.out"
    with open(out, "w") as fo:
        ev = subprocess.Popen(rt.cmd("events", "--interval", "100ms", c), stdin=subprocess.DEVNULL,
                              stdout=fo, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: out.read_text().count("\n") >= 1), "no first stats line"
        assert rt("start", c).returncode == 0
        cout = Path(rt.workdir / f"{c}.out")
        # generous: a memcg at its limit may reclaim and refault its page cache for
        # a while before it declares the OOM
        assert wait_for(lambda: "hog=" in cout.read_text(), timeout=60), (
            rt.status(c), cout.read_text(), Path(rt.workdir / f"{c}.err").read_text(),
            keyed(m + "/memory.oom_control"), rd(m + "/memory.failcnt"), rd(m + "/tasks"))
        assert cout.read_text().strip() == "hog=137"
        assert int(keyed(m + "/memory.oom_control")["oom_kill"]) >= 1
        assert int(rd(m + "/memory.failcnt")) >= 1
        assert wait_for(lambda: '"type":"oom"' in out.read_text().replace(" ", ""), timeout=5), out.read_text()
        ooms = [json.loads(x) for x in out.read_text().splitlines() if '"oom"' in x]
        assert ooms[0] == {"type": "oom", "id": c}
        assert rt.status(c) == "running"  # only the hog died
    finally:
        ev.kill()
        ev.wait()


def test_fork_bomb_held_by_pids_limit(rt, make_bundle):
    c = cid("fork")
    # the loop runs in a subshell, so a refused fork cannot end the init, which
    # then becomes `sleep 300` without forking
    script = "(i=0; while [ $i -lt 100 ]; do sleep 30 & i=$((i+1)); done) 2>/dev/null; exec sleep 300"
    b = with_resources(make_bundle(["sh", "-c", script]), pids={"limit": 20})
    pid = run_detached(rt, b, c)
    p = cg(rt, c)["pids"]
    assert rd(p + "/pids.max") == "20"
    assert wait_for(lambda: int(keyed(p + "/pids.events").get("max", 0)) >= 1, timeout=10), \
        "no fork was ever refused"
    peak = 0
    for _ in range(10):
        cur = int(rd(p + "/pids.current"))
        peak = max(peak, cur)
        assert cur <= 20
        assert len(json.loads(rt("ps", "--format", "json", c).stdout)) <= 20
        time.sleep(0.03)
    assert peak >= 15, peak  # it really was saturated
    # still responds
    assert rt.status(c) == "running"
    assert not gone(pid)
    ev = rt("events", "--stats", c)
    assert ev.returncode == 0, ev.stderr
    assert 1 <= json.loads(ev.stdout)["data"]["pids"]["current"] <= 20
    procs = json.loads(rt("ps", "--format", "json", c).stdout)
    assert rt("kill", "--all", c, "KILL").returncode == 0
    assert wait_for(lambda: all(gone(x) for x in procs))
    assert rt.wait_status(c, "stopped")
    # no live member left (pids.current also counts zombies until the host's lazy reaper runs)
    assert wait_for(lambda: rd(p + "/cgroup.procs") == "")
    assert rt("delete", c).returncode == 0
    assert not os.path.isdir(p)


# --- pause / resume ---------------------------------------------------------------

def test_pause_freezes_a_busy_loop(rt, make_bundle):
    c = cid("frz")
    pid = run_detached(rt, make_bundle(["sh", "-c", "while :; do :; done"]), c)
    paths = cg(rt, c)
    fr = paths["freezer"] + "/freezer.state"
    assert rd(fr) == "THAWED"
    assert rt("pause", c).returncode == 0
    assert rt.status(c) == "paused"
    assert rd(fr) == "FROZEN"
    listed = json.loads(rt("list", "--format", "json").stdout)
    assert [i["status"] for i in listed if i["id"] == c] == ["paused"]
    u0 = utime(pid)
    time.sleep(0.3)
    assert utime(pid) == u0
    p = rt("pause", c)
    assert p.returncode != 0 and "paused" in p.stderr, p.stderr
    assert rt("resume", c).returncode == 0
    assert rt.status(c) == "running"
    assert rd(fr) == "THAWED"
    u1 = utime(pid)
    assert wait_for(lambda: utime(pid) > u1, timeout=3)
    p = rt("resume", c)
    assert p.returncode != 0 and "not paused" in p.stderr, p.stderr
    assert "traceback" not in p.stderr.lower()


def test_pause_and_resume_of_stopped_container_fail(rt, make_bundle):
    c = cid("frzst")
    run_detached(rt, make_bundle(["sleep", "300"]), c)
    assert rt("kill", c, "KILL").returncode == 0
    assert rt.wait_status(c, "stopped")
    p = rt("pause", c)
    assert p.returncode != 0 and "not running" in p.stderr, p.stderr
    p = rt("resume", c)
    assert p.returncode != 0 and "not paused" in p.stderr, p.stderr
    assert rt.status(c) == "stopped"


def test_delete_force_of_paused_container(rt, make_bundle):
    c = cid("frzdel")
    want = expect(rt, c)
    pid = run_detached(rt, make_bundle(["sh", "-c", "sleep 300 & while :; do :; done"]), c)
    assert wait_for(lambda: len(children(pid)) == 1)
    procs = [pid, *children(pid)]
    assert rt("pause", c).returncode == 0
    assert rt.status(c) == "paused"
    p = rt("delete", c)
    assert p.returncode != 0 and "paused" in p.stderr, p.stderr
    assert rt.status(c) == "paused"
    p = rt("delete", "--force", c, timeout=30)
    assert p.returncode == 0, p.stderr
    assert rt.ids() == []
    assert existing(want.values()) == []
    assert wait_for(lambda: all(gone(x) for x in procs))


def test_paused_state_matches_runc(rt, runc_runtime, make_bundle):
    """`state` of a busy, paused container: runc says "paused", and so must we."""
    b = make_bundle(["sh", "-c", "while :; do :; done"])
    got = {}
    for name, r in (("pyrunc", rt), ("runc", runc_runtime)):
        c = cid(f"ps-{name}")
        try:
            run_detached(r, b, c)
            assert r("pause", c).returncode == 0
            got[name] = r.state(c)["status"]
        finally:
            r("delete", "--force", c, timeout=30)
    assert got == {"pyrunc": "paused", "runc": "paused"}


# --- update ----------------------------------------------------------------------

def test_update_flags_and_resources_json(rt, make_bundle, tmp_path):
    c = cid("upd")
    b = with_resources(make_bundle(["sleep", "300"]),
                       memory={"limit": 128 * MiB}, pids={"limit": 100}, cpu={"shares": 1024})
    run_detached(rt, b, c)
    p = cg(rt, c)
    mem, cpu, cpuset, pids = p["memory"], p["cpu"], p["cpuset"], p["pids"]

    def update(*args, input=None):
        r = rt("update", *args, c, input=input)
        assert r.returncode == 0, (args, r.stderr)

    update("--memory", "64m")
    assert int(rd(mem + "/memory.limit_in_bytes")) == 64 * MiB
    update("--pids-limit", "42")
    assert rd(pids + "/pids.max") == "42"
    update("--cpu-share", "256")
    assert rd(cpu + "/cpu.shares") == "256"
    update("--cpu-shares", "300")
    assert rd(cpu + "/cpu.shares") == "300"
    update("--cpu-period", "200000", "--cpu-quota", "50000")
    assert rd(cpu + "/cpu.cfs_period_us") == "200000"
    assert rd(cpu + "/cpu.cfs_quota_us") == "50000"
    cpus = "1" if os.cpu_count() > 1 else "0"
    update("--cpuset-cpus", cpus)
    assert rd(cpuset + "/cpuset.cpus") == cpus

    update("-r", "-", input=json.dumps({"memory": {"limit": 96 * MiB}, "pids": {"limit": -1}}))
    assert int(rd(mem + "/memory.limit_in_bytes")) == 96 * MiB
    assert rd(pids + "/pids.max") == "max"
    f = tmp_path / "res.json"
    f.write_text(json.dumps({"cpu": {"shares": 700}, "pids": {"limit": 33}}))
    update("-r", str(f))
    assert rd(cpu + "/cpu.shares") == "700"
    assert rd(pids + "/pids.max") == "33"
    update(f"--resources={f}")
    assert rd(pids + "/pids.max") == "33"

    # an invalid value is a clear error naming the field, and changes nothing
    r = rt("update", "-r", "-", c, input=json.dumps({"memory": {"limit": "lots"}}))
    assert r.returncode != 0
    assert "memory.limit" in r.stderr and "traceback" not in r.stderr.lower(), r.stderr
    assert int(rd(mem + "/memory.limit_in_bytes")) == 96 * MiB
    r = rt("update", "-r", "-", c, input='{"memory": {"limit": ')
    assert r.returncode != 0 and "json" in r.stderr.lower(), r.stderr
    r = rt("update", "--memory", "lots", c)
    assert r.returncode != 0 and "lots" in r.stderr, r.stderr
    assert int(rd(mem + "/memory.limit_in_bytes")) == 96 * MiB
    assert rt.status(c) == "running"

    assert rt("kill", c, "KILL").returncode == 0
    assert rt.wait_status(c, "stopped")
    r = rt("update", "--memory", "32m", c)
    assert r.returncode != 0 and "not running" in r.stderr, r.stderr


# --- ps ----------------------------------------------------------------------------

def test_ps_json_table_and_ps_options(rt, make_bundle):
    c = cid("ps")
    pid = run_detached(rt, make_bundle(["sh", "-c", "sleep 300 & sleep 300 & wait"]), c)
    # a `&` child is a forked sh until its execve: wait for both to be sleep
    assert wait_for(lambda: len(children(pid)) == 2
                    and all(comm(k) == "sleep" for k in children(pid)))
    kids = children(pid)
    p = rt("ps", "--format", "json", c)
    assert p.returncode == 0, p.stderr
    pids = json.loads(p.stdout)
    assert isinstance(pids, list) and all(isinstance(x, int) for x in pids)
    assert sorted(pids) == sorted([pid, *kids])

    p = rt("ps", c)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    header = lines[0].split()
    assert header[:2] == ["UID", "PID"], lines[0]  # ps -ef
    assert sorted(int(ln.split()[1]) for ln in lines[1:]) == sorted(pids)

    p = rt("ps", c, "-o", "pid,comm")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["PID", "COMMAND"], lines[0]
    rows = {int(ln.split()[0]): ln.split()[1] for ln in lines[1:]}
    assert rows == {pid: "sh", **{k: "sleep" for k in kids}}


# --- events --------------------------------------------------------------------------

def test_events_stats_once(rt, make_bundle):
    c = cid("evs")
    b = with_resources(make_bundle(["sh", "-c", "while :; do :; done"]), memory={"limit": 64 * MiB})
    pid = run_detached(rt, b, c)
    assert wait_for(lambda: utime(pid) > 0)
    p = rt("events", "--stats", c)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 1, p.stdout
    ev = json.loads(lines[0])
    assert ev["type"] == "stats" and ev["id"] == c
    d = ev["data"]
    assert d["memory"]["usage"]["limit"] == 64 * MiB
    assert d["memory"]["usage"]["usage"] > 0
    assert d["pids"]["current"] >= 1
    assert d["cpu"]["usage"]["total"] > 0


def test_events_interval_streams_and_ends_with_the_container(rt, make_bundle):
    c = cid("evi")
    run_detached(rt, make_bundle(["sleep", "300"]), c)
    out = rt.workdir / "ev1.out"
    with open(out, "w") as fo:
        ev = subprocess.Popen(rt.cmd("events", "--interval", "200ms", c), stdin=subprocess.DEVNULL,
                              stdout=fo, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: out.read_text().count("\n") >= 3, timeout=15), out.read_text()
        assert ev.poll() is None, "events --interval ended while the container runs"
    finally:
        ev.kill()
        ev.wait()
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) >= 3, lines
    assert all(x["type"] == "stats" and x["id"] == c and x["data"]["pids"]["current"] >= 1 for x in lines)

    out2 = rt.workdir / "ev2.out"
    with open(out2, "w") as fo:
        ev = subprocess.Popen(rt.cmd("events", "--interval", "200ms", c), stdin=subprocess.DEVNULL,
                              stdout=fo, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: out2.read_text().count("\n") >= 1)
        assert rt("kill", c, "KILL").returncode == 0
        assert ev.wait(timeout=10) == 0
    finally:
        if ev.poll() is None:
            ev.kill()
            ev.wait()


# --- kill --all without a PID namespace ----------------------------------------------

def _no_pidns_bundle(make_bundle):
    cfg = base_config(["sh", "-c", "sleep 300 & sleep 300 & wait"])
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "pid"]
    return make_bundle(config=cfg)


@pytest.mark.parametrize("sig", ["TERM", "KILL"])
def test_kill_all_without_pid_namespace_signals_every_process(rt, make_bundle, sig):
    c = cid(f"kall{sig}")
    want = expect(rt, c)
    pid = run_detached(rt, _no_pidns_bundle(make_bundle), c)
    assert wait_for(lambda: len(children(pid)) == 2)
    procs = [pid, *children(pid)]
    paths = cg(rt, c)
    for x in procs:
        assert_member(x, paths)
    assert rt("kill", "--all", c, sig).returncode == 0
    assert wait_for(lambda: all(gone(x) for x in procs)), [x for x in procs if not gone(x)]
    assert rt.wait_status(c, "stopped")
    assert rt("delete", c).returncode == 0
    assert existing(want.values()) == []


def test_delete_without_pid_namespace_kills_leftover_processes(rt, make_bundle):
    c = cid("kinit")
    want = expect(rt, c)
    pid = run_detached(rt, _no_pidns_bundle(make_bundle), c)
    assert wait_for(lambda: len(children(pid)) == 2)
    kids = children(pid)
    assert rt("kill", c, "KILL").returncode == 0  # the init only: its children live on
    assert rt.wait_status(c, "stopped")
    assert not any(gone(k) for k in kids)
    p = rt("delete", c)
    assert p.returncode == 0, p.stderr
    assert wait_for(lambda: all(gone(k) for k in kids)), [k for k in kids if not gone(k)]
    assert existing(want.values()) == []


# --- how a new process enters its cgroups (cgroups.manager.Join) ----------------

_JOIN_SCRIPT = r"""
import json, posix, sys
from pyrunc.cgroups.manager import Join

class Log:
    lines = []
    def debug(self, msg):
        self.lines.append(msg)

v2, v1, mode = sys.argv[1], sys.argv[2:-1], sys.argv[-1]
join = Join(v2, v1)
if mode != "clone":
    # a v1 directory: the kernel will not clone into it (EBADF)
    posix.close(join.clone_fd)
    join.clone_fd = posix.open(v1[0], posix.O_PATH | posix.O_DIRECTORY | posix.O_CLOEXEC)
log = Log()
after_failed_clone = None
dead_ns = None
if mode == "refuse-in-new-pidns":
    from pyrunc import linux
    from pyrunc.parent import _fresh_pid_ns
    own = posix.open("/proc/self/ns/pid", posix.O_RDONLY | posix.O_CLOEXEC)
    linux.unshare(linux.CLONE_NEWPID)
    # what the fallback has to undo: the refused clone spent the namespace's first pid
    try:
        linux.fork_into_cgroup(join.clone_fd)
    except OSError:
        pass
    try:
        p = posix.fork()
        if p == 0:
            posix._exit(0)
        posix.waitpid(p, 0)
    except OSError as e:
        dead_ns = e.errno
    after_failed_clone = lambda: _fresh_pid_ns(own)
moved_r, moved_w = posix.pipe()
out_r, out_w = posix.pipe()
pid = join.fork(log, after_failed_clone)
if pid == 0:
    join.enter()
    posix.read(moved_r, 1)
    with open("/proc/self/cgroup") as f:
        posix.write(out_w, (str(posix.getpid()) + "\n" + f.read()).encode())
    posix._exit(0)
join.close()
join.move(pid)
posix.write(moved_w, b"x")
posix.close(out_w)
got = b""
while True:
    chunk = posix.read(out_r, 65536)
    if not chunk:
        break
    got += chunk
posix.waitpid(pid, 0)
child_pid, _, cgroup = got.decode().partition("\n")
print(json.dumps({"cgroup": cgroup, "log": log.lines, "pid": int(child_pid), "dead_ns": dead_ns}))
"""


@pytest.mark.skipif("" not in HOST, reason="needs the unified hierarchy of a hybrid host")
@pytest.mark.parametrize("mode", ["clone", "refuse", "refuse-in-new-pidns"])
def test_join_enters_v1_by_itself_and_v2_by_birth_or_by_move(tmp_path, mode):
    """The child writes "0" to each v1 `tasks` file itself; it is born in its v2
    directory (clone3 CLONE_INTO_CGROUP) or, when the kernel refuses that, the
    parent moves it, as before. Either way it ends up in every hierarchy. A
    refused clone into a new PID namespace leaves it unusable (the kernel's
    ENOMEM): the fallback forks into a fresh one, as `create` does."""
    refuse = mode != "clone"
    name = cid(f"join{len(mode)}")
    dirs = {key: f"{HOST[key][0].rstrip('/')}{HOST[key][1].rstrip('/')}/{name}"
            for key in ("", "pids", "memory")}
    for d in dirs.values():
        os.mkdir(d)
    try:
        repo = Path(__file__).resolve().parent.parent
        p = subprocess.run([sys.executable, "-c", _JOIN_SCRIPT, dirs[""], dirs["pids"], dirs["memory"], mode],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(repo)})
        assert p.returncode == 0, p.stderr
        res = json.loads(p.stdout)
        seen = {}
        for line in res["cgroup"].splitlines():
            _, ctrls, path = line.split(":", 2)
            for c in (ctrls.split(",") if ctrls else [""]):
                seen[c] = path
        for key, d in dirs.items():
            assert seen[key] == d[len(HOST[key][0].rstrip("/")):], (key, seen)
        assert bool(res["log"]) == refuse, res["log"]  # the fallback says why
        if mode == "refuse-in-new-pidns":
            assert res["dead_ns"] == errno.ENOMEM, res
            assert res["pid"] == 1, res  # the init of the fresh namespace
    finally:
        for d in dirs.values():
            rmdir_cgroup(d)
