"""Hostile bundles and hostile container processes: one test class per runc CVE class.

Each test runs real containers as root with an image or a config built to
escape, or a container process that attacks the runtime while it works, and
asserts both the containment (a clean refusal, or the attack landing inside
the rootfs) and that nothing leaked: no mount left on the host under the test
directories, victim directories outside every rootfs byte-for-byte untouched,
no container, state or process left (the `runtime` fixture checks the last).

Where each class is tested (this file adds what the others do not have):

| class (runc CVEs) | where tested |
|---|---|
| 1. /proc/<pid>/exe of a runtime process (CVE-2019-5736) | test_exec.py::test_container_cannot_reach_runtime_binary (20 execs, caps with/without ptrace, runc differential); here: test_proc_exe_probe_while_joined_containers_start (10 create/start/delete into the prober's PID namespace, execs interleaved) |
| 2. symlinked mount destinations, racing swaps (CVE-2021-30465, CVE-2024-45310) | test_rootfs.py::test_symlink_destination_resolves_inside_rootfs, ::test_dotdot_in_destination_stays_inside_rootfs (static symlinks); here: test_racing_symlink_swap_* (a host process swaps a path component with a symlink during 30 creates) |
| 3. /proc, /sys symlinked in the image, mounts over /proc (CVE-2019-16884, CVE-2023-27561, CVE-2023-28642) | test_rootfs.py::test_image_proc_symlink_refused (proc -> tmp), ::test_destination_inside_proc_refused (tmpfs on /proc/sys/kernel), ::test_destination_through_symlink_into_proc_refused, ::test_proc_on_symlink_destination_refused, ::test_bind_over_allowed_proc_file (/proc/uptime); here: test_image_proc_sys_symlink_refused (proc/sys -> /, host paths, ..), test_mount_over_proc_refused, test_bind_over_proc_cpuinfo_allowed |
| 4. fd and cwd leaks (CVE-2024-21626) | test_process.py::test_cwd_proc_self_fd_never_a_host_directory (run, N = 3..10), ::test_extra_fds_not_preserved_are_closed, test_exec.py::test_only_stdio_fds; here: test_cwd_proc_self_fd_run_11_to_20, test_exec_cwd_proc_self_fd_3_to_20, test_cwd_through_proc_magic_links, test_leaked_host_directory_fd_* (a host directory leaked as fd 7 into run/exec, with and without --preserve-fds), test_preserve_fds_with_holes_never_hands_over_runtime_fds |
| 5. maskedPaths with a swapped /dev/null (CVE-2025-31133) | test_rootfs.py::test_masked_file_reads_empty (the normal case); here: test_masks_with_swapped_dev_null_* (plain and bind-mounted /dev; null a symlink, a file, 1:5, 1:9), test_masks_with_racing_dev_null |
| 6. /dev/console, /dev/pts, /dev/ptmx symlinks with a terminal (CVE-2025-52565) | test_console.py::test_dev_console_symlink_refused, ::test_plain_dev_directory_console_works; here: test_terminal_dev_pts_symlink (towards a real devpts mounted on the host), test_terminal_dev_ptmx_elsewhere |
| 7. procfs writes through a private handle (CVE-2025-52881), /dev symlinked to a host path (CVE-2026-41579) | here: test_sysctl_reaches_the_kernel_not_a_fake_proc (sysctl and oomScoreAdj with a fake /proc directory), test_bind_over_proc_sysctl_file_refused*, test_dev_symlink_to_host_path |
| 8. resource safety (fork bomb, memory hog) | test_cgroups_v1.py::test_fork_bomb_held_by_pids_limit, ::test_memory_hog_is_oom_killed_in_foreground_run, ::test_memory_hog_oom_kill_counted_and_reported (nothing added) |
"""

import fcntl
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from support import REPO, TEST_TMP, base_config, wait_exec

import test_console as tc  # ConsoleSocket / Term: the console-socket client as conmon has it

console = tc.console  # the fixture: console() -> a listening ConsoleSocket

# --- helpers -------------------------------------------------------------------------------


def sh(script):
    # the trailing builtin keeps busybox sh from exec'ing the last command in its place
    return ["sh", "-c", script + "\n:"]


