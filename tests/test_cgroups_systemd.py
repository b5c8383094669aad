"""The systemd cgroup driver (`--systemd-cgroup`) on real containers.

Needs systemd as PID 1 with D-Bus: runs in the tools/v2vm systemd guest
(pure cgroup v2), e.g.

    ../shared/tools/v2vm/run-in-systemd.sh /work/main \
        /opt/pyrunc/bin/python -m pytest -q tests/test_cgroups_systemd.py

The guest is slow (software emulation), so the tests are few and coarse:
each one walks a whole lifecycle and checks both sides, what systemd says
about the unit (`systemctl show`) and what the cgroup files hold.
"""

import json
import os
import subprocess
import time

import pytest

from support import base_config

pytestmark = [
    pytest.mark.systemd,
    pytest.mark.skipif(os.geteuid() != 0 or not os.path.isdir("/run/systemd/system"),
                       reason="needs root and systemd as PID 1 (run it in the tools/v2vm systemd guest)"),
]

SD = ("--systemd-cgroup",)
CG = "/sys/fs/cgroup"


def show(unit, *props):
    p = subprocess.run(["systemctl", "show", "-p", ",".join(props), unit], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    out = {}
    for line in p.stdout.splitlines():
        k, _, v = line.partition("=")
        out.setdefault(k, []).append(v)
    return {k: v[0] if len(v) == 1 else v for k, v in out.items()}


def gone(unit, cgroup_dir, timeout=10.0):
    """The unit is unknown to systemd (garbage-collected) and its cgroup removed."""
    deadline = time.monotonic() + timeout
    while True:
        st = show(unit, "LoadState", "ActiveState")
        if st.get("LoadState") == "not-found" and not os.path.exists(cgroup_dir):
            return True
        if time.monotonic() > deadline:
            print(unit, st, os.path.exists(cgroup_dir))
            return False
        time.sleep(0.1)


def rd(path):
    with open(path) as f:
        return f.read().strip()


def sd_bundle(make_bundle, cgroups_path, args=("sleep", "300"), resources=None, **kw):
    cfg = base_config(list(args))
    cfg["linux"]["cgroupsPath"] = cgroups_path
    if resources:
        cfg["linux"].setdefault("resources", {}).update(resources)
    cfg.update(kw)
    return make_bundle(config=cfg)


def test_scope_lifecycle_limits_update_pause_delete(runtime, make_bundle):
    cid = f"sd-life-{os.getpid()}"
    unit = f"pyrunc-{cid}.scope"
    cg = f"{CG}/system.slice/{unit}"
    b = sd_bundle(make_bundle, f"system.slice:pyrunc:{cid}", resources={
        "memory": {"limit": 64 << 20, "reservation": 16 << 20},
        "pids": {"limit": 50},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000},
    })
    runtime.create(cid, b, global_args=SD)
    pid = runtime.state(cid)["pid"]

    st = show(unit, "ActiveState", "ControlGroup", "Slice", "Delegate", "MemoryMax", "MemoryLow", "TasksMax",
              "CPUQuotaPerSecUSec", "CPUWeight", "DevicePolicy", "DeviceAllow")
    assert st["ActiveState"] == "active"
    assert st["ControlGroup"] == f"/system.slice/{unit}"
    assert st["Slice"] == "system.slice" and st["Delegate"] == "yes"
    assert str(pid) in rd(f"{cg}/cgroup.procs").split()
    # the limits, as unit properties and in the cgroup files
    assert st["MemoryMax"] == str(64 << 20) and rd(f"{cg}/memory.max") == str(64 << 20)
    assert st["MemoryLow"] == str(16 << 20) and rd(f"{cg}/memory.low") == str(16 << 20)
    assert st["TasksMax"] == "50" and rd(f"{cg}/pids.max") == "50"
    assert st["CPUQuotaPerSecUSec"] == "500ms" and rd(f"{cg}/cpu.max") == "50000 100000"
    # runc 1.1's linear shares -> weight: 512 -> 20
    assert st["CPUWeight"] == "20" and rd(f"{cg}/cpu.weight") == "20"
    # runc's device rules as systemd's: strict, with the default devices allowed
    assert st["DevicePolicy"] == "strict"
    allowed = st["DeviceAllow"] if isinstance(st["DeviceAllow"], list) else [st["DeviceAllow"]]
    assert "/dev/char/1:3 rwm" in allowed and "char-* m" in allowed

    # update: the unit's properties and the files
    p = runtime("update", "--memory", str(32 << 20), "--pids-limit", "20", "--cpu-quota", "25000", cid,
                global_args=SD)
    assert p.returncode == 0, p.stderr
    st = show(unit, "MemoryMax", "TasksMax", "CPUQuotaPerSecUSec")
    assert st == {"MemoryMax": str(32 << 20), "TasksMax": "20", "CPUQuotaPerSecUSec": "250ms"}
    assert rd(f"{cg}/memory.max") == str(32 << 20) and rd(f"{cg}/pids.max") == "20"
    assert rd(f"{cg}/cpu.max") == "25000 100000"
    # an invalid value changes nothing, on either side
    p = runtime("update", "--resources", "-", cid, input='{"memory": {"limit": -5}}', global_args=SD)
    assert p.returncode != 0 and "memory.limit" in p.stderr
    assert show(unit, "MemoryMax")["MemoryMax"] == str(32 << 20)

    assert runtime("start", cid).returncode == 0
    assert runtime("pause", cid).returncode == 0
    assert runtime.status(cid) == "paused" and rd(f"{cg}/cgroup.freeze") == "1"
    assert runtime("resume", cid).returncode == 0
    assert runtime.status(cid) == "running" and rd(f"{cg}/cgroup.freeze") == "0"
    # exec joins the unit's cgroup (no cgroup namespace in this config)
    p = runtime("exec", cid, "cat", "/proc/self/cgroup")
    assert p.returncode == 0 and p.stdout.strip() == f"0::/system.slice/{unit}", (p.stdout, p.stderr)
    p = runtime("ps", "--format", "json", cid)
    assert p.returncode == 0 and json.loads(p.stdout) == [pid]
    p = runtime("events", "--stats", cid)
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)["data"]
    assert data["pids"]["current"] >= 1 and data["memory"]["usage"]["limit"] == 32 << 20

    assert runtime("kill", cid, "KILL").returncode == 0
    assert runtime.wait_status(cid, "stopped")
    p = runtime("delete", cid)
    assert p.returncode == 0, p.stderr
    assert gone(unit, cg)


