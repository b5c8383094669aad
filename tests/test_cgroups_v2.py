"""Fs2Manager against a real cgroup v2 kernel (run in tools/v2vm: this host is hybrid).

Each test makes a private cgroup /pyrunc-test-<pid>-<name>/ctr, moves forked
children into it, and removes it in `finally`; nothing else is written but
the cgroup.subtree_control of the root and of that private parent, as runc
does. Tests are coarse on purpose: the guest runs under software emulation.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from pyrunc.cgroups import CGROUP_ROOT, convert, fs2, host_mode
from pyrunc.cgroups.manager import CgroupError

pytestmark = [
    pytest.mark.cgroupv2,
    pytest.mark.skipif(os.geteuid() != 0 or host_mode() != "v2", reason="needs root on a pure cgroup v2 host"),
]

PY = [sys.executable, "-I", "-S", "-c"]
WAIT_STDIN = "import os, sys; sys.stdin.buffer.read(1); "


def rd(m, name):
    with open(f"{m.path}/{name}") as f:
        return f.read().strip()


class Box:
    """A private manager plus the children started for it; `close` leaves nothing."""

    def __init__(self, name):
        self.top = f"/pyrunc-test-{os.getpid()}-{name}"
        self.m = fs2.new(self.top + "/ctr", "unused")
        self.procs = []

    def spawn(self, code, stdin=subprocess.PIPE, stdout=None, resources=None):
        p = subprocess.Popen(PY + [code], stdin=stdin, stdout=stdout, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        self.m.apply(p.pid, resources)
        return p

    def close(self):
        m = self.m
        try:
            if m.exists():
                # as `kill --all`: frozen, nothing can fork past the SIGKILLs
                try:
                    m.freeze()
                except CgroupError:
                    pass
                for pid in m.pids():
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                m.thaw()
        finally:
            for p in self.procs:
                if p.poll() is None:
                    p.kill()
                p.wait(timeout=30)
            deadline = time.monotonic() + 20
            while m.exists() and m.pids() and time.monotonic() < deadline:
                time.sleep(0.02)
            m.destroy()
            if os.path.isdir(CGROUP_ROOT + self.top):
                os.rmdir(CGROUP_ROOT + self.top)


@pytest.fixture
def box(request):
    b = Box(request.node.name.removeprefix("test_")[:20])
    try:
        yield b
    finally:
        b.close()
        assert not os.path.exists(b.m.path) and not os.path.exists(CGROUP_ROOT + b.top)


def block_device():
    """(major, minor) of a whole block device that io.max accepts, or None.

    In the v2vm guest (no disks) a null_blk device is made for it."""
    if not os.path.exists("/sys/block/nullb0") and os.path.isdir("/v2vm-ctl"):
        subprocess.run(["modprobe", "null_blk", "nr_devices=1"], stderr=subprocess.DEVNULL, check=False)
    try:
        names = sorted(os.listdir("/sys/block"), key=lambda n: (not n.startswith("nullb"), n))
    except OSError:
        return None
    for n in names:
        if n.startswith(("loop", "ram", "zram")):
            continue
        try:
            with open(f"/sys/block/{n}/dev") as f:
                ma, mi = f.read().strip().split(":")
            return int(ma), int(mi), n
        except OSError:
            continue
    return None


def test_every_resource_read_back_then_update_and_destroy(box):
    m = box.m
    sleeper = box.spawn(WAIT_STDIN + "import time; time.sleep(600)")
    assert m.pids() == [sleeper.pid]
    assert m.path == f"{CGROUP_ROOT}{box.top}/ctr"
    assert m.created == [CGROUP_ROOT + box.top, m.path]
    parent_ctl = open(f"{CGROUP_ROOT}{box.top}/cgroup.subtree_control").read().split()
    assert {"cpu", "memory", "pids", "io", "cpuset"} <= set(parent_ctl)
    assert fs2.load(m.state()).path == m.path

    dev = block_device()
    sizes = set(convert.hugepage_sizes(os.listdir("/sys/kernel/mm/hugepages"))[0]) \
        if os.path.isdir("/sys/kernel/mm/hugepages") else set()
    res = {
        "memory": {"limit": 64 << 20, "swap": 96 << 20, "reservation": 16 << 20, "swappiness": 5,
                   "disableOOMKiller": False, "kernel": -1, "kernelTCP": -1},
        "cpu": {"shares": 2048, "quota": 50000, "period": 200000, "burst": 10000, "cpus": "0", "mems": "0",
                "idle": 0, "realtimeRuntime": 0, "realtimePeriod": 0},
        "pids": {"limit": 100},
        "blockIO": {"weight": 500},
        "unified": {"memory.high": str(48 << 20), "memory.oom.group": "1"},
        "network": {"classID": 1},  # v1 only: ignored as runc ignores it
    }
    if dev:
        d = {"major": dev[0], "minor": dev[1]}
        res["blockIO"].update({"throttleReadBpsDevice": [dict(d, rate=1 << 20)],
                               "throttleWriteBpsDevice": [dict(d, rate=0)],
                               "throttleReadIOPSDevice": [dict(d, rate=100)],
                               "throttleWriteIOPSDevice": [dict(d, rate=200)]})
    if "2MB" in sizes:
        res["hugepageLimits"] = [{"pageSize": "2MB", "limit": 4 << 20}]
    m.set(res)
    assert rd(m, "memory.max") == str(64 << 20)
    assert rd(m, "memory.swap.max") == str(32 << 20)  # memory+swap minus memory
    assert rd(m, "memory.low") == str(16 << 20)
    assert rd(m, "memory.high") == str(48 << 20)
    assert rd(m, "memory.oom.group") == "1"
    assert rd(m, "cpu.weight") == "79"  # runc 1.1.5's linear map of 2048 shares
    assert rd(m, "cpu.max") == "50000 200000"
    assert rd(m, "cpu.max.burst") == "10000"
    assert rd(m, "cpu.idle") == "0"
    assert rd(m, "cpuset.cpus") == "0" and rd(m, "cpuset.mems") == "0"
    assert rd(m, "pids.max") == "100"
    assert rd(m, "io.weight") == "default 4950"
    if dev:
        assert rd(m, "io.max") == f"{dev[0]}:{dev[1]} rbps=1048576 wbps=max riops=100 wiops=200"
    if "2MB" in sizes:
        assert rd(m, "hugetlb.2MB.max") == rd(m, "hugetlb.2MB.rsvd.max") == str(4 << 20)

    # `update`: only what is given changes; half a quota/period keeps the other half
    m.set({"memory": {"limit": 128 << 20}})
    assert (rd(m, "memory.max"), rd(m, "memory.swap.max")) == (str(128 << 20), str(32 << 20))
    m.set({"memory": {"swap": 256 << 20}})
    assert rd(m, "memory.swap.max") == str(128 << 20)
    m.set({"cpu": {"quota": 100000}})
    assert rd(m, "cpu.max") == "100000 200000"
    m.set({"cpu": {"period": 100000, "shares": 1024}})
    assert (rd(m, "cpu.max"), rd(m, "cpu.weight")) == ("100000 100000", "39")
    m.set({"pids": {"limit": 0}})
    assert rd(m, "pids.max") == "0"
    m.set({"pids": {"limit": -1}, "memory": {"limit": -1}})
    assert (rd(m, "pids.max"), rd(m, "memory.max"), rd(m, "memory.swap.max")) == ("max", "max", "max")
    assert rd(m, "cpuset.cpus") == "0" and rd(m, "memory.low") == str(16 << 20)

    # errors name the field; a bad value anywhere means nothing is written
    def refused(resources, needle):
        with pytest.raises(CgroupError) as ei:
            m.set(resources)
        assert needle in str(ei.value), str(ei.value)

    refused({"pids": {"limit": 7}, "cpu": {"cpus": "0-"}}, "linux.resources.cpu.cpus")
    refused({"pids": {"limit": 7}, "memory": {"swap": -2}}, "linux.resources.memory.swap: -2 is invalid")
    assert rd(m, "pids.max") == "max"
    refused({"unified": {"nosuch.file": "1"}}, "the nosuch controller is not available")
    refused({"unified": {"memory.nosuch": "1"}}, "linux.resources.unified['memory.nosuch']")
    refused({"cpu": {"cpus": "4095"}}, "linux.resources.cpu.cpus: write '4095'")
    refused({"hugepageLimits": [{"pageSize": "4MB", "limit": 1}]}, "page size 4MB is not supported")
    refused({"rdma": {"mlx4_0": {"hcaHandles": 2}}}, "linux.resources.rdma.mlx4_0")

    # BFQ takes the v1 weight as is, and per-device weights
    if dev and subprocess.run(["modprobe", "bfq"], stderr=subprocess.DEVNULL).returncode == 0 \
            and os.path.isdir("/v2vm-ctl"):
        with open(f"/sys/block/{dev[2]}/queue/scheduler", "w") as f:
            f.write("bfq")
        m.set({"blockIO": {"weight": 300, "weightDevice": [{"major": dev[0], "minor": dev[1], "weight": 200}]}})
        got = rd(m, "io.bfq.weight").splitlines()
        assert got[0] == "default 300" and f"{dev[0]}:{dev[1]} 200" in got

    # devices: runc's eBPF filter; /dev/kmsg (1:11) is in no default rule
    from pyrunc.cgroups import devices
    rules = devices.rules_for_container([{"allow": False, "access": "rwm"}], [])
    m.set({}, devices=rules)
    probe = box.spawn(WAIT_STDIN + (
        "r = []\n"
        "for p in ('/dev/null', '/dev/kmsg'):\n"
        "    try: os.close(os.open(p, os.O_RDONLY)); r.append('ok')\n"
        "    except OSError as e: r.append(str(e.errno))\n"
        "print(' '.join(r), flush=True)"), stdout=subprocess.PIPE)
    out, _ = probe.communicate(b"g", timeout=60)
    assert out.decode().split() == ["ok", "1"]  # EPERM

    sleeper.kill()
    sleeper.wait()
    m.destroy()
    assert not m.exists() and not os.path.exists(CGROUP_ROOT + box.top)
    m.destroy()  # twice is fine


def utime(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[11])


def test_freeze_thaw_and_stats(box):
    m = box.m
    busy = box.spawn("while True: pass", stdin=subprocess.DEVNULL)
    m.set({"pids": {"limit": 50}, "memory": {"limit": 256 << 20}})
    assert not m.frozen()
    assert m.freezer_probe() == m.path + "/cgroup.freeze"
    time.sleep(0.5)

    s = m.stats()
    assert list(s)[:6] == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb"]
    assert s["pids"] == {"current": 1, "limit": 50}
    assert s["cpu"]["usage"]["total"] > 0 and set(s["cpu"]["usage"]) <= {"total", "kernel", "user"}
    mem = s["memory"]
    assert list(mem) == [k for k in ("cache", "usage", "swap", "kernel", "kernelTCP", "raw") if k in mem]
    assert mem["usage"]["limit"] == 256 << 20 and mem["usage"]["usage"] > 0
    assert mem["swap"]["usage"] >= mem["usage"]["usage"]  # memory+swap, as v1 reported it
    assert mem["kernel"] == {"limit": 0, "failcnt": 0}
    assert "anon" in mem["raw"] and list(mem["raw"]) == sorted(mem["raw"])
    assert all(set(v) <= {"usage", "max", "failcnt"} for v in s["hugetlb"].values())
    from pyrunc import fastjson
    assert fastjson.loads(fastjson.dumps(s)) == s

    m.freeze()
    assert "frozen 1" in rd(m, "cgroup.events").splitlines()
    assert m.frozen() and rd(m, "cgroup.freeze") == "1"
    t0 = utime(busy.pid)
    time.sleep(0.3)
    assert utime(busy.pid) == t0
    m.thaw()
    assert not m.frozen() and "frozen 0" in rd(m, "cgroup.events").splitlines()
    deadline = time.monotonic() + 10
    while utime(busy.pid) == t0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert utime(busy.pid) > t0


def test_oom_kill_and_fork_bomb(box):
    m = box.m
    # swap equal to the limit: no swap at all, the hog has to die
    res = {"memory": {"limit": 48 << 20, "swap": 48 << 20}, "pids": {"limit": 40}}
    hog = box.spawn(WAIT_STDIN + "b = b'x' * (256 << 20); print('survived')", stdout=subprocess.PIPE)
    m.set(res)
    assert rd(m, "memory.swap.max") == "0"
    assert m.oom_kills() == 0
    out, _ = hog.communicate(b"g", timeout=120)
    assert hog.returncode == -signal.SIGKILL and b"survived" not in out
    assert m.oom_kills() >= 1
    assert m.stats()["memory"]["usage"]["limit"] == 48 << 20

    # room for the bomb's copies: under a tight limit they would thrash, not fork
    m.set({"memory": {"limit": 512 << 20, "swap": 512 << 20}})
    bomb = box.spawn(WAIT_STDIN + (
        "import time\n"
        "ok = fail = 0\n"
        "for i in range(300):\n"
        "    try: pid = os.fork()\n"
        "    except BlockingIOError: fail += 1; continue\n"
        "    if pid == 0: os.execv('/bin/sleep', ['sleep', '600'])\n"
        "    ok += 1\n"
        "print(ok, fail, flush=True)\n"
        "time.sleep(600)"), stdout=subprocess.PIPE)
    bomb.stdin.write(b"g")
    bomb.stdin.flush()
    ok, fail = map(int, bomb.stdout.readline().split())
    assert ok + fail == 300 and ok < 40 and fail > 250
    assert int(rd(m, "pids.current")) <= 40
    assert convert.parse_keyed(rd(m, "pids.events"))["max"] >= fail
    assert len(m.pids()) == ok + 1
    assert m.stats()["pids"]["current"] == ok + 1