def new_id(prefix="h"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def kill_pid(pid):
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_for(cond, timeout=10.0, step=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def snapshot(root):
    """Everything about a directory tree that an escape could change (names, types,
    inodes, modes, sizes, mtimes, link targets, contents of small files)."""
    root = Path(root)
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [""] + dirnames + filenames:
            p = Path(dirpath, name)
            if name == "" and Path(dirpath) != root:
                continue
            st = os.lstat(p)
            rel = str(p.relative_to(root))
            entry = (stat.S_IFMT(st.st_mode), st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns,
                     st.st_rdev, st.st_nlink)
            if stat.S_ISLNK(st.st_mode):
                entry += (os.readlink(p),)
            elif stat.S_ISREG(st.st_mode) and st.st_size < 4096:
                entry += (p.read_bytes(),)
            out[rel] = entry
    return out


def mounts_in(*dirs):
    """Host mount points at or under the given directories (ours only: other test
    sessions may mount elsewhere under the test tree meanwhile)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            if any(mp == str(d) or mp.startswith(str(d).rstrip("/") + "/") for d in dirs):
                out.append(mp)
    return sorted(out)


def assert_nothing_left(runtime, b=None):
    assert runtime.ids() == []
    assert os.listdir(runtime.root) == []
    if b is not None:
        assert mounts_in(b.path) == []


def run(runtime, b, cid=None, *flags, **kw):
    kw.setdefault("timeout", 30)
    return runtime("run", *flags, "--bundle", b, cid or new_id(), **kw)


def run_ok(runtime, b, *flags, **kw):
    p = run(runtime, b, None, *flags, **kw)
    assert p.returncode == 0, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def refused(runtime, b, *needles):
    """A run that must fail cleanly: an error naming the problem, nothing left behind."""
    p = run(runtime, b)
    assert p.returncode != 0, f"expected a refusal, got exit 0: {p.stdout}"
    low = p.stderr.lower()
    assert p.stderr.strip(), "refused without an error message"
    if needles:
        assert any(n.lower() in low for n in needles), p.stderr
    assert_nothing_left(runtime, b)
    return p


def drop_mounts(cfg, *dests):
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] not in dests]
    return cfg


def add_mount(cfg, dest, mtype="tmpfs", source=None, options=None):
    m = {"destination": dest, "type": mtype, "source": source if source is not None else mtype}
    if options is not None:
        m["options"] = list(options)
    cfg["mounts"].append(m)
    return m


@pytest.fixture
def victim():
    """A host directory outside every rootfs, the target of the hostile images.
    victim(name) makes a fresh one; teardown checks nothing is mounted under it."""
    made = []

    def make(name="victim"):
        d = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=TEST_TMP))
        d.chmod(0o755)
        made.append(d)
        return d

    yield make
    for d in made:
        assert mounts_in(d) == [], f"mounts left under {d}"
        shutil.rmtree(d, ignore_errors=True)


def fill_victim(d):
    """Content a runtime that escaped could mount over, replace, unlink or create next to."""
    (d / "passwd").write_text("root:x:0:0:victim:/root:/bin/sh\n")
    (d / "null").write_text("victim null\n")
    (d / "ptmx").write_text("victim ptmx\n")
    (d / "console").write_text("victim console\n")
    for sub in ("m0", "m1", "m2", "pts", "shm", "sys", "proc"):
        (d / sub).mkdir()
        (d / sub / "keep").write_text(sub)
    os.symlink("passwd", d / "link")
    return snapshot(d)


def _sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def runtime_files():
    """The host files a CVE-2019-5736-style attack would overwrite: the interpreter,
    its shared libpython, and pyrunc's own sources."""
    files = {os.path.realpath(sys.executable)}
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split(maxsplit=5)[5:] and line.split(maxsplit=5)[5].strip()
            if path and "libpython" in path and os.path.isfile(path):
                files.add(os.path.realpath(path))
    files.update(str(p) for p in (REPO / "pyrunc").rglob("*.py"))
    return files


# --- 1. /proc/<pid>/exe of runtime processes (CVE-2019-5736) ------------------------------

# Every pass opens each visible process's exe for writing (`true >>` opens O_WRONLY|O_APPEND
# and writes nothing: a failure of pyrunc must not damage the host's interpreter), stats
# it, and looks for a host-only marker file through its /proc/<pid>/root. SEEN reports
# each runtime process (comm "pyrunc": the Python init of a B, an exec helper) once.
EXE_PROBE = r'''
bb=$(stat -L -c %d:%i /bin/busybox)
echo READY
n=0
seen=" "
while [ ! -e /tmp/stop ] && [ $n -lt 100000 ]; do
  n=$((n+1))
  for p in /proc/[0-9]*; do
    c=; read c < $p/comm 2>/dev/null
    if [ "$c" = pyrunc ]; then case "$seen" in *" $p "*) ;; *) seen="$seen$p "; echo "SEEN $p";; esac; fi
    { true >> $p/exe; } 2>/dev/null && echo "OPENED $p $(cat $p/comm 2>/dev/null)"
    s=$(stat -L -c %d:%i $p/exe 2>/dev/null) && [ "$s" != "$bb" ] && echo "FOREIGN $p $s"
    [ -e "$p/root$MARKER" ] && echo "HOSTROOT $p"
  done
done
echo "DONE $n"
exec sleep 300
'''


@pytest.mark.parametrize("privileged", [False, True], ids=["default-caps", "ptrace-caps"])
def test_proc_exe_probe_while_joined_containers_start(runtime, make_bundle, victim, privileged):
    """Container A loops over /proc/*/exe while 10 containers B are created, started and
    deleted in A's PID namespace (pyrunc's Python init of each B is visible to A during
    its whole setup) and 10 execs run in A. No open of a /proc/<pid>/exe for writing may
    succeed and the runtime's files must be unchanged. With runc's default capabilities
    A must not even reach a foreign exe or a runtime process's (host) root. With
    CAP_SYS_PTRACE a container may look at any process in its PID namespace (runc's own
    init too): only writing must still fail."""
    marker_dir = victim("marker")
    marker = marker_dir / "host-only-marker"
    marker.write_text("x")
    cfg = base_config(["sh", "-c", EXE_PROBE])
    cfg["process"]["env"].append(f"MARKER={marker}")
    if privileged:
        for k in ("bounding", "effective", "permitted"):
            cfg["process"]["capabilities"][k] += ["CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE", "CAP_SYS_ADMIN"]
    a = make_bundle(config=cfg)
    files = {f: (os.path.getsize(f), _sha(f)) for f in runtime_files()}
    aid = new_id("prober")
    try:
        runtime.create(aid, a)
        apid = runtime.state(aid)["pid"]
        runtime("start", aid, check=True)
        out = runtime.workdir / f"{aid}.out"
        assert wait_for(lambda: "READY" in out.read_text(), timeout=5), out.read_text()
        cfg_b = base_config(["true"])
        # B shares A's image, so its busybox is the one A knows: only runtime processes are foreign
        cfg_b["root"] = {"path": str(a.rootfs), "readonly": True}
        for ns in cfg_b["linux"]["namespaces"]:
            if ns["type"] == "pid":
                ns["path"] = f"/proc/{apid}/ns/pid"
        b = make_bundle(config=cfg_b)
        for i in range(10):
            bid = new_id(f"joiner{i}")
            runtime.create(bid, b)
            bpid = runtime.state(bid)["pid"]
            assert os.readlink(f"/proc/{bpid}/ns/pid") == os.readlink(f"/proc/{apid}/ns/pid")
            runtime("start", bid, check=True)
            assert runtime.wait_status(bid, "stopped")
            runtime("delete", bid, check=True)
            p = runtime("exec", aid, "true")
            assert p.returncode == 0, p.stderr
        (a.rootfs / "tmp" / "stop").write_text("")
        assert wait_for(lambda: "DONE" in out.read_text(), timeout=20), out.read_text()[-2000:]
        text = out.read_text()
        assert "SEEN" in text, "the probe never saw a runtime process: it proves nothing"
        assert "OPENED" not in text, text
        if not privileged:
            assert "FOREIGN" not in text, text
            assert "HOSTROOT" not in text, text
        for f, (size, sha) in files.items():
            assert (os.path.getsize(f), _sha(f)) == (size, sha), f"{f} was modified"
        assert marker.read_text() == "x"
    finally:
        # never leave the host interpreter grown by a failing run
        for f, (size, _) in files.items():
            if os.path.getsize(f) > size:
                os.truncate(f, size)
        runtime("delete", "--force", aid)


# --- 2. racing symlink swaps of mount destinations (CVE-2021-30465, CVE-2024-45310) ------

RACER = r'''
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
RENAME_EXCHANGE = 2
dirfd = os.open(sys.argv[1], os.O_PATH | os.O_DIRECTORY)
stop = sys.argv[2]
ops = [x.split(":", 2) for x in sys.argv[3:]]
n = tries = 0
while True:
    for op, a, b in ops:
        if op == "x":  # exchange two names
            if libc.renameat2(dirfd, a.encode(), dirfd, b.encode(), RENAME_EXCHANGE) == 0:
                n += 1
        else:  # "s": put a symlink to b in place of a, atomically, over whatever a is
            try:
                try:
                    os.unlink(a + ".tmp", dir_fd=dirfd)
                except FileNotFoundError:
                    pass
                os.symlink(b, a + ".tmp", dir_fd=dirfd)
                os.rename(a + ".tmp", a, src_dir_fd=dirfd, dst_dir_fd=dirfd)
                n += 1
            except OSError:
                pass
    tries += 1
    if tries % 1024 == 0 and os.path.exists(stop):
        break
# put every exchanged pair back: the first name of each pair is the real directory
import stat
for op, a, b in ops:
    if op == "x" and stat.S_ISLNK(os.lstat(a, dir_fd=dirfd).st_mode):
        libc.renameat2(dirfd, a.encode(), dirfd, b.encode(), RENAME_EXCHANGE)
print(n, flush=True)
'''


class Racer:
    """A host process that, as fast as it can until stopped, exchanges pairs of names in
    a directory with renameat2(RENAME_EXCHANGE) ("x", a, b) or atomically puts a symlink
    to b in place of a ("s", a, b); exchanged names are put back at the end."""

    def __init__(self, workdir, dirpath, ops):
        self.stop = Path(workdir) / f"racer-{uuid.uuid4().hex[:6]}.stop"
        self.out = self.stop.with_suffix(".out")
        with open(self.out, "w") as fo:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", RACER, str(dirpath), str(self.stop),
                 *(":".join(op) for op in ops)], stdin=subprocess.DEVNULL, stdout=fo,
                stderr=subprocess.STDOUT)

    def finish(self):
        """Stop; the number of successful swaps (or the racer's error text)."""
        if self.proc.returncode is None:
            self.stop.write_text("")
            try:
                self.proc.wait(timeout=10)
            finally:
                kill_pid(self.proc.pid)
                self.proc.wait()
        text = self.out.read_text().strip()
        return int(text) if text.isdigit() else text