def test_cgroups_path_forms(runtime, make_bundle):
    """"slice:prefix:name" in another slice, the default for "", and a bad form."""
    n = os.getpid()
    cases = [(f"machine.slice:x:m{n}", f"x-m{n}.scope", "machine.slice"),
             ("", f"pyrunc-d{n}.scope", "system.slice")]
    ids = [f"m{n}", f"d{n}"]
    for (path, unit, sl), cid in zip(cases, ids):
        runtime.create(cid, sd_bundle(make_bundle, path), global_args=SD)
        pid = runtime.state(cid)["pid"]
        st = show(unit, "ActiveState", "ControlGroup", "Slice")
        assert st == {"ActiveState": "active", "ControlGroup": f"/{sl}/{unit}", "Slice": sl}, st
        assert str(pid) in rd(f"{CG}/{sl}/{unit}/cgroup.procs").split()
    # a second container for the same unit fails, and leaves the first one's unit alone
    p = runtime.create(f"dup{n}", sd_bundle(make_bundle, cases[0][0]), check=False, global_args=SD)
    assert p.returncode != 0 and "UnitExists" in p.stderr, p.stderr
    assert show(cases[0][1], "ActiveState")["ActiveState"] == "active"
    assert runtime.status(ids[0]) == "created" and runtime.ids() == sorted(ids)
    for (path, unit, sl), cid in zip(cases, ids):
        # a created container: delete --force kills it, systemd stops the unit
        p = runtime("delete", "--force", cid)
        assert p.returncode == 0, p.stderr
        assert gone(unit, f"{CG}/{sl}/{unit}")

    p = runtime.create("bad", sd_bundle(make_bundle, "system.slice:nocolon"), check=False, global_args=SD)
    assert p.returncode != 0 and "slice:prefix:name" in p.stderr
    assert runtime.ids() == []


