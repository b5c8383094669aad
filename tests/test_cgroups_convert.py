"""Unit tests for pyrunc.cgroups.convert (and fs2's planning, against a fake
cgroup directory): the tables are runc's own (libcontainer/cgroups/utils_test.go,
fs2/*_test.go, utils/utils_test.go, opencontainers/cgroups utils_test.go)."""

import os

import pytest

from pyrunc.cgroups import convert, fs2
from pyrunc.cgroups.manager import CgroupError


def raises(fn, *args, match=None):
    with pytest.raises(CgroupError, match=match) as ei:
        fn(*args)
    return str(ei.value)


# --- cpu ----------------------------------------------------------------------

@pytest.mark.parametrize("shares,weight", [
    (0, 0), (2, 1), (262144, 10000),             # runc TestConvertCPUSharesToCgroupV2Value
    (1024, 39), (512, 20), (100, 4), (3, 1),     # the linear map runc 1.1.5 writes
    (1, 1), (262145, 10000), (10 ** 9, 10000),   # clamped like the v1 kernel
])
def test_cpu_shares_to_weight_linear(shares, weight):
    assert convert.cpu_shares_to_weight(shares) == weight


@pytest.mark.parametrize("shares,weight", [
    # opencontainers/cgroups v0.0.5 utils_test.go (runc >= 1.3)
    (0, 0), (1, 1), (2, 1), (3, 2), (1024, 100), (262143, 10000), (262144, 10000), (262145, 10000),
])
def test_cpu_shares_to_weight_quadratic(shares, weight):
    assert convert.cpu_shares_to_weight_quadratic(shares) == weight


def test_cpu_weight_to_shares_inverts_the_linear_map():
    for w in (1, 2, 39, 100, 5000, 9999, 10000):
        s = convert.cpu_weight_to_shares(w)
        assert convert.cpu_shares_to_weight(s) == w
        assert s == 2 or convert.cpu_shares_to_weight(s - 1) < w
    assert convert.cpu_weight_to_shares(0) == 0


def test_cpu_weight_text():
    assert convert.cpu_weight(None) is None
    assert convert.cpu_weight(0) is None
    assert convert.cpu_weight(1024) == "39"
    assert "linux.resources.cpu.shares: -1 is invalid" in raises(convert.cpu_weight, -1)
    raises(convert.cpu_weight, "1024", match="not an integer")
    raises(convert.cpu_weight, True, match="not an integer")


@pytest.mark.parametrize("quota,period,current,want", [
    (None, None, "max 100000", None),
    (0, 0, "max 100000", None),                       # runc: both 0 = unset
    (50000, None, "max 100000", "50000 100000"),      # create: runc's default period
    (50000, 0, "max 250000", "50000 250000"),         # update: the old period stays
    (None, 200000, "max 100000", "max 200000"),
    (None, 200000, "30000 100000", "30000 200000"),   # update: the old quota stays
    (-1, 100000, "30000 100000", "max 100000"),
    (-5, None, "30000 50000", "max 50000"),           # any negative quota is "no limit"
    (1000000, 500000, "max 100000", "1000000 500000"),  # the spec's example
])
def test_cpu_max(quota, period, current, want):
    assert convert.cpu_max(quota, period, current) == want


def test_cpu_max_invalid():
    assert "linux.resources.cpu.period: 999 is invalid" in raises(convert.cpu_max, 5000, 999)
    raises(convert.cpu_max, None, 1000001, match="cpu.period")
    raises(convert.cpu_max, 500, None, match="cpu.quota: 500 is invalid")
    raises(convert.cpu_max, 1.5, None, match="cpu.quota")
    raises(convert.parse_cpu_max, "garbage")


def test_cpu_burst_idle():
    assert convert.cpu_burst(None) is None
    assert convert.cpu_burst(0) == "0"
    assert convert.cpu_burst(20000, 50000) == "20000"
    assert convert.cpu_burst(20000, -1) == "20000"
    raises(convert.cpu_burst, 60000, 50000, match="cpu.burst: 60000 is invalid: larger than cpu.quota 50000")
    raises(convert.cpu_burst, -1, match="cpu.burst")
    assert convert.cpu_idle(None) is None
    assert convert.cpu_idle(0) == "0" and convert.cpu_idle(1) == "1"
    raises(convert.cpu_idle, 2, match="cpu.idle: 2 is invalid")