def _race(runtime, b, racer, watched, rounds=30):
    outcomes = {"ok": 0, "refused": 0}
    errors = set()
    before = mounts_in(b.path, *watched)
    assert before == []
    for i in range(rounds):
        cid = new_id(f"race{i}")
        p = runtime.create(cid, b, check=False)
        if p.returncode == 0:
            outcomes["ok"] += 1
            runtime("delete", "--force", cid, check=True)
        else:
            outcomes["refused"] += 1
            errors.add(p.stderr.strip().splitlines()[-1][:200] if p.stderr.strip() else "(no message)")
        assert mounts_in(b.path, *watched) == [], f"host mounts appeared in round {i}"
        assert runtime.ids() == []
    swaps = racer.finish()
    assert isinstance(swaps, int) and swaps > 1000, f"the racer did not race: {swaps}"
    assert "(no message)" not in errors, errors
    return outcomes, errors


def test_racing_symlink_swap_mount_destinations(runtime, make_bundle, victim):
    """rootfs/a (the parent of 12 mount destinations: tmpfs, directory and file binds) is
    swapped as fast as possible between a directory and a symlink to a host directory
    (absolute), and rootfs/r likewise with a relative ../../.. symlink, during 30 creates.
    Whatever each create does, nothing is mounted, created or deleted in the host dirs."""
    vic = victim()
    vic_snap = fill_victim(vic)
    vic2 = victim("victim-rel")
    vic2_snap = fill_victim(vic2)
    cfg = base_config(["true"])
    src = Path(tempfile.mkdtemp(prefix="bindsrc-", dir=TEST_TMP))
    try:
        (src / "file").write_text("bind source file\n")
        (src / "dir").mkdir()
        for i in range(4):
            add_mount(cfg, f"/a/m{i}", options=["size=1m"])
            add_mount(cfg, f"/r/m{i}", options=["size=1m"])
        add_mount(cfg, "/a/bdir", "bind", str(src / "dir"), ["bind"])
        add_mount(cfg, "/a/bfile", "bind", str(src / "file"), ["bind", "ro"])
        add_mount(cfg, "/r/nested/deeper/m", options=["size=1m"])
        add_mount(cfg, "/r/bfile", "bind", str(src / "file"), ["bind"])
        b = make_bundle(config=cfg)
        (b.rootfs / "a").mkdir()
        (b.rootfs / "r").mkdir()
        os.symlink(str(vic), b.rootfs / "a.swap")
        os.symlink("../" * 12 + str(vic2).lstrip("/"), b.rootfs / "r.swap")
        rootfs_top = sorted(os.listdir(b.rootfs))
        racer = Racer(runtime.workdir, b.rootfs, [("x", "a", "a.swap"), ("x", "r", "r.swap")])
        try:
            _race(runtime, b, racer, [vic, vic2, src])
        finally:
            racer.finish()
        assert snapshot(vic) == vic_snap, "the host victim directory was modified"
        assert snapshot(vic2) == vic2_snap, "the host victim directory was modified"
        assert (b.rootfs / "a").is_dir() and not (b.rootfs / "a").is_symlink()
        assert (b.rootfs / "r").is_dir() and not (b.rootfs / "r").is_symlink()
        # the symlinks resolved inside the rootfs: their targets were made under rootfs/var
        assert set(os.listdir(b.rootfs)) <= set(rootfs_top) | {"var"}
        assert sorted(os.listdir(src)) == ["dir", "file"] and os.listdir(src / "dir") == []
        assert (src / "file").read_text() == "bind source file\n"
    finally:
        assert mounts_in(src) == []
        shutil.rmtree(src, ignore_errors=True)


