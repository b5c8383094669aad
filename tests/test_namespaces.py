"""linux.namespaces: new, joined by path and inherited; the id maps, time
offsets, hostname and sysctls that live in them; what validation refuses.

Namespaces are compared through /proc/<pid>/ns/* of the container init
(the same inode means the same namespace) and from inside the container.
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from support import TEST_TMP, Bundle, assert_refused, base_config, mounts_under

# spec type -> /proc/<pid>/ns/<name>
PROC_NAME = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt",
             "user": "user", "cgroup": "cgroup", "time": "time"}
MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def ns_link(pid, name):
    return os.readlink(f"/proc/{pid}/ns/{name}")


def sh(script):
    return ["sh", "-c", script]


def run(runtime, b, cid="c"):
    """Foreground `run`: the container's stdout/stderr come back in p.stdout/p.stderr."""
    return runtime("run", "--bundle", b, cid, timeout=30)


def created_pid(runtime, b, cid):
    """create; the init is in all its namespaces from then on: its host PID."""
    runtime.create(cid, b)
    return runtime.state(cid)["pid"]


def start_and_output(runtime, cid):
    """start a created container that exits by itself; its stdout once stopped."""
    runtime("start", cid, check=True)
    assert runtime.wait_status(cid, "stopped")
    return Path(runtime.workdir / f"{cid}.out").read_text()


def minimal_mounts(cfg):
    """Only what works in any namespace combination (no proc/sysfs/mqueue/cgroup)."""
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] in ("/dev", "/dev/pts", "/dev/shm")]
    cfg["linux"]["maskedPaths"] = []
    cfg["linux"]["readonlyPaths"] = []
    return cfg


def userns_config(args, namespaces=("pid", "network", "ipc", "uts", "mount", "user")):
    cfg = base_config(args)
    cfg["linux"]["namespaces"] = [{"type": t} for t in namespaces]
    cfg["linux"]["uidMappings"] = [dict(m) for m in MAP]
    cfg["linux"]["gidMappings"] = [dict(m) for m in MAP]
    # a cgroup v1 hierarchy cannot be mounted from a non-initial user namespace
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    return cfg


@pytest.fixture
def userns_bundle(rootfs_template):
    """Bundles on a path the mapped root (host uid 100000) can traverse and read."""
    made = []

    def make(args, config=None):
        d = Path(tempfile.mkdtemp(prefix="userns-bundle-", dir=TEST_TMP))
        made.append(d)
        d.chmod(0o755)
        rootfs = d / "rootfs"
        subprocess.run(["cp", "-a", str(rootfs_template), str(rootfs)], check=True)
        rootfs.chmod(0o755)
        b = Bundle(d, rootfs)
        b.write(config if config is not None else userns_config(args))
        return b

    yield make
    for d in made:
        shutil.rmtree(d, ignore_errors=True)


# --- new namespaces ----------------------------------------------------------------------


def test_default_namespaces_are_new_others_shared(runtime, make_bundle):
    b = make_bundle(["sleep", "300"])
    runtime.create("c", b)
    pid = runtime.state("c")["pid"]
    for t in ("pid", "network", "ipc", "uts", "mount"):
        assert ns_link(pid, PROC_NAME[t]) != ns_link("self", PROC_NAME[t]), t
    for t in ("user", "cgroup", "time"):
        assert ns_link(pid, PROC_NAME[t]) == ns_link("self", PROC_NAME[t]), t


@pytest.mark.parametrize("nstype", ["pid", "network", "ipc", "uts", "cgroup", "time", "user"])
def test_each_namespace_alone(runtime, make_bundle, userns_bundle, nstype):
    """mount + one other type: exactly those two are new, the rest is the host's."""
    types = ["mount", nstype]
    if nstype == "user":
        cfg = minimal_mounts(userns_config(["sleep", "300"], namespaces=types))
    else:
        cfg = minimal_mounts(base_config(["sleep", "300"]))
        cfg["linux"]["namespaces"] = [{"type": t} for t in types]
    if nstype != "uts":
        del cfg["hostname"]
    b = userns_bundle(None, cfg) if nstype == "user" else make_bundle(config=cfg)
    runtime.create("c", b)
    pid = runtime.state("c")["pid"]
    for t, name in PROC_NAME.items():
        if t in types:
            assert ns_link(pid, name) != ns_link("self", name), t
        else:
            assert ns_link(pid, name) == ns_link("self", name), t