@pytest.mark.parametrize("value,want", [
    (None, None), ("", None), ("0", "0"), ("0-3,7", "0-3,7"), ("2-3", "2-3"),
    (" 1,3 ", "1,3"), ("0-15:2/4", "0-15:2/4"),
])
def test_cpuset_list_ok(value, want):
    assert convert.cpuset_list("cpu.cpus", value) == want


@pytest.mark.parametrize("value", ["a", "1-", "-1", "3-1", "1,,2", "1 2", "0-3:5/4", "1:1/2", "٣", 7])
def test_cpuset_list_bad(value):
    assert "linux.resources.cpu.mems:" in raises(convert.cpuset_list, "cpu.mems", value)


# --- memory -------------------------------------------------------------------

@pytest.mark.parametrize("swap,memory,want", [
    # runc TestConvertMemorySwapToCgroupV2Value (1.2.8 table)
    (0, 0, 0),          # all unset
    (-1, 0, -1),        # unlimited memory+swap, unset memory
    (300, -1, 300),     # unlimited memory
    (-1, -1, -1),       # all unlimited
    (-1, 1000, -1),     # unlimited memory+swap, set memory
    (1000, 1000, 0),    # memory+swap == memory
    (500, 200, 300),    # memory+swap > memory
    (0, -1, -1),        # unlimited memory, swap unset: unlimited swap too
])
def test_memory_swap_to_v2(swap, memory, want):
    assert convert.memory_swap_to_v2(swap, memory) == want


@pytest.mark.parametrize("swap,memory,field", [
    (-2, 0, "memory.swap: -2 is invalid"),      # negative memory+swap
    (300, 400, "memory.swap: 300 is invalid"),  # memory+swap < memory
    (300, 0, "memory.swap: 300 is invalid"),    # unset memory
    (300, -300, "memory.limit: -300 is invalid"),  # negative memory
])
def test_memory_swap_to_v2_errors(swap, memory, field):
    assert ("linux.resources." + field) in raises(convert.memory_swap_to_v2, swap, memory)


@pytest.mark.parametrize("swap,memory,want", [
    (None, None, None), (None, 1000, None), (None, -1, "max"), (1000, 1000, "0"),
    (500, 200, "300"), (-1, 1000, "max"), (0, 0, None),
])
def test_memory_swap_max(swap, memory, want):
    assert convert.memory_swap_max(swap, memory) == want


def test_memory_value():
    # runc TestNumToStr: 0 = unset, -1 = "max"
    assert convert.memory_value("memory.limit", 0) is None
    assert convert.memory_value("memory.limit", None) is None
    assert convert.memory_value("memory.limit", -1) == "max"
    assert convert.memory_value("memory.limit", 10) == "10"
    assert raises(convert.memory_value, "memory.limit", -2).startswith("linux.resources.memory.limit: -2 is invalid")
    assert convert.parse_memory_limit("max\n") == -1
    assert convert.parse_memory_limit("4096\n") == 4096


def test_check_before_update():
    convert.check_before_update(2000, None, 1000)
    convert.check_before_update(-1, 0, 10 ** 9)
    raises(convert.check_before_update, 1000, None, 1000, match="memory.limit: 1000 is invalid: rejecting")
    raises(convert.check_before_update, None, 500, 1000, match="memory.swap: 500 is invalid")


# --- pids ---------------------------------------------------------------------

def test_pids_max():
    assert convert.pids_max(None) is None
    assert convert.pids_max(-1) == "max"
    assert convert.pids_max(0) == "0"  # runtime-spec v1.3: 0 is a real limit
    assert convert.pids_max(32771) == "32771"
    assert "linux.resources.pids.limit: -2 is invalid" in raises(convert.pids_max, -2)
    raises(convert.pids_max, "10", match="pids.limit")


# --- io -----------------------------------------------------------------------