def test_racing_symlink_swap_plain_dev(runtime, make_bundle, victim):
    """An image with a plain /dev (no tmpfs over it): the runtime mknods the default
    devices, replaces /dev/ptmx and mounts devpts/shm/mqueue under it, while rootfs/dev
    is swapped with a symlink to a host directory holding files named null, ptmx, pts...
    Nothing in the host directory may be unlinked, replaced, created or mounted over."""
    vic = victim()
    vic_snap = fill_victim(vic)
    cfg = drop_mounts(base_config(["true"]), "/dev")
    b = make_bundle(config=cfg)
    dev = b.rootfs / "dev"
    dev.mkdir(exist_ok=True)
    os.symlink(str(vic), b.rootfs / "dev.swap")
    racer = Racer(runtime.workdir, b.rootfs, [("x", "dev", "dev.swap")])
    try:
        _race(runtime, b, racer, [vic])
    finally:
        racer.finish()
    assert snapshot(vic) == vic_snap, "the host victim directory was modified"
    assert dev.is_dir() and not dev.is_symlink()
    assert os.readlink(b.rootfs / "dev.swap") == str(vic)


# --- 3. /proc and /sys symlinked in the image, mounts over /proc --------------------------


@pytest.mark.parametrize("name,target", [
    ("proc", "/"),
    ("proc", "HOST"),
    ("proc", "../../../../../../../../HOST"),
    ("proc", "/sys"),
    ("sys", "/"),
    ("sys", "HOST"),
    ("sys", "/proc"),
])
def test_image_proc_sys_symlink_refused(runtime, make_bundle, victim, name, target):
    """CVE-2019-16884 / CVE-2023-27561 / CVE-2023-28642: the image's /proc or /sys is a
    symlink (to the root, to a host path, to each other): the proc/sysfs mount must be
    refused, never made on the symlink's target."""
    vic = victim()
    vic_snap = fill_victim(vic)
    b = make_bundle(["true"])
    p = b.rootfs / name
    if p.exists():
        p.rmdir()
    os.symlink(target.replace("HOST", str(vic).lstrip("/") if target.startswith("..") else str(vic)), p)
    top = sorted(os.listdir(b.rootfs))
    refused(runtime, b, "symlink", name)
    assert snapshot(vic) == vic_snap
    assert sorted(os.listdir(b.rootfs)) == top
    assert os.listdir(b.rootfs / "tmp") == []


@pytest.mark.parametrize("dest,kind", [
    ("/proc/self/attr/current", "file"),
    ("/proc/self/attr", "dir"),
    ("/proc/sys/kernel", "dir"),
    ("/proc/sys/net/ipv4/ip_forward", "file"),
    ("/proc/sysrq-trigger", "file"),
    ("/proc", "dir"),
    ("/proc/1/../self/attr/exec", "file"),
])
def test_mount_over_proc_refused(runtime, make_bundle, victim, dest, kind):
    """A bind from a host file or directory onto /proc or anything inside it (but runc's
    lxcfs allow-list) is refused: it would feed the runtime and the container fake
    procfs files (CVE-2019-16884)."""
    vic = victim()
    vic_snap = fill_victim(vic)
    cfg = base_config(["true"])
    add_mount(cfg, dest, "bind", str(vic / ("passwd" if kind == "file" else "proc")), ["bind"])
    b = make_bundle(config=cfg)
    refused(runtime, b, "/proc", "proc")
    assert snapshot(vic) == vic_snap


def test_tmpfs_over_proc_refused(runtime, make_bundle):
    cfg = base_config(["true"])
    add_mount(cfg, "/proc", options=["size=1m"])
    refused(runtime, make_bundle(config=cfg), "/proc", "proc")


def test_bind_over_proc_cpuinfo_allowed(runtime, make_bundle, victim):
    """The control: lxcfs-style binds over the allow-listed /proc files work."""
    vic = victim()
    (vic / "cpuinfo").write_text("processor\t: 0\nmodel name\t: pyrunc lxcfs test\n")
    (vic / "meminfo").write_text("MemTotal:        1234 kB\n")
    cfg = base_config(sh("cat /proc/cpuinfo /proc/meminfo"))
    add_mount(cfg, "/proc/cpuinfo", "bind", str(vic / "cpuinfo"), ["bind", "ro"])
    add_mount(cfg, "/proc/meminfo", "bind", str(vic / "meminfo"), ["bind", "ro"])
    p = run_ok(runtime, make_bundle(config=cfg))
    assert p.stdout == (vic / "cpuinfo").read_text() + (vic / "meminfo").read_text()


# --- 4. fd and cwd leaks (CVE-2024-21626) ------------------------------------------------

UP = "../" * 30
CWD_CHECK = f"stat -c '%d %i' {UP} /; ls -l /proc/self/fd"


def _check_cwd_inside(p, leak_paths):
    top, root = p.stdout.splitlines()[:2]
    assert top == root, f"the process's cwd is outside its root: {p.stdout}"
    for leak in leak_paths:
        assert leak not in p.stdout, p.stdout


def test_cwd_proc_self_fd_run_11_to_20(runtime, make_bundle):
    """process.cwd = /proc/self/fd/N for N beyond test_process's 3..10: refused, or a cwd
    inside the root and no host path among the process's fds."""
    for n in range(11, 21):
        cfg = base_config(sh(CWD_CHECK))
        cfg["process"]["cwd"] = f"/proc/self/fd/{n}"
        b = make_bundle(config=cfg)
        p = run(runtime, b)
        if p.returncode != 0:
            assert p.stderr.strip(), f"fd {n}: refused without a message"
            assert_nothing_left(runtime, b)
            continue
        _check_cwd_inside(p, [str(TEST_TMP), str(REPO), "/run/", "/sys/fs/cgroup"])


@pytest.fixture
def running(runtime, make_bundle):
    cfg = base_config(["sleep", "300"])
    cid = new_id("cwd")
    runtime.create(cid, make_bundle(config=cfg))
    runtime("start", cid, check=True)
    assert runtime.wait_status(cid, "running")
    return cid


def test_exec_cwd_proc_self_fd_3_to_20(runtime, running):
    """`exec --cwd /proc/self/fd/N`: the exec helper's own fds (pidfd, sync channel,
    log) must never become the process's cwd."""
    for n in range(3, 21):
        p = runtime("exec", "--cwd", f"/proc/self/fd/{n}", running, *sh(CWD_CHECK))
        if p.returncode != 0:
            assert p.stderr.strip(), f"fd {n}: refused without a message"
            continue
        _check_cwd_inside(p, [str(TEST_TMP), str(REPO), "/run/", "/sys/fs/cgroup"])
    assert runtime.status(running) == "running"
    ps = runtime("ps", "--format", "json", running)
    assert ps.returncode == 0 and len(ps.stdout.strip("[]\n").split(",")) == 1, ps.stdout