def test_pid_namespace_process_is_pid1(runtime, make_bundle):
    b = make_bundle(sh("echo $$; ls /proc | grep -c '^[0-9]'"))
    p = run(runtime, b)
    assert p.returncode == 0, p.stderr
    pid, nprocs = p.stdout.split()
    assert pid == "1"
    # sh and ls (and grep): nothing of the host is visible
    assert int(nprocs) <= 3


def test_network_namespace_only_loopback_up(runtime, make_bundle):
    b = make_bundle(sh("ls /sys/class/net; cat /sys/class/net/lo/flags; ip link show lo"))
    p = run(runtime, b)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "lo"
    assert int(lines[1], 16) & 0x1, "IFF_UP not set on lo"
    assert "UP" in lines[2].split("<")[1].split(">")[0].split(","), lines[2]


def test_no_network_entry_shares_host_network(runtime, make_bundle):
    cfg = base_config(["ls", "/sys/class/net"])
    cfg["linux"]["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
    b = make_bundle(config=cfg)
    pid = created_pid(runtime, b, "c")
    assert ns_link(pid, "net") == ns_link("self", "net")
    seen = sorted(start_and_output(runtime, "c").split())
    assert seen == sorted(os.listdir("/sys/class/net"))


def test_uts_hostname_and_domainname(runtime, make_bundle):
    host_name = os.uname().nodename
    cfg = base_config(sh("hostname; cat /proc/sys/kernel/domainname"))
    cfg["hostname"] = "box-one"
    cfg["domainname"] = "example.test"
    b = make_bundle(config=cfg)
    p = run(runtime, b)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["box-one", "example.test"]
    assert os.uname().nodename == host_name


def test_mount_namespace_private(runtime, make_bundle):
    b = make_bundle(["awk", "{print $5}", "/proc/self/mountinfo"])
    before = Path("/proc/self/mountinfo").read_text()
    p = run(runtime, b)
    assert p.returncode == 0, p.stderr
    points = p.stdout.split()
    assert points.count("/") == 1
    cfg = b.config
    allowed = {"/"} | {m["destination"] for m in cfg["mounts"]}
    allowed |= set(cfg["linux"]["maskedPaths"]) | set(cfg["linux"]["readonlyPaths"])
    stray = [mp for mp in points if mp not in allowed and not mp.startswith("/sys/fs/cgroup/")]
    assert stray == [], "host mounts visible in the container"
    assert mounts_under(b.path) == []
    # other tests and clients may mount on the host meanwhile: compare what could be ours
    ours = [mp for mp in points if mp.startswith(str(TEST_TMP))]
    assert ours == []
    del before


def test_cgroup_namespace_root_paths(runtime, make_bundle):
    script = "cat /proc/self/cgroup"
    cfg = base_config(sh(script))
    cfg["linux"]["namespaces"].append({"type": "cgroup"})
    p = run(runtime, make_bundle(config=cfg))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines
    for line in lines:
        assert line.split(":", 2)[2] == "/", line


def test_without_cgroup_namespace_host_view(runtime, make_bundle):
    """No cgroup namespace: the container sees the same paths the host sees for it."""
    b = make_bundle(["cat", "/proc/self/cgroup"])
    pid = created_pid(runtime, b, "c")
    host_view = Path(f"/proc/{pid}/cgroup").read_text()
    assert ns_link(pid, "cgroup") == ns_link("self", "cgroup")
    assert start_and_output(runtime, "c") == host_view


def test_time_namespace_offsets(runtime, make_bundle):
    mono, boot = 500000, 1000000
    cfg = base_config(sh("cat /proc/uptime; cat /proc/self/timens_offsets"))
    cfg["linux"]["namespaces"].append({"type": "time"})
    cfg["linux"]["timeOffsets"] = {"monotonic": {"secs": mono, "nanosecs": 0},
                                   "boottime": {"secs": boot, "nanosecs": 0}}
    b = make_bundle(config=cfg)
    before = float(Path("/proc/uptime").read_text().split()[0])
    p = run(runtime, b)
    after = float(Path("/proc/uptime").read_text().split()[0])
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    inside = float(lines[0].split()[0])
    assert before + boot - 1 <= inside <= after + boot + 1, (before, inside, after)
    offsets = {ln.split()[0]: ln.split()[1:] for ln in lines[1:]}
    assert offsets["monotonic"] == [str(mono), "0"]
    assert offsets["boottime"] == [str(boot), "0"]


def test_time_offsets_seen_from_host(runtime, make_bundle):
    cfg = base_config(["sleep", "300"])
    cfg["linux"]["namespaces"].append({"type": "time"})
    cfg["linux"]["timeOffsets"] = {"boottime": {"secs": 3600, "nanosecs": 5}}
    runtime.create("c", make_bundle(config=cfg))
    pid = runtime.state("c")["pid"]
    assert ns_link(pid, "time") != ns_link("self", "time")
    offsets = {ln.split()[0]: ln.split()[1:]
               for ln in Path(f"/proc/{pid}/timens_offsets").read_text().splitlines()}
    assert offsets["boottime"] == ["3600", "5"]
    assert offsets["monotonic"] == ["0", "0"]


# --- user namespace ----------------------------------------------------------------------


def test_user_namespace_mapping(runtime, userns_bundle):
    b = userns_bundle(["sleep", "300"])
    runtime.create("u", b)
    pid = runtime.state("u")["pid"]
    assert ns_link(pid, "user") != ns_link("self", "user")
    for f in ("uid_map", "gid_map"):
        assert Path(f"/proc/{pid}/{f}").read_text().split() == ["0", "100000", "65536"], f
    st = Path(f"/proc/{pid}/status").read_text()
    uids = [ln.split()[1:] for ln in st.splitlines() if ln.startswith("Uid:")][0]
    assert uids == ["100000"] * 4


def test_user_namespace_inside_and_file_ownership(runtime, userns_bundle):
    cfg = userns_config(sh("id -u; id -g; stat -c %u /bin/busybox; touch /home/made-inside; "
                           "stat -c '%u %g' /home/made-inside"))
    b = userns_bundle(None, cfg)
    shared = b.path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    cfg["mounts"].append({"destination": "/home", "type": "bind", "source": str(shared),
                          "options": ["rbind", "rw"]})
    b.write(cfg)
    p = run(runtime, b, "u")
    assert p.returncode == 0, p.stderr
    out = p.stdout.split("\n")
    assert out[0] == "0" and out[1] == "0"
    assert out[2] == "65534"  # host root is unmapped: the overflow uid
    assert out[3] == "0 0"
    st = (shared / "made-inside").stat()
    assert (st.st_uid, st.st_gid) == (100000, 100000)


def test_user_namespace_bounding_set_is_the_configured_one(runtime, userns_bundle):
    """A new user namespace starts with a full bounding set (CAP_SYS_RESOURCE too, which
    this host's runtime lacks): everything the config does not list must be dropped."""
    cfg = userns_config(sh("grep -E '^Cap(Bnd|Eff)' /proc/self/status"))
    for k in ("bounding", "effective", "permitted"):
        cfg["process"]["capabilities"][k] = ["CAP_KILL", "CAP_SYS_RESOURCE"]
    cfg["process"]["capabilities"]["ambient"] = []
    b = userns_bundle(None, cfg)
    p = run(runtime, b, "ubnd")
    assert p.returncode == 0, p.stderr
    want = (1 << 5) | (1 << 24)  # CAP_KILL, CAP_SYS_RESOURCE: grantable inside the namespace
    lines = dict(line.split(":") for line in p.stdout.split("\n") if line)
    assert int(lines["CapBnd"], 16) == want
    assert int(lines["CapEff"], 16) == want


def test_join_user_namespace_by_path(runtime, userns_bundle):
    a = userns_bundle(["sleep", "300"])
    runtime.create("a", a)
    apid = runtime.state("a")["pid"]
    cfg = userns_config(sh("id -u; cat /proc/self/uid_map"))
    del cfg["linux"]["uidMappings"], cfg["linux"]["gidMappings"]
    for ns in cfg["linux"]["namespaces"]:
        if ns["type"] == "user":
            ns["path"] = f"/proc/{apid}/ns/user"
    b = userns_bundle(None, cfg)
    bpid = created_pid(runtime, b, "b")
    assert ns_link(bpid, "user") == ns_link(apid, "user")
    # the other namespaces are new ones, not a's
    assert ns_link(bpid, "net") != ns_link(apid, "net")
    assert start_and_output(runtime, "b").split() == ["0", "0", "100000", "65536"]


def test_user_namespace_non_root_user_and_groups(runtime, userns_bundle):
    cfg = userns_config(sh("cat /proc/$$/status"))
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 3000]}
    p = run(runtime, userns_bundle(None, cfg), "u")
    assert p.returncode == 0, p.stderr
    st = {ln.split(":")[0]: ln.split(":", 1)[1].split() for ln in p.stdout.splitlines() if ":" in ln}
    assert st["Uid"] == ["1000"] * 4
    assert st["Gid"] == ["1000"] * 4
    assert sorted(st["Groups"], key=int) == ["5", "3000"]