@pytest.mark.parametrize("weight,want", [(0, 0), (10, 1), (1000, 10000), (500, 4950), (100, 910)])
def test_blkio_weight_to_io_weight(weight, want):
    # runc TestConvertBlkIOToIOWeightValue (+ points on the line)
    assert convert.blkio_weight_to_io_weight(weight) == want


def test_blkio_weight_checks():
    assert convert.blkio_weight("blockIO.weight", None) is None
    assert convert.blkio_weight("blockIO.weight", 0) is None
    assert convert.blkio_weight("blockIO.weight", 10) == 10
    raises(convert.blkio_weight, "blockIO.weight", 9, match="blockIO.weight: 9 is invalid")
    raises(convert.blkio_weight, "blockIO.weight", 1001, match="blockIO.weight: 1001 is invalid")
    raises(convert.blkio_weight, "blockIO.weight", 70000, match="out of range")


def test_io_lines():
    assert convert.bfq_weight_device("w", {"major": 8, "minor": 0, "weight": 500, "leafWeight": 300}) == "8:0 500"
    assert convert.bfq_weight_device("w", {"major": 8, "minor": 16, "leafWeight": 300}) is None
    assert convert.io_max_line("t", {"major": 8, "minor": 0, "rate": 600}, "rbps") == "8:0 rbps=600"
    assert convert.io_max_line("t", {"major": 253, "minor": 1, "rate": 0}, "wiops") == "253:1 wiops=max"
    raises(convert.io_max_line, "blockIO.throttleReadBpsDevice[0]", {"major": 8, "rate": 1}, "rbps",
           match=r"blockIO.throttleReadBpsDevice\[0\].minor")
    raises(convert.io_max_line, "t", {"major": -8, "minor": 0, "rate": 1}, "rbps", match="t.major: -8")


# --- hugetlb ------------------------------------------------------------------

def test_hugepage_size():
    for ok in ("2MB", "1GB", "64KB", "32MB"):
        assert convert.hugepage_size("hugepageLimits[0].pageSize", ok) == ok
    for bad in ("2M", "2mb", "0MB", "MB", "2 MB", "1TB", "../2MB", 2, None):
        raises(convert.hugepage_size, "hugepageLimits[0].pageSize", bad, match=r"hugepageLimits\[0\].pageSize")
    assert convert.hugetlb_files("2MB") == ("hugetlb.2MB.max", "hugetlb.2MB.rsvd.max")


@pytest.mark.parametrize("names,sizes,warns", [
    # runc TestGetHugePageSizeImpl
    (["hugepages-1048576kB", "hugepages-2048kB", "hugepages-32768kB", "hugepages-64kB"],
     ["1GB", "2MB", "32MB", "64KB"], False),
    ([], [], False),
    (["hugepages-akB"], [], True),
    (["1024kB"], [], False),
    (["whatever-1024kB"], [], False),
    (["hugepages-1024gB"], [], True),
    (["hugepages-1024"], [], True),
    (["hugepages-4194304kB", "hugepages-2048kB", "hugepages-akB", "hugepages-64kB"], ["4GB", "2MB", "64KB"], True),
    (["hugepages-2048kB", "hugepages-kB", "hugepages-64kB"], ["2MB", "64KB"], True),
])
def test_hugepage_sizes(names, sizes, warns):
    got, warn = convert.hugepage_sizes(names)
    assert got == sizes
    assert bool(warn) == warns


# --- rdma ---------------------------------------------------------------------

def test_rdma():
    assert convert.rdma_max("mlx4_0", {"hcaHandles": 2, "hcaObjects": 2000}) == "mlx4_0 hca_handle=2 hca_object=2000"
    assert convert.rdma_max("mlx4_0", {"hcaObjects": 1000}) == "mlx4_0 hca_object=1000"
    assert convert.rdma_max("rxe3", {"hcaHandles": 3}) == "rxe3 hca_handle=3"
    raises(convert.rdma_max, "mlx5_1", {}, match="rdma.mlx5_1")
    raises(convert.rdma_max, "mlx5_1", {"hcaHandles": 1 << 32}, match="rdma.mlx5_1.hcaHandles")
    raises(convert.rdma_max, "a b", {"hcaHandles": 1}, match="linux.resources.rdma")
    got = convert.parse_rdma("mlx4_0 hca_handle=2 hca_object=2000\nocrdma1 hca_handle=3 hca_object=max\nbad\n")
    assert got == {"mlx4_0": {"hca_handle": 2, "hca_object": 2000},
                   "ocrdma1": {"hca_handle": 3, "hca_object": 4294967295}}