@pytest.mark.parametrize("cwd", ["/proc/self/cwd", "/proc/self/root", "/proc/1/root/..",
                                 "/proc/thread-self/fd/3", "/proc/self/task/1/cwd/.."])
def test_cwd_through_proc_magic_links(runtime, make_bundle, cwd):
    cfg = base_config(sh(CWD_CHECK))
    cfg["process"]["cwd"] = cwd
    b = make_bundle(config=cfg)
    p = run(runtime, b)
    if p.returncode != 0:
        assert p.stderr.strip()
        assert_nothing_left(runtime, b)
        return
    _check_cwd_inside(p, [str(TEST_TMP), str(REPO)])


# moves the leaked fd to its number in a tiny trampoline, then execs the runtime
_MOVE_FD = "import os, sys; os.dup2(int(sys.argv[1]), int(sys.argv[2])); os.close(int(sys.argv[1])); " \
           "os.execv(sys.argv[3], sys.argv[3:])"


def _leak_cmd(runtime, args, fd, fd_no):
    return [sys.executable, "-I", "-S", "-c", _MOVE_FD, str(fd), str(fd_no), *runtime.cmd(*args)]


def _open_leak(hostdir):
    fd = os.open(hostdir, os.O_RDONLY | os.O_DIRECTORY)  # PEP 446 makes it CLOEXEC...
    os.set_inheritable(fd, True)  # ...so undo that: a caller that leaks an fd
    return fd


def _with_leaked_fd(runtime, args, hostdir, fd_no=7):
    """Run `pyrunc args...` with a host directory open as an inheritable fd `fd_no`
    (opened here without O_CLOEXEC, handed over with pass_fds, moved to `fd_no`)."""
    fd = _open_leak(hostdir)
    try:
        return subprocess.run(_leak_cmd(runtime, args, fd, fd_no), pass_fds=(fd,), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=30)
    finally:
        os.close(fd)


def _fd_lines(ls_output):
    """{fd number: link target} from busybox `ls -l /proc/$$/fd`."""
    out = {}
    for line in ls_output.splitlines():
        f = line.split()
        if len(f) >= 9 and f[0].startswith("l"):
            i = f.index("->") if "->" in f else len(f)
            out[int(f[i - 1])] = f[i + 1] if i + 1 < len(f) else ""
    return out


LEAK_PROBE = ("ls -l /proc/$$/fd; echo ===; "
              "cd /proc/$$/fd/7 2>/dev/null && { echo IN-FD7; ls -a . ..; }; echo END")


def _leak_seen(p, vic):
    fds = _fd_lines(p.stdout.split("===")[0])
    leaked = "IN-FD7" in p.stdout or str(vic) in p.stdout or any(str(TEST_TMP) in t for t in fds.values())
    return fds, leaked


def test_leaked_host_directory_fd_not_passed(runtime, make_bundle, victim):
    """A caller leaks a host directory as an inheritable fd 7 into `run` and `exec`
    without --preserve-fds: the container has its stdio and nothing else."""
    vic = victim("leaked")
    vic_snap = fill_victim(vic)
    b = make_bundle(config=base_config(sh(LEAK_PROBE)))
    p = _with_leaked_fd(runtime, ["run", "--bundle", b, new_id("leak")], vic)
    assert p.returncode == 0, p.stderr
    fds, leaked = _leak_seen(p, vic)
    assert sorted(fds) == [0, 1, 2] and not leaked, p.stdout
    # exec into a running container with the same leak
    cid = new_id("leakx")
    runtime.create(cid, make_bundle(config=base_config(["sleep", "300"])))
    runtime("start", cid, check=True)
    p = _with_leaked_fd(runtime, ["exec", cid, *sh(LEAK_PROBE)], vic)
    assert p.returncode == 0, p.stderr
    fds, leaked = _leak_seen(p, vic)
    assert sorted(fds) == [0, 1, 2] and not leaked, p.stdout
    assert snapshot(vic) == vic_snap


def test_leaked_host_directory_fd_preserved_never_the_cwd(runtime, make_bundle, victim):
    """With --preserve-fds covering the leaked fd the caller hands it over on purpose:
    as with runc the container gets fd 3 (this also proves the leak reaches the runtime
    in the test above) and nothing else; but a process.cwd of /proc/self/fd/3 must
    never put the process in that host directory (runc: refused as a breakout).
    (Preserved fds must be contiguous from 3: a hole is refused, see the test above.)"""
    vic = victim("leaked")
    vic_snap = fill_victim(vic)
    b = make_bundle(config=base_config(sh("ls -l /proc/$$/fd")))
    p = _with_leaked_fd(runtime, ["run", "--preserve-fds", "1", "--bundle", b, new_id("pres")], vic, fd_no=3)
    assert p.returncode == 0, p.stderr
    fds = _fd_lines(p.stdout)
    assert sorted(fds) == [0, 1, 2, 3] and fds[3] == str(vic), p.stdout
    for cwd in ("/proc/self/fd/3", "/proc/1/fd/3", "/proc/self/fd/3/.."):
        cfg = base_config(sh(CWD_CHECK))
        cfg["process"]["cwd"] = cwd
        b = make_bundle(config=cfg)
        p = _with_leaked_fd(runtime, ["run", "--preserve-fds", "1", "--bundle", b, new_id("pres")], vic, fd_no=3)
        if p.returncode == 0:
            _check_cwd_inside(p, [])
        else:
            assert p.stderr.strip()
            assert_nothing_left(runtime, b)
    assert snapshot(vic) == vic_snap