# --- joining by path ---------------------------------------------------------------------


def test_join_network_uts_ipc_by_path(runtime, make_bundle):
    a_cfg = base_config(["sleep", "300"])
    a_cfg["hostname"] = "ns-a"
    a = make_bundle(config=a_cfg)
    runtime.create("a", a)
    apid = runtime.state("a")["pid"]
    b_cfg = base_config(sh("hostname; ls /sys/class/net"))
    del b_cfg["hostname"]
    b_cfg["linux"]["namespaces"] = [
        {"type": "pid"}, {"type": "mount"},
        {"type": "network", "path": f"/proc/{apid}/ns/net"},
        {"type": "uts", "path": f"/proc/{apid}/ns/uts"},
        {"type": "ipc", "path": f"/proc/{apid}/ns/ipc"},
    ]
    b = make_bundle(config=b_cfg)
    bpid = created_pid(runtime, b, "b")
    for name in ("net", "uts", "ipc"):
        assert ns_link(bpid, name) == ns_link(apid, name), name
    for name in ("pid", "mnt"):
        assert ns_link(bpid, name) != ns_link(apid, name), name
    assert start_and_output(runtime, "b").split() == ["ns-a", "lo"]


def test_join_pid_namespace_by_path(runtime, make_bundle):
    a = make_bundle(["sleep", "300"])
    runtime.create("a", a)
    apid = runtime.state("a")["pid"]
    cfg = base_config(sh("echo $$; ls /proc | grep -c '^[0-9]'"))
    for ns in cfg["linux"]["namespaces"]:
        if ns["type"] == "pid":
            ns["path"] = f"/proc/{apid}/ns/pid"
    bpid = created_pid(runtime, make_bundle(config=cfg), "b")
    assert ns_link(bpid, "pid") == ns_link(apid, "pid")
    inner_pid, nprocs = start_and_output(runtime, "b").split()
    assert inner_pid != "1"  # a's init is PID 1 there
    assert int(nprocs) >= 2