# --- unified ------------------------------------------------------------------

@pytest.mark.parametrize("key,ctrl", [
    ("memory.max", "memory"), ("hugetlb.1GB.max", "hugetlb"), ("io.max", "io"),
    ("cgroup.freeze", "cgroup"), ("memory.oom.group", "memory"), ("cpu.weight.nice", "cpu"),
])
def test_unified_key_ok(key, ctrl):
    assert convert.unified_key(key) == ctrl


@pytest.mark.parametrize("key", ["", "memory", ".max", "memory.", "../memory.max", "sub/memory.max",
                                 "memory..max", "/memory.max", "mem-ory.max", "memory.max\0", 5])
def test_unified_key_bad(key):
    assert raises(convert.unified_key, key).startswith("linux.resources.unified")


def test_unified_lines():
    # runc 1.2 WriteFileByLine: one write per line, the newline kept
    assert convert.unified_lines("io.max", "8:0 rbps=1") == ["8:0 rbps=1"]
    assert convert.unified_lines("io.max", "259:0 rbps=2097152 wiops=120\n253:0 rbps=2097152 wiops=120") == \
        ["259:0 rbps=2097152 wiops=120\n", "253:0 rbps=2097152 wiops=120"]
    assert convert.unified_lines("io.max", "a\n\nb\n") == ["a\n", "b\n"]
    raises(convert.unified_lines, "memory.max", 5, match=r"unified\['memory.max'\]")


# --- parsing ------------------------------------------------------------------

def test_parsers():
    assert convert.parse_uint("max\n") == convert.MAX_UINT64
    assert convert.parse_uint("-5") == 0
    assert convert.parse_uint("42\n") == 42
    assert convert.parse_keyed("oom 1\noom_kill 3\nmax max\n") == {"oom": 1, "oom_kill": 3, "max": convert.MAX_UINT64}
    io = "8:0 rbytes=90112 wbytes=0 rios=3 wios=0 dbytes=0 dios=0\n253:1 rbytes=1 wbytes=2 rios=3 wios=4\n"
    assert convert.parse_io_stat(io) == [
        (8, 0, {"rbytes": 90112, "wbytes": 0, "rios": 3, "wios": 0, "dbytes": 0, "dios": 0}),
        (253, 1, {"rbytes": 1, "wbytes": 2, "rios": 3, "wios": 4})]


@pytest.mark.parametrize("text,want", [
    # runc fs2 TestParseCgroupFromReader
    ("0::/user.slice/user-1001.slice/session-1.scope\n", "/user.slice/user-1001.slice/session-1.scope"),
    ("2:cpuset:/foo\n1:name=systemd:/\n0::/user.slice/user-1001.slice/session-1.scope\n",
     "/user.slice/user-1001.slice/session-1.scope"),
    ("2:cpuset:/foo\n1:name=systemd:/\n", None),
    ("garbage\n", None),
])
def test_own_cgroup_v2(text, want):
    if want is None:
        raises(convert.own_cgroup_v2, text)
    else:
        assert convert.own_cgroup_v2(text) == want


@pytest.mark.parametrize("path,want", [
    # runc TestCleanPath
    ("", ""), ("rootfs", "rootfs"), ("../../../var", "var"), ("/../../../var", "/var"),
    ("/foo/bar/", "/foo/bar"), ("/foo/bar/../", "/foo"),
    ("a/../..", "."), ("//a//b", "/a/b"), ("./x/./y/", "x/y"),
])
def test_clean_path(path, want):
    assert convert.clean_path(path) == want


# --- fs2: cgroupsPath and set() planning against a fake directory -------------

OWN = "0::/user.slice/user-0.slice/session-1.scope\n"