def test_preserve_fds_with_holes_never_hands_over_runtime_fds(runtime, make_bundle, victim):
    """`create --preserve-fds 5` from a caller with only fd 7 open (3..6 are holes):
    either a clean refusal (runc 1.1.5: "unable to stat preserved-fd"), or the
    container gets 0-2 and 7 and none of the runtime's own fds, and `start` works."""
    vic = victim("leaked")
    b = make_bundle(config=base_config(sh("ls -l /proc/$$/fd; exec sleep 300")))
    cid = new_id("holes")
    out = runtime.workdir / f"{cid}.out"
    fd = _open_leak(vic)
    try:
        with open(out, "wb") as fo:
            p = subprocess.run(_leak_cmd(runtime, ["create", "--preserve-fds", "5", "--bundle", b, cid], fd, 7),
                               pass_fds=(fd,), stdin=subprocess.DEVNULL, stdout=fo, stderr=fo, timeout=30)
    finally:
        os.close(fd)
    if p.returncode != 0:
        assert out.read_text().strip()
        assert_nothing_left(runtime, b)
        return
    init = runtime.state(cid)["pid"]
    try:
        held = {n: os.readlink(f"/proc/{init}/fd/{n}") for n in os.listdir(f"/proc/{init}/fd")}
        runtime_fds = {n: t for n, t in held.items() if runtime.root in t or t.startswith("pid:")}
        try:
            runtime("start", cid, check=True, timeout=3)
        except subprocess.TimeoutExpired:
            pytest.fail(f"start hung; the waiting init holds the runtime's fds {runtime_fds}")
        assert wait_for(lambda: "===" in out.read_text() or "->" in out.read_text())
        wait_exec(init, "sleep")  # the listing is complete once the script exec'd
        fds = _fd_lines(out.read_text())
        assert sorted(fds) == [0, 1, 2, 7] and fds[7] == str(vic), out.read_text()
    finally:
        kill_pid(init)  # a hung start leaves the init holding the state lock: free it


# --- 5. maskedPaths with a swapped /dev/null (CVE-2025-31133) -----------------------------

MASKED = ["/proc/keys", "/proc/timer_list", "/secret", "/secretdir/key"]
MASK_PROBE = "; ".join(f"stat -c '%n %F %t:%T' {m}; printf '{m} bytes='; head -c 64 {m} | wc -c"
                       for m in MASKED)


def _mask_config(plain_dev):
    cfg = base_config(sh(MASK_PROBE))
    cfg["linux"]["maskedPaths"] = cfg["linux"]["maskedPaths"] + ["/secret", "/secretdir/key"]
    if plain_dev:
        drop_mounts(cfg, "/dev")
    return cfg


def _fake_null(where, kind, vic):
    null = where / "null"
    if null.exists() or null.is_symlink():
        null.unlink()
    if kind == "symlink-passwd":
        os.symlink("/etc/passwd", null)
    elif kind == "symlink-host":
        os.symlink(str(vic / "passwd"), null)
    elif kind == "symlink-dotdot":
        os.symlink("../" * 10 + str(vic / "passwd").lstrip("/"), null)
    elif kind == "regular":
        null.write_text("NOT-NULL-CONTENT\n")
    elif kind == "zero":
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 5))
    elif kind == "urandom":
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 9))
    else:
        raise ValueError(kind)


def _check_masks(p):
    for m in MASKED:
        if m.startswith("/proc/") and not os.path.exists(m):
            continue
        assert f"{m} character special file 1:3" in p.stdout, p.stdout
        assert f"{m} bytes=0" in p.stdout, p.stdout
    assert "NOT-NULL" not in p.stdout and "victim" not in p.stdout and "root:" not in p.stdout


def _mask_image(b):
    (b.rootfs / "secret").write_text("image secret\n")
    (b.rootfs / "secretdir").mkdir()
    (b.rootfs / "secretdir" / "key").write_text("image key\n")
    return snapshot(b.rootfs / "etc"), (b.rootfs / "secret").read_bytes()


KINDS = ["symlink-passwd", "symlink-host", "symlink-dotdot", "regular", "zero", "urandom"]


@pytest.mark.parametrize("kind", KINDS)
def test_masks_with_swapped_dev_null_plain_dev(runtime, make_bundle, victim, kind):
    """The image's own /dev (no tmpfs over it) has a /dev/null that is not the null
    device: every mask is still a 1:3 char device that reads empty, and neither the
    image's /etc/passwd nor the host file the symlink names is touched."""
    vic = victim()
    vic_snap = fill_victim(vic)
    b = make_bundle(config=_mask_config(plain_dev=True))
    etc, secret = _mask_image(b)
    _fake_null(b.rootfs / "dev", kind, vic)
    _check_masks(run_ok(runtime, b))
    assert snapshot(b.rootfs / "etc") == etc
    assert (b.rootfs / "secret").read_bytes() == secret
    assert snapshot(vic) == vic_snap
    assert mounts_in(b.path) == []


def test_masks_with_racing_dev_null(runtime, make_bundle, victim):
    """The race of CVE-2025-31133: while containers are set up on a plain /dev, a host
    process keeps putting a symlink in place of rootfs/dev/null (the runtime mknods it
    in between), to a host file and to a file of the image. Every mask is still a 1:3
    node that reads empty, never either file. (Both targets are already mode 0666, so
    this test is not about the device chmod: see the test below.)"""
    vic = victim()
    (vic / "secret").write_text("HOST-SECRET\n")
    (vic / "secret").chmod(0o666)
    vic_snap = snapshot(vic)
    b = make_bundle(config=_mask_config(plain_dev=True))
    etc, secret = _mask_image(b)
    (b.rootfs / "leak").write_text("IMAGE-LEAK\n")
    (b.rootfs / "leak").chmod(0o666)
    racer = Racer(runtime.workdir, b.rootfs / "dev", [("s", "null", str(vic / "secret")),
                                                      ("s", "null", "../leak")])
    outcomes = []
    try:
        for _ in range(40):  # until 6 containers were set up under the race
            if outcomes.count(0) >= 6:
                break
            p = run(runtime, b)
            outcomes.append(p.returncode)
            if p.returncode == 0:
                _check_masks(p)
                assert "SECRET" not in p.stdout and "LEAK" not in p.stdout, p.stdout
            else:
                assert p.stderr.strip()
                assert_nothing_left(runtime, b)
    finally:
        swaps = racer.finish()
    assert isinstance(swaps, int) and swaps > 100, f"the racer did not race: {swaps}"
    assert 0 in outcomes, "no container was ever set up during the race"
    assert snapshot(vic) == vic_snap
    assert snapshot(b.rootfs / "etc") == etc
    assert (b.rootfs / "secret").read_bytes() == secret
    assert (b.rootfs / "leak").read_text() == "IMAGE-LEAK\n"


DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