def test_join_time_namespace_by_path(runtime, make_bundle):
    a_cfg = base_config(["sleep", "300"])
    a_cfg["linux"]["namespaces"].append({"type": "time"})
    a_cfg["linux"]["timeOffsets"] = {"boottime": {"secs": 7200, "nanosecs": 0}}
    runtime.create("a", make_bundle(config=a_cfg))
    apid = runtime.state("a")["pid"]
    b_cfg = base_config(["cat", "/proc/self/timens_offsets"])
    b_cfg["linux"]["namespaces"].append({"type": "time", "path": f"/proc/{apid}/ns/time"})
    bpid = created_pid(runtime, make_bundle(config=b_cfg), "b")
    assert ns_link(bpid, "time") == ns_link(apid, "time")
    offsets = {ln.split()[0]: ln.split()[1:] for ln in start_and_output(runtime, "b").splitlines()}
    assert offsets["boottime"] == ["7200", "0"]


def test_join_host_namespace_by_path(runtime, make_bundle):
    cfg = base_config(["sleep", "300"])
    for ns in cfg["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = f"/proc/{os.getpid()}/ns/net"
    runtime.create("c", make_bundle(config=cfg))
    pid = runtime.state("c")["pid"]
    assert ns_link(pid, "net") == ns_link("self", "net")


def test_join_path_not_a_namespace(runtime, make_bundle):
    cfg = base_config(["true"])
    for ns in cfg["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = "/etc/hostname"
    b = make_bundle(config=cfg)
    assert_refused(runtime, b, "not a namespace", "/etc/hostname")


def test_join_path_missing(runtime, make_bundle):
    cfg = base_config(["true"])
    for ns in cfg["linux"]["namespaces"]:
        if ns["type"] == "ipc":
            ns["path"] = "/proc/999999999/ns/ipc"
    b = make_bundle(config=cfg)
    assert_refused(runtime, b, "no such file or directory")


def test_join_path_wrong_type(runtime, make_bundle):
    cfg = base_config(["true"])
    for ns in cfg["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = f"/proc/{os.getpid()}/ns/uts"
    b = make_bundle(config=cfg)
    assert_refused(runtime, b, "not a network namespace")


# --- validation --------------------------------------------------------------------------


def test_duplicate_namespace_refused(runtime, make_bundle):
    cfg = base_config(["true"])
    cfg["linux"]["namespaces"].append({"type": "network"})
    assert_refused(runtime, make_bundle(config=cfg), "duplicate")


def test_uid_mappings_without_user_namespace_refused(runtime, make_bundle):
    cfg = base_config(["true"])
    cfg["linux"]["uidMappings"] = [dict(m) for m in MAP]
    cfg["linux"]["gidMappings"] = [dict(m) for m in MAP]
    assert_refused(runtime, make_bundle(config=cfg), "user namespace")


def test_hostname_without_uts_namespace_refused(runtime, make_bundle):
    cfg = base_config(["true"])
    cfg["linux"]["namespaces"] = [ns for ns in cfg["linux"]["namespaces"] if ns["type"] != "uts"]
    assert_refused(runtime, make_bundle(config=cfg), "hostname")
    assert os.uname().nodename != "pyrunc-test"


def test_time_offsets_without_time_namespace_refused(runtime, make_bundle):
    cfg = base_config(["true"])
    cfg["linux"]["timeOffsets"] = {"boottime": {"secs": 10}}
    assert_refused(runtime, make_bundle(config=cfg), "time namespace")


@pytest.mark.parametrize("key,value,drop", [
    ("net.ipv4.ip_forward", "1", "network"),
    ("kernel.shmmax", "123456789", "ipc"),
])
def test_sysctl_without_its_namespace_refused(runtime, make_bundle, key, value, drop):
    cfg = base_config(["true"])
    cfg["linux"]["namespaces"] = [ns for ns in cfg["linux"]["namespaces"] if ns["type"] != drop]
    cfg["linux"]["sysctl"] = {key: value}
    assert_refused(runtime, make_bundle(config=cfg), key)


def test_sysctl_not_namespaced_refused(runtime, make_bundle):
    cfg = base_config(["true"])
    cfg["linux"]["sysctl"] = {"vm.swappiness": "10"}
    assert_refused(runtime, make_bundle(config=cfg), "vm.swappiness")


def test_sysctl_unknown_key_in_namespace_fails_cleanly(runtime, make_bundle):
    cfg = base_config(["true"])
    cfg["linux"]["sysctl"] = {"net.ipv4.no_such_sysctl": "1"}
    assert_refused(runtime, make_bundle(config=cfg), "net.ipv4.no_such_sysctl")


# --- sysctls -----------------------------------------------------------------------------


def test_sysctl_applied_in_container_namespaces(runtime, make_bundle):
    host_fwd = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    host_shm = Path("/proc/sys/kernel/shmmax").read_text()
    cfg = base_config(sh("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax"))
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.shmmax": "123456789"}
    p = run(runtime, make_bundle(config=cfg))
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["1", "123456789"]
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_fwd
    assert Path("/proc/sys/kernel/shmmax").read_text() == host_shm


# --- no mount namespace (config-linux.md: the runtime's is shared) ------------------------


def _no_mount_ns(cfg):
    cfg["linux"]["namespaces"] = [n for n in cfg["linux"]["namespaces"] if n["type"] != "mount"]
    cfg["linux"].pop("maskedPaths", None)
    cfg["linux"].pop("readonlyPaths", None)
    cfg["root"]["readonly"] = False
    return cfg


def test_without_mount_namespace_the_runtimes_is_shared_and_mounts_are_undone(runtime, make_bundle):
    """runc accepts it (runtime-tools linux_ns_itype): the container's mounts are made in the
    runtime's mount namespace, its root is a chroot; pyrunc also unmounts them at delete."""
    cfg = _no_mount_ns(base_config(["sh", "-c", "readlink /proc/self/ns/mnt; test -c /dev/null && echo devok"]))
    b = make_bundle(config=cfg)
    before = mounts_under(b.path)
    runtime.create("nomnt", b)
    pid = runtime.state("nomnt")["pid"]
    assert os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt")
    assert os.readlink(f"/proc/{pid}/root") == str(b.rootfs)
    during = mounts_under(b.path)
    assert str(b.rootfs / "proc") in during and str(b.rootfs / "dev") in during
    runtime("start", "nomnt", check=True)
    assert runtime.wait_status("nomnt", "stopped")
    out = Path(runtime.workdir / "nomnt.out").read_text().split()
    assert out == [os.readlink("/proc/self/ns/mnt"), "devok"]
    runtime("delete", "nomnt", check=True)
    assert mounts_under(b.path) == before


@pytest.mark.parametrize("what", ["readonly", "propagation"])
def test_without_mount_namespace_host_wide_changes_are_refused(runtime, make_bundle, what):
    cfg = _no_mount_ns(base_config(["true"]))
    if what == "readonly":
        cfg["root"]["readonly"] = True
    else:
        cfg["linux"]["rootfsPropagation"] = "shared"
    b = make_bundle(config=cfg)
    assert_refused(runtime, b, "private mount namespace")


def test_without_mount_namespace_a_failed_create_unmounts_what_it_mounted(runtime, make_bundle):
    cfg = _no_mount_ns(base_config(["true"]))
    # /proc and /dev are mounted first, then this one fails: its source does not exist
    cfg["mounts"].append({"destination": "/mnt", "type": "bind", "source": "/nonexistent-pyrunc",
                          "options": ["rbind"]})
    b = make_bundle(config=cfg)
    assert_refused(runtime, b, "nonexistent-pyrunc")


def test_without_mount_namespace_delete_keeps_mounts_that_were_there_before(runtime, make_bundle):
    """Only the container's own mounts are undone: one the caller made below the rootfs stays."""
    b = make_bundle(config=_no_mount_ns(base_config(["true"])))
    (b.rootfs / "mnt" / "pre").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "pre", str(b.rootfs / "mnt" / "pre")], check=True)
    try:
        runtime.create("keep", b)
        runtime("delete", "--force", "keep", check=True)
        assert mounts_under(b.path) == [str(b.rootfs / "mnt" / "pre")]
    finally:
        subprocess.run(["umount", "-l", str(b.rootfs / "mnt" / "pre")])


def test_failed_create_with_a_joined_namespace_closes_its_fd_once(runtime, make_bundle):
    """runtime-tools finding B4: the joined-namespace fds were closed by the spawn and again by
    the rollback (which could close an unrelated fd that had reused the number)."""
    cfg = base_config(["/nonexistent"])
    for ns in cfg["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = f"/proc/{os.getpid()}/ns/net"
    b = make_bundle(config=cfg)
    p = assert_refused(runtime, b, "/nonexistent")
    assert "cleanup" not in p.stderr and "bad file descriptor" not in p.stderr.lower(), p.stderr


def test_without_mount_namespace_exec_enters_the_containers_root(runtime, make_bundle):
    """Joining the namespaces of such a container leaves a process in the host's root (where
    runc 1.1 leaves it); pyrunc's exec enters the init's root, as the init itself is."""
    b = make_bundle(config=_no_mount_ns(base_config(["sleep", "300"])))
    (b.rootfs / "only-in-the-container").write_text("inside\n")
    runtime.create("nmexec", b)
    runtime("start", "nmexec", check=True)
    p = runtime("exec", "nmexec", "sh", "-c", "cat /only-in-the-container; test -e /etc/os-release || echo no-host-os-release")
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["inside", "no-host-os-release"]
    p = runtime("exec", "--cwd", "/etc", "nmexec", "pwd")
    assert p.stdout == "/etc\n", p.stderr
    runtime("delete", "--force", "nmexec", check=True)
    assert mounts_under(b.path) == []