@pytest.mark.parametrize("cgpath,cid,want", [
    # runc fs2 TestDefaultDirPath: absolute below the mount, relative below
    # the parent of our own cgroup; empty is the container ID there
    ("/foo/bar", "c1", "/sys/fs/cgroup/foo/bar"),
    ("foo/bar", "c1", "/sys/fs/cgroup/user.slice/user-0.slice/foo/bar"),
    (None, "c1", "/sys/fs/cgroup/user.slice/user-0.slice/c1"),
    ("", "c1", "/sys/fs/cgroup/user.slice/user-0.slice/c1"),
    ("../../../x", "c1", "/sys/fs/cgroup/user.slice/user-0.slice/x"),
    ("/../../x/./y/", "c1", "/sys/fs/cgroup/x/y"),
    ("/libpod_parent/libpod-cd7d", "c1", "/sys/fs/cgroup/libpod_parent/libpod-cd7d"),
])
def test_default_dir_path(cgpath, cid, want):
    assert fs2.default_dir_path(cgpath, cid, OWN) == want


@pytest.mark.parametrize("cgpath", ["/", ".", "/..", "a/.."])
def test_default_dir_path_refuses_shared_cgroups(cgpath):
    raises(fs2.default_dir_path, cgpath, "c1", OWN, match="linux.cgroupsPath")


def test_load_keeps_only_ancestors():
    m = fs2.load({"driver": "fs2", "path": "/sys/fs/cgroup/a/b",
                  "created": ["/sys/fs/cgroup/a", "/sys/fs/cgroup/a/b", "/sys/fs/cgroup/other", "/etc"]})
    assert m.created == ["/sys/fs/cgroup/a", "/sys/fs/cgroup/a/b"]
    assert m.state() == {"driver": "fs2", "path": "/sys/fs/cgroup/a/b",
                         "created": ["/sys/fs/cgroup/a", "/sys/fs/cgroup/a/b"]}
    for bad in ("/sys/fs/cgroup", "/sys/fs/cgroup/a/../b", "/tmp/x", None):
        raises(fs2.load, {"driver": "fs2", "path": bad})


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """An Fs2Manager on a plain directory; writes are recorded, not made."""
    d = tmp_path / "cg"
    d.mkdir()
    files = {"cgroup.controllers": "cpuset cpu io memory hugetlb pids rdma\n", "cpu.max": "max 100000\n",
             "memory.max": "max\n", "memory.current": "4096\n", "io.weight": "default 100\n"}
    for k, v in files.items():
        (d / k).write_text(v)
    writes = []

    def record(path, value):
        name = os.path.basename(path)
        if not (d / name).exists() and not name.startswith(("pids", "memory", "cpu", "io", "hugetlb", "rdma")):
            raise AssertionError(f"unexpected file {name}")
        writes.append((name, value if isinstance(value, str) else str(value)))

    monkeypatch.setattr(fs2, "write_file", record)
    m = fs2.Fs2Manager(str(d))
    m.writes = writes
    m.dir = d
    return m