def test_device_setup_never_follows_a_swapped_symlink(runtime, make_bundle, victim):
    """A plain /dev (no tmpfs over it): while the runtime makes the default devices, a
    process sharing the rootfs (here a host process; in practice another container with
    the same image or a shared /dev volume) keeps putting, in place of each node, an
    absolute symlink to a host file. The runtime may fail or make its nodes, but it must
    never change a host file: the targets (mode 0600) keep their mode, owner and content."""
    vic = victim()
    for d in DEVICES:
        (vic / f"host-{d}").write_text(f"host file {d}\n")
        (vic / f"host-{d}").chmod(0o600)
    vic_snap = snapshot(vic)
    b = make_bundle(config=drop_mounts(base_config(["true"]), "/dev"))
    racer = Racer(runtime.workdir, b.rootfs / "dev", [("s", d, str(vic / f"host-{d}")) for d in DEVICES])
    changed = {}
    try:
        for i in range(40):
            cid = new_id(f"dev{i}")
            p = runtime.create(cid, b, check=False)
            if p.returncode == 0:
                runtime("delete", "--force", cid, check=True)
            else:
                assert p.stderr.strip()
                assert_nothing_left(runtime, b)
            now = snapshot(vic)
            changed = {k: (oct(vic_snap[k][2]), oct(v[2])) for k, v in now.items() if vic_snap.get(k) != v}
            if changed:
                break
    finally:
        racer.finish()
        for d in DEVICES:  # whatever happened, our victims go back to 0600
            (vic / f"host-{d}").chmod(0o600)
    assert not changed, f"host files changed through the container's /dev (mode before, after): {changed}"


@pytest.mark.parametrize("kind", KINDS)
def test_masks_with_swapped_dev_null_bind_dev(runtime, make_bundle, victim, kind):
    """/dev bind-mounted from a host directory (the runtime then makes no devices, as
    runc) whose null is a symlink, a regular file or another char device: masks must
    come from a verified 1:3 node, and the bound directory must be left as it was."""
    vic = victim()
    vic_snap = fill_victim(vic)
    fakedev = victim("fakedev")
    for d in ("pts", "shm", "mqueue"):
        (fakedev / d).mkdir()
    _fake_null(fakedev, kind, vic)
    dev_snap = snapshot(fakedev)
    cfg = _mask_config(plain_dev=True)
    cfg["mounts"].insert(1, {"destination": "/dev", "type": "bind", "source": str(fakedev),
                             "options": ["rbind"]})
    b = make_bundle(config=cfg)
    etc, secret = _mask_image(b)
    _check_masks(run_ok(runtime, b))
    assert mounts_in(b.path, fakedev, vic) == []
    assert snapshot(fakedev) == dev_snap
    assert snapshot(b.rootfs / "etc") == etc
    assert (b.rootfs / "secret").read_bytes() == secret
    assert snapshot(vic) == vic_snap


# --- 6. /dev/pts and /dev/ptmx symlinks with a terminal (CVE-2025-52565) -----------------