def test_failed_create_leaves_no_unit(runtime, make_bundle):
    """A create that fails after the unit started (a createRuntime hook fails)
    stops the unit: nothing of it remains. And an OOM-killed container's
    (failed) scope is removed by delete."""
    cid = f"sd-fail-{os.getpid()}"
    unit = f"pyrunc-{cid}.scope"
    b = sd_bundle(make_bundle, f"system.slice:pyrunc:{cid}", resources={"pids": {"limit": 10}},
                  hooks={"createRuntime": [{"path": "/bin/false"}]})
    p = runtime.create(cid, b, check=False, global_args=SD)
    assert p.returncode != 0
    assert runtime.ids() == []
    assert gone(unit, f"{CG}/system.slice/{unit}")

    cid = f"sd-oom-{os.getpid()}"
    unit = f"pyrunc-{cid}.scope"
    b = sd_bundle(make_bundle, f"system.slice:pyrunc:{cid}", args=["tail", "/dev/zero"],
                  resources={"memory": {"limit": 16 << 20, "swap": 16 << 20}})
    p = runtime("run", "--bundle", b, cid, global_args=SD, timeout=120)
    assert p.returncode == 137, (p.returncode, p.stderr)
    assert runtime.ids() == []
    assert gone(unit, f"{CG}/system.slice/{unit}")


def test_dbus_bus_and_private_socket():
    """The minimal client talks to systemd both ways runc's go-systemd does."""
    from pyrunc.cgroups import dbus
    ver = []
    with dbus.connect() as c:
        assert c.bus and c.unique_name.startswith(":")
        ver.append(c.get_property("org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                  "org.freedesktop.systemd1.Manager", "Version"))
    with dbus.connect(dbus.SYSTEMD_PRIVATE, bus=False) as c:
        ver.append(c.get_property("org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                  "org.freedesktop.systemd1.Manager", "Version"))
    out = subprocess.run(["systemctl", "--version"], stdout=subprocess.PIPE, text=True).stdout
    assert ver[0] == ver[1] and out.split()[1] == ver[0].split(".")[0]


def test_private_socket_jobs(monkeypatch):
    """The driver's job handling over systemd's private socket (no bus, no
    Hello, every signal delivered): start, refuse a duplicate, stop."""
    from pyrunc.cgroups import dbus, systemd
    monkeypatch.setattr(dbus, "connect_systemd", lambda timeout=10.0: dbus.connect(dbus.SYSTEMD_PRIVATE, bus=False))
    monkeypatch.setattr(systemd, "_conn", None)
    unit = f"pyrunc-priv-{os.getpid()}.scope"
    proc = subprocess.Popen(["sleep", "300"])
    try:
        sd = systemd._systemd()
        assert not sd.conn.bus and sd.version >= 240
        props = [systemd._prop("Slice", "s", "system.slice"), systemd._prop("PIDs", "au", [proc.pid]),
                 systemd._prop("DefaultDependencies", "b", False), systemd._prop("TasksMax", "t", 5)]
        sd.start_unit(unit, props)
        assert show(unit, "ActiveState", "TasksMax") == {"ActiveState": "active", "TasksMax": "5"}
        assert rd(f"/proc/{proc.pid}/cgroup") == f"0::/system.slice/{unit}"
        with pytest.raises(Exception) as e:
            sd.start_unit(unit, props)
        assert getattr(e.value, "unit_exists", False), e.value
        assert sd.stop_unit(unit) is None
        sd.reset_failed(unit)
        assert sd.stop_unit(unit) is None  # gone already: fine
    finally:
        proc.kill()
        proc.wait()
        monkeypatch.setattr(systemd, "_conn", None)
    assert gone(unit, f"{CG}/system.slice/{unit}")