def test_set_writes_in_runcs_order(fake):
    fake.set({
        "memory": {"limit": 33554432, "swap": 67108864, "reservation": 1 << 20, "swappiness": 10,
                   "disableOOMKiller": True, "kernel": -1},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 10000, "cpus": "0", "mems": "0",
                "realtimeRuntime": 5, "realtimePeriod": 10, "idle": 0},
        "pids": {"limit": 50},
        "blockIO": {"weight": 500, "leafWeight": 300, "weightDevice": [{"major": 8, "minor": 0, "weight": 100}],
                    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 600}],
                    "throttleWriteIOPSDevice": [{"major": 8, "minor": 16, "rate": 300}]},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 209715200}],
        "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
        "network": {"classID": 1048577},
        "unified": {"memory.high": "max", "io.max": "8:0 rbps=1\n8:16 wbps=2"},
        "devices": [{"allow": False, "access": "rwm"}],
    })
    assert fake.writes == [
        ("pids.max", "50"),
        ("memory.swap.max", "33554432"), ("memory.max", "33554432"), ("memory.low", "1048576"),
        ("io.weight", "4950"),  # no io.bfq.weight: converted, and no per-device weights
        ("io.max", "8:0 rbps=600"), ("io.max", "8:16 wiops=300"),
        ("cpu.idle", "0"), ("cpu.weight", "39"), ("cpu.max.burst", "10000"), ("cpu.max", "50000 100000"),
        ("cpuset.cpus", "0"), ("cpuset.mems", "0"),
        ("hugetlb.2MB.max", "209715200"), ("hugetlb.2MB.rsvd.max", "209715200"),
        ("rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
        ("memory.high", "max"), ("io.max", "8:0 rbps=1\n"), ("io.max", "8:16 wbps=2"),
    ]


def test_set_partial_updates(fake):
    (fake.dir / "cpu.max").write_text("20000 50000\n")
    (fake.dir / "memory.max").write_text("67108864\n")
    fake.set({"cpu": {"quota": 30000}})
    fake.set({"cpu": {"period": 200000}})
    fake.set({"memory": {"swap": 100663296}})   # minus the limit the cgroup has
    fake.set({"memory": {"limit": -1}})          # unlimited memory lifts swap too
    fake.set({"pids": {"limit": 0}})
    fake.set({"pids": {"limit": -1}})
    fake.set({})
    fake.set(None)
    assert fake.writes == [("cpu.max", "30000 50000"), ("cpu.max", "20000 200000"),
                           ("memory.swap.max", "33554432"), ("memory.swap.max", "max"), ("memory.max", "max"),
                           ("pids.max", "0"), ("pids.max", "max")]


def test_set_bfq(fake):
    (fake.dir / "io.bfq.weight").write_text("default 100\n")
    fake.set({"blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 200},
                                                          {"major": 8, "minor": 16, "leafWeight": 20}]}})
    assert fake.writes == [("io.bfq.weight", "500"), ("io.bfq.weight", "8:0 200\n")]


def test_set_checks_everything_before_writing(fake):
    bad = [
        ({"pids": {"limit": 5}, "memory": {"limit": 100, "swap": 50}}, "linux.resources.memory.swap: 50 is invalid"),
        ({"pids": {"limit": 5}, "memory": {"swap": 5000}}, "unable to set swap limit without memory limit"),
        ({"pids": {"limit": 5}, "cpu": {"cpus": "0-"}}, "linux.resources.cpu.cpus"),
        ({"pids": {"limit": 5}, "unified": {"../x.max": "1"}}, "linux.resources.unified"),
        ({"pids": {"limit": 5}, "hugepageLimits": [{"pageSize": "2M", "limit": 1}]}, "hugepageLimits[0].pageSize"),
        ({"pids": {"limit": 5}, "memory": {"limit": 4096, "checkBeforeUpdate": True}}, "rejecting memory limit"),
        ({"pids": {"limit": 5}, "blockIO": {"throttleReadBpsDevice": {"major": 1}}}, "not an array"),
        ({"pids": {"limit": 5}, "memory": 5}, "linux.resources.memory: 5 is invalid"),
        ("x", "linux.resources"),
    ]
    for res, msg in bad:
        with pytest.raises(CgroupError) as ei:
            fake.set(res)
        assert msg in str(ei.value)
    assert fake.writes == []
    fake.set({"memory": {"limit": 8192, "checkBeforeUpdate": True}})
    assert fake.writes == [("memory.max", "8192")]


def test_set_devices_only_when_given(fake, monkeypatch):
    import sys
    import types
    calls = []
    mod = types.ModuleType("pyrunc.cgroups.devices")
    mod.apply_v2 = lambda path, rules: calls.append((path, rules))
    monkeypatch.setitem(sys.modules, "pyrunc.cgroups.devices", mod)
    import pyrunc.cgroups
    monkeypatch.setattr(pyrunc.cgroups, "devices", mod, raising=False)
    fake.set({"devices": [{"allow": True, "access": "rwm"}]})  # update: never touches devices
    assert calls == []
    fake.set({"pids": {"limit": 3}, "cpu": {"cpus": "0"}}, devices=["RULES"])
    assert calls == [(fake.path, ["RULES"])]
    assert fake.writes == [("pids.max", "3"), ("cpuset.cpus", "0")]