@pytest.fixture
def host_devpts(victim):
    """A host-like pts directory: a real devpts instance mounted on the host under the
    test tree (ours, unmounted at teardown). A runtime that followed the image's symlink
    on the host would allocate its pty here."""
    d = victim("hostpts")
    subprocess.run(["mount", "-t", "devpts", "-o", "newinstance,ptmxmode=0666", "pyrunc-hostile", str(d)],
                   check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", str(d)], check=True)


TTY_PROBE = "stat -L -c 'DEV %d' /proc/self/fd/0; tty"


def _tty_config(plain_dev=True):
    cfg = base_config(sh(TTY_PROBE))
    cfg["process"]["terminal"] = True
    if plain_dev:
        drop_mounts(cfg, "/dev")
    return cfg


def _terminal_attempt(runtime, b, console):
    """create with a console socket and start; (create result, output or None, slave st_dev)."""
    cs = console()
    cid = new_id("tty")
    p = runtime.create(cid, b, "--console-socket", cs.path, check=False)
    if p.returncode != 0:
        return p, None, None
    master = cs.receive(already_sent=True)
    # the slave the kernel gives for this master: its devpts instance
    peer = fcntl.ioctl(master, 0x5441, os.O_RDWR | os.O_NOCTTY)  # TIOCGPTPEER
    try:
        slave_dev = os.fstat(peer).st_dev
    finally:
        os.close(peer)
    runtime("start", cid, check=True)
    out = tc.Term(master).read_to_eof()
    runtime("delete", "--force", cid)
    return p, out, slave_dev


def _host_devpts_devs(*extra):
    return {os.stat("/dev/pts").st_dev, *(os.stat(e).st_dev for e in extra)}


@pytest.mark.parametrize("link", ["HOST", "../../../../../../../../HOST", "../../../../../../dev/pts"])
def test_terminal_dev_pts_symlink(runtime, make_bundle, console, host_devpts, link):
    """The image's /dev/pts is a symlink to a host devpts directory (absolute or through
    ..) and /dev is the image's own: either a clean refusal or a pty from the
    container's own new devpts instance; never the host's, never a mount on the host."""
    host_snap = snapshot(host_devpts)
    b = make_bundle(config=_tty_config())
    pts = b.rootfs / "dev" / "pts"
    if pts.exists():
        pts.rmdir()
    os.symlink(link.replace("HOST", str(host_devpts).lstrip("/") if link.startswith("..") else str(host_devpts)),
               pts)
    assert mounts_in(b.path) == []
    p, out, slave_dev = _terminal_attempt(runtime, b, console)
    if p.returncode != 0:
        assert p.stderr.strip()
    else:
        assert slave_dev not in _host_devpts_devs(host_devpts), "the pty is from a host devpts"
        assert f"DEV {slave_dev}" in out, out
    assert snapshot(host_devpts) == host_snap
    assert mounts_in(b.path, host_devpts) == [str(host_devpts)]  # only our own devpts
    assert_nothing_left(runtime, b)


@pytest.mark.parametrize("target", ["/etc/passwd", "HOST/ptmx", "/proc/1/root/dev/ptmx",
                                    "/dev/../proc/self/root/dev/pts/ptmx", "node"])
def test_terminal_dev_ptmx_elsewhere(runtime, make_bundle, console, host_devpts, victim, target):
    """/dev bind-mounted from a host directory (no device setup) whose ptmx points
    elsewhere: at a file, at a host devpts's ptmx, through /proc magic links; or a real
    5:2 node, which the kernel ties to the devpts mounted on its sibling pts (the
    container's): a refusal or the container's own pty, never a host one."""
    host_snap = snapshot(host_devpts)
    fakedev = victim("fakedev")
    for d in ("pts", "shm", "mqueue"):
        (fakedev / d).mkdir()
    os.mknod(fakedev / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    (fakedev / "console").write_text("")  # a bind target the runtime would otherwise create there
    if target == "node":
        os.mknod(fakedev / "ptmx", stat.S_IFCHR | 0o666, os.makedev(5, 2))
    else:
        os.symlink(target.replace("HOST", str(host_devpts)), fakedev / "ptmx")
    dev_snap = snapshot(fakedev)
    cfg = _tty_config()
    cfg["mounts"].insert(1, {"destination": "/dev", "type": "bind", "source": str(fakedev),
                             "options": ["rbind"]})
    b = make_bundle(config=cfg)
    etc = snapshot(b.rootfs / "etc")
    p, out, slave_dev = _terminal_attempt(runtime, b, console)
    if p.returncode != 0:
        assert p.stderr.strip()
        assert target != "node", p.stderr  # the legitimate layout must work
    else:
        assert slave_dev not in _host_devpts_devs(host_devpts), "the pty is from a host devpts"
        assert f"DEV {slave_dev}" in out, out
    assert snapshot(fakedev) == dev_snap
    assert snapshot(host_devpts) == host_snap
    assert snapshot(b.rootfs / "etc") == etc
    assert mounts_in(b.path, fakedev, host_devpts) == [str(host_devpts)]  # only our own devpts
    assert_nothing_left(runtime, b)


# --- 7. procfs writes through a private handle (CVE-2025-52881); /dev -> host (CVE-2026-41579)


def _netns_sysctl(pid, key):
    p = subprocess.run(["nsenter", "-t", str(pid), "-n", "cat", "/proc/sys/" + key.replace(".", "/")],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def test_sysctl_reaches_the_kernel_not_a_fake_proc(runtime, make_bundle):
    """No proc mount, and the image's /proc is a plain directory with fake
    sys/net/ipv4/ip_forward, 1/oom_score_adj...: linux.sysctl must set the container
    network namespace's real values (read from the host with nsenter), oomScoreAdj the
    real process's, and the fake files stay as they were."""
    host_before = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    cfg = drop_mounts(base_config(sh("cat /proc/sys/net/ipv4/ip_forward; exec sleep 300")), "/proc")
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1", "net.ipv4.ip_default_ttl": "42"}
    cfg["linux"]["maskedPaths"] = []
    cfg["linux"]["readonlyPaths"] = []
    cfg["process"]["oomScoreAdj"] = 321
    b = make_bundle(config=cfg)
    fake = b.rootfs / "proc" / "sys" / "net" / "ipv4"
    fake.mkdir(parents=True)
    (fake / "ip_forward").write_text("FAKE\n")
    (fake / "ip_default_ttl").write_text("FAKE\n")
    for d in ("1", "self", "thread-self"):
        (b.rootfs / "proc" / d).mkdir()
        (b.rootfs / "proc" / d / "oom_score_adj").write_text("FAKE\n")
    fake_snap = snapshot(b.rootfs / "proc")
    cid = new_id("sysctl")
    runtime.create(cid, b)
    pid = runtime.state(cid)["pid"]
    assert _netns_sysctl(pid, "net.ipv4.ip_forward") == "1"
    assert _netns_sysctl(pid, "net.ipv4.ip_default_ttl") == "42"
    assert Path(f"/proc/{pid}/oom_score_adj").read_text() == "321\n"
    runtime("start", cid, check=True)
    out = runtime.workdir / f"{cid}.out"
    assert wait_for(lambda: out.read_text() != ""), out.with_suffix(".err").read_text()
    assert out.read_text() == "FAKE\n"  # the container's /proc is its image's directory
    assert snapshot(b.rootfs / "proc") == fake_snap
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_before
    runtime("delete", "--force", cid, check=True)


def test_bind_over_proc_sysctl_file_refused(runtime, make_bundle, victim):
    """A host file bound over /proc/sys/net/ipv4/ip_forward with the usual proc mount
    and a sysctl for that key: refused; the host file never written."""
    vic = victim()
    vic_snap = fill_victim(vic)
    cfg = base_config(["true"])
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    add_mount(cfg, "/proc/sys/net/ipv4/ip_forward", "bind", str(vic / "passwd"), ["bind"])
    refused(runtime, make_bundle(config=cfg), "/proc", "proc")
    assert snapshot(vic) == vic_snap


def test_bind_over_proc_sysctl_file_without_proc_mount_refused(runtime, make_bundle, victim):
    """The same bind with no proc mount (the image's /proc is a plain directory): runc
    refuses any destination inside /proc by path (checkProcMount), whatever is there."""
    vic = victim()
    vic_snap = fill_victim(vic)
    cfg = drop_mounts(base_config(["true"]), "/proc")
    cfg["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    cfg["linux"]["maskedPaths"] = []
    cfg["linux"]["readonlyPaths"] = []
    add_mount(cfg, "/proc/sys/net/ipv4/ip_forward", "bind", str(vic / "passwd"), ["bind"])
    b = make_bundle(config=cfg)
    try:
        refused(runtime, b, "/proc", "proc")
    finally:
        assert snapshot(vic) == vic_snap  # written or not, the host file is never the sysctl


@pytest.mark.parametrize("link", ["HOST", "../../../../../../../../../HOST"])
def test_dev_symlink_to_host_path(runtime, make_bundle, victim, link):
    """CVE-2026-41579: the image's /dev is a symlink to a host path, with the default
    tmpfs /dev and devices: nothing is created or mounted in the host directory, and
    the container still gets its devices (inside its own root)."""
    hostdev = victim("hostdev")
    snap = fill_victim(hostdev)
    cfg = base_config(sh("stat -L -c '%n %F %t:%T' /dev/null /dev/zero /dev/ptmx; "
                         "ls /dev/pts; readlink /dev; echo x > /dev/null && echo null-ok"))
    b = make_bundle(config=cfg)
    (b.rootfs / "dev").rmdir()
    os.symlink(link.replace("HOST", str(hostdev).lstrip("/") if link.startswith("..") else str(hostdev)),
               b.rootfs / "dev")
    p = run(runtime, b)
    if p.returncode == 0:
        assert "/dev/null character special file 1:3" in p.stdout, p.stdout
        assert "/dev/zero character special file 1:5" in p.stdout, p.stdout
        assert "null-ok" in p.stdout, p.stdout
        assert "keep" not in p.stdout  # the container's /dev is not the host directory
    else:
        assert p.stderr.strip()
    assert snapshot(hostdev) == snap, "the host directory /dev pointed at was modified"
    assert mounts_in(b.path, hostdev) == []
    assert_nothing_left(runtime, b)
