"""`pyrunc exec` into real running containers, differential against runc where
the two must agree (exit codes, first error line).

Every container runs `sleep 300` as its init; each test execs into it and
checks what the exec'd process sees (from inside) and what it is (from the
host: /proc/<pid>, the container's cgroups). Detached execs never get pipes
for their stdio: the process would keep them open.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from support import TEST_TMP, Bundle, base_config, wait_exec

MAP = [{"containerID": 0, "hostID": 100000, "size": 65536}]
NS_NAMES = ("cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "time_for_children",
            "user", "uts")
CAP_SYS_ADMIN = 21


def sh(script):
    return ["sh", "-c", script]


def new_id():
    # distinct per test and per runtime: runc and pyrunc both name the cgroup after the ID
    return "ex-" + uuid.uuid4().hex[:10]


def start(rt, b, comm="sleep"):
    """create + start a container; (id, host PID of its init) once it runs `comm`."""
    cid = new_id()
    rt.create(cid, b)
    rt("start", cid, check=True)
    assert rt.wait_status(cid, "running")
    pid = rt.state(cid)["pid"]
    wait_exec(pid, comm)
    return cid, pid


def error_msg(stderr):
    """The first error line's message (logrus text format: msg="…"), runtime name normalised."""
    for line in stderr.splitlines():
        m = re.search(r'msg="((?:[^"\\]|\\.)*)"', line)
        if m:
            msg = re.sub(r'\\(.)', r'\1', m.group(1))
            break
        if line.strip():
            msg = line.strip()
            break
    else:
        return ""
    return re.sub(r"\bpyrunc\b", "runc", msg)


def status_fields(text, prefix=("Cap", "NoNewPrivs")):
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k.startswith(prefix):
            out[k] = v.strip()
    return out


def host_status(pid):
    return Path(f"/proc/{pid}/status").read_text()


def ns_links(pid):
    return {n: os.readlink(f"/proc/{pid}/ns/{n}") for n in NS_NAMES if os.path.exists(f"/proc/{pid}/ns/{n}")}


def kill_pid(pid):
    try:
        os.kill(pid, 9)
    except (ProcessLookupError, TypeError):
        pass


def exec_detached(rt, cid, *args, pid_file=None):
    """`exec -d [--pid-file]`: stdio on /dev/null and a file, never pipes. (proc, host pid)."""
    pf = Path(pid_file or rt.workdir / f"exec-{uuid.uuid4().hex[:6]}.pid")
    err = pf.with_suffix(".err")
    with open(err, "w+") as fe:
        p = subprocess.run(rt.cmd("exec", "-d", "--pid-file", pf, cid, *args), stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=fe, timeout=30, text=True)
        fe.seek(0)
        p.stderr = fe.read()
    pid = int(pf.read_text()) if p.returncode == 0 else None
    return p, pid, pf


@pytest.fixture
def sleeper(runtime, make_bundle):
    """A running `sleep 300` pyrunc container with a writable root: (id, init pid, bundle)."""
    cfg = base_config(["sleep", "300"])
    cfg["root"]["readonly"] = False
    b = make_bundle(config=cfg)
    cid, pid = start(runtime, b)
    return cid, pid, b


@pytest.fixture
def userns_bundle(rootfs_template):
    """Bundles the mapped root (host uid 100000) can traverse (as in test_namespaces)."""
    made = []

    def make(cfg):
        d = Path(tempfile.mkdtemp(prefix="userns-bundle-", dir=TEST_TMP))
        made.append(d)
        d.chmod(0o755)
        rootfs = d / "rootfs"
        subprocess.run(["cp", "-a", str(rootfs_template), str(rootfs)], check=True)
        rootfs.chmod(0o755)
        return Bundle(d, rootfs).write(cfg)

    yield make
    for d in made:
        shutil.rmtree(d, ignore_errors=True)


def userns_config(args, extra_ns=()):
    cfg = base_config(args)
    cfg["linux"]["namespaces"] = [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount", "user",
                                                         *extra_ns)]
    cfg["linux"]["uidMappings"] = [dict(m) for m in MAP]
    cfg["linux"]["gidMappings"] = [dict(m) for m in MAP]
    # a cgroup v1 hierarchy cannot be mounted from a non-initial user namespace
    cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/sys/fs/cgroup"]
    return cfg


# --- output and exit status, differential ------------------------------------------------


EXIT_CASES = {
    "exit0": ([], sh("echo out; echo err >&2")),
    "exit5": ([], sh("echo hi; exit 5")),
    "sigkill": ([], sh("kill -9 $$")),
    "sigterm": ([], sh("kill -TERM $$")),
    "missing-program": ([], ["nosuch"]),
    "missing-path": ([], ["/nosuch/prog"]),
    "not-executable": ([], ["/etc/passwd"]),
    "missing-cwd": (["--cwd", "/nosuch"], ["true"]),
}


@pytest.fixture
def both(runtime, runc_runtime, make_bundle):
    """The same bundle running under pyrunc and under runc: [(rt, id), (rt, id)]."""
    out = []
    for rt in (runtime, runc_runtime):
        b = make_bundle(["sleep", "300"])
        cid, _ = start(rt, b)
        out.append((rt, cid))
    return out


@pytest.mark.parametrize("case", list(EXIT_CASES))
def test_exit_status_output_and_error_like_runc(both, case):
    flags, args = EXIT_CASES[case]
    res = []
    for rt, cid in both:
        p = rt("exec", *flags, cid, *args, timeout=30)
        res.append((p.returncode, p.stdout, error_msg(p.stderr) if p.returncode else p.stderr))
    assert res[0] == res[1], f"pyrunc {res[0]} != runc {res[1]}"


def test_output_and_exit_code_passthrough(runtime, sleeper):
    cid, _, _ = sleeper
    p = runtime("exec", cid, *sh("echo hi; echo oops >&2; exit 5"))
    assert (p.returncode, p.stdout) == (5, "hi\n")
    assert p.stderr == "oops\n"
    # killed by a signal: 128 + signo, like a shell
    assert runtime("exec", cid, *sh("kill -9 $$")).returncode == 137


def test_missing_program(runtime, sleeper):
    cid, _, _ = sleeper
    p = runtime("exec", cid, "nosuch")
    assert p.returncode == 255
    assert p.stdout == ""
    assert error_msg(p.stderr) == ('exec failed: unable to start container process: exec: "nosuch": '
                                   'executable file not found in $PATH')


def test_stdin_passthrough(runtime, sleeper):
    cid, _, _ = sleeper
    p = runtime("exec", cid, "cat", input="from stdin\n")
    assert (p.returncode, p.stdout) == (0, "from stdin\n")


def test_flags_after_command_belong_to_it(runtime, sleeper):
    cid, _, _ = sleeper
    p = runtime("exec", cid, "ls", "-la", "/")
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("total "), p.stdout
    assert re.search(r"^d\S+\s+\d+\s+root\s+root.*\sbin$", p.stdout, re.M), p.stdout
    p = runtime("exec", cid, *sh('echo "$@"'), "x", "--cwd", "/tmp", "-u", "5", "-d", "--help")
    assert (p.returncode, p.stdout) == (0, "--cwd /tmp -u 5 -d --help\n"), p.stderr


# --- it runs inside every namespace of the container ------------------------------------


def test_hostname_uts(runtime, make_bundle):
    b = make_bundle(["sleep", "300"], hostname="exec-uts-name")
    cid, _ = start(runtime, b)
    p = runtime("exec", cid, "hostname")
    assert (p.returncode, p.stdout) == (0, "exec-uts-name\n"), p.stderr


def _inside_ns(runtime, cid):
    p = runtime("exec", cid, *sh("cd /proc/self/ns && for n in *; do echo $n $(readlink $n); done"))
    assert p.returncode == 0, p.stderr
    return dict(line.split(" ", 1) for line in p.stdout.splitlines())


def test_namespaces_equal_the_inits(runtime, sleeper):
    cid, init, _ = sleeper
    inside = _inside_ns(runtime, cid)
    assert inside == ns_links(init)
    # and not ours where the container has its own
    for n in ("ipc", "mnt", "net", "pid", "uts"):
        assert inside[n] != os.readlink(f"/proc/self/ns/{n}"), n


def test_namespaces_equal_the_inits_all_eight(runtime, userns_bundle):
    b = userns_bundle(userns_config(["sleep", "300"], extra_ns=("cgroup", "time")))
    cid, init = start(runtime, b)
    inside = _inside_ns(runtime, cid)
    assert inside == ns_links(init)
    for n in ("cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts"):
        assert inside[n] != os.readlink(f"/proc/self/ns/{n}"), n


def test_pid_view(runtime, sleeper):
    cid, _, _ = sleeper
    p = runtime("exec", cid, *sh("echo $$; tr '\\0' ' ' < /proc/1/cmdline; echo; ls /proc | grep '^[0-9]'"))
    assert p.returncode == 0, p.stderr
    me, cmdline, *pids = p.stdout.splitlines()
    assert cmdline.strip() == "sleep 300"
    assert me != "1" and int(me) < 100
    # the init, the shell, ls and grep: nothing of the host
    assert "1" in pids and me in pids and len(pids) <= 4, pids


def test_host_pid_differs_from_container_pid(runtime, sleeper):
    cid, init, b = sleeper
    p, pid, _ = exec_detached(runtime, cid, *sh("echo $$ > /tmp/mypid; exec sleep 300"))
    try:
        assert p.returncode == 0, p.stderr
        wait_exec(pid, "sleep")  # the echo came before the exec
        inner = int((b.rootfs / "tmp" / "mypid").read_text())
        assert inner != pid
        nspid = [ln.split()[1:] for ln in host_status(pid).splitlines() if ln.startswith("NSpid:")][0]
        assert nspid == [str(pid), str(inner)]
    finally:
        kill_pid(pid)


def test_mounts_are_the_containers(runtime, sleeper):
    cid, _, b = sleeper
    # written into the rootfs after the container started: visible through its bind of the rootfs
    (b.rootfs / "exec-marker").write_text("in the rootfs\n")
    assert os.path.isdir("/work")
    p = runtime("exec", cid, *sh("cat /exec-marker; test -e /work && echo HOST-ROOT; "
                                 "tr '\\0' ' ' < /proc/1/cmdline; echo; "
                                 "cat /proc/self/mountinfo > /dev/shm/mine; cat /proc/1/mountinfo > /dev/shm/init; "
                                 "cmp /dev/shm/mine /dev/shm/init && echo SAME-MOUNTS"))
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["in the rootfs", "sleep 300 ", "SAME-MOUNTS"]


def test_uid_and_gid(runtime, sleeper):
    cid, _, _ = sleeper
    p = runtime("exec", cid, *sh("id -u; id -g"))
    assert (p.returncode, p.stdout.split()) == (0, ["0", "0"]), p.stderr


def test_capabilities_equal_the_inits(runtime, sleeper):
    cid, init, _ = sleeper
    p = runtime("exec", cid, "cat", "/proc/self/status")
    assert p.returncode == 0, p.stderr
    inside = status_fields(p.stdout)
    assert set(inside) >= {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs"}
    assert inside == status_fields(host_status(init))


def test_cgroup_membership(runtime, sleeper):
    cid, init, _ = sleeper
    p = runtime("exec", cid, *sh("cat /proc/self/cgroup; echo ---; cat /proc/1/cgroup"))
    assert p.returncode == 0, p.stderr
    mine, theirs = p.stdout.split("---\n")
    assert mine == theirs and mine.strip()
    assert mine == Path(f"/proc/{init}/cgroup").read_text()


def test_cgroup_procs_from_the_host(runtime, sleeper):
    cid, init, _ = sleeper
    st = json.loads(Path(runtime.root, cid, "state.json").read_text())
    paths = st["cgroup"]["paths"]
    p, pid, _ = exec_detached(runtime, cid, "sleep", "300")
    try:
        assert p.returncode == 0, p.stderr
        checked = 0
        for ctrl, path in paths.items():
            procs = Path(path, "cgroup.procs")
            if not procs.exists():
                continue
            listed = procs.read_text().split()
            assert str(pid) in listed and str(init) in listed, (ctrl, listed)
            checked += 1
        assert checked >= 5, paths
        assert Path(f"/proc/{pid}/cgroup").read_text() == Path(f"/proc/{init}/cgroup").read_text()
    finally:
        kill_pid(pid)


def test_user_namespace_container_runs_as_mapped_root(runtime, userns_bundle):
    b = userns_bundle(userns_config(["sleep", "300"]))
    cid, init = start(runtime, b)
    p = runtime("exec", cid, *sh("id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; "
                                 "grep -E '^Cap(Eff|Bnd)' /proc/self/status"))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[:2] == ["0", "0"]
    assert [ln.split() for ln in lines[2:4]] == [["0", "100000", "65536"]] * 2
    assert status_fields("\n".join(lines[4:])) == {k: v for k, v in status_fields(host_status(init)).items()
                                                    if k in ("CapEff", "CapBnd")}
    # from the host: a process of host uid/gid 100000
    d, pid, _ = exec_detached(runtime, cid, "sleep", "300")
    try:
        assert d.returncode == 0, d.stderr
        status = host_status(pid)
        uids = [ln.split()[1:] for ln in status.splitlines() if ln.startswith(("Uid:", "Gid:"))]
        assert uids == [["100000"] * 4] * 2
        assert os.readlink(f"/proc/{pid}/ns/user") == os.readlink(f"/proc/{init}/ns/user")
    finally:
        kill_pid(pid)


# --- flags ---------------------------------------------------------------------------------


def test_cwd(runtime, sleeper):
    cid, _, _ = sleeper
    p = runtime("exec", "--cwd", "/tmp", cid, "pwd")
    assert (p.returncode, p.stdout) == (0, "/tmp\n"), p.stderr


def test_env_added_to_the_containers(runtime, sleeper):
    cid, _, _ = sleeper
    p = runtime("exec", "-e", "FOO=bar", "--env", "BAZ=a b", cid, "env")
    assert p.returncode == 0, p.stderr
    env = dict(line.split("=", 1) for line in p.stdout.splitlines())
    assert env["FOO"] == "bar" and env["BAZ"] == "a b"
    assert env["TERM"] == "xterm"
    assert env["PATH"] == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert env["HOME"] == "/root"  # from the container's /etc/passwd


def test_env_override_and_home_like_runc(both):
    res = []
    for rt, cid in both:
        p = rt("exec", "-e", "TERM=dumb", "-u", "65534", cid, *sh("echo $TERM; echo $HOME; env | grep -c ^TERM="))
        res.append((p.returncode, p.stdout))
    assert res[0] == res[1] == (0, "dumb\n/nonexistent\n1\n")


def test_user_flag(runtime, sleeper):
    cid, _, _ = sleeper
    p = runtime("exec", "-u", "1000:1000", cid, *sh("id -u; id -g; id -G; echo $HOME"))
    assert (p.returncode, p.stdout) == (0, "1000\n1000\n1000\n/\n"), p.stderr


def test_additional_gids(runtime, sleeper):
    cid, _, _ = sleeper
    p = runtime("exec", "-u", "1000:1000", "-g", "10", "--additional-gids", "20", cid,
                *sh("id -u; grep ^Groups: /proc/self/status"))
    assert p.returncode == 0, p.stderr
    uid, groups = p.stdout.splitlines()
    assert uid == "1000"
    assert groups.split()[1:] == ["10", "20"]


def test_user_and_groups_like_runc(both):
    res = []
    for rt, cid in both:
        p = rt("exec", "-u", "1000:1001", "-g", "10", "-g", "20", cid,
               *sh("id -u; id -g; grep ^Groups: /proc/self/status; echo $HOME"))
        res.append((p.returncode, p.stdout))
    assert res[0] == res[1]


def test_cap_adds_to_effective_and_bounding(runtime, sleeper):
    cid, init, _ = sleeper
    base = status_fields(host_status(init))
    p = runtime("exec", "--cap", "CAP_SYS_ADMIN", cid, "cat", "/proc/self/status")
    assert p.returncode == 0, p.stderr
    caps = status_fields(p.stdout)
    for k in ("CapEff", "CapBnd", "CapPrm"):
        val = int(caps[k], 16)
        assert val & (1 << CAP_SYS_ADMIN), k
        assert val == int(base[k], 16) | (1 << CAP_SYS_ADMIN), k
    assert not int(base["CapEff"], 16) & (1 << CAP_SYS_ADMIN)


def test_cap_like_runc(both):
    res = []
    for rt, cid in both:
        p = rt("exec", "--cap", "CAP_SYS_ADMIN", "--cap", "CAP_NET_RAW", cid, "cat", "/proc/self/status")
        assert p.returncode == 0, p.stderr
        res.append({k: v for k, v in status_fields(p.stdout).items() if k in ("CapEff", "CapBnd", "CapPrm")})
    assert res[0] == res[1]


def test_no_new_privs(runtime, make_bundle):
    cfg = base_config(["sleep", "300"])
    cfg["process"]["noNewPrivileges"] = False
    b = make_bundle(config=cfg)
    cid, _ = start(runtime, b)
    off = runtime("exec", cid, "grep", "^NoNewPrivs:", "/proc/self/status")
    on = runtime("exec", "--no-new-privs", cid, "grep", "^NoNewPrivs:", "/proc/self/status")
    assert (off.returncode, off.stdout.split()) == (0, ["NoNewPrivs:", "0"]), off.stderr
    assert (on.returncode, on.stdout.split()) == (0, ["NoNewPrivs:", "1"]), on.stderr


def test_process_json(runtime, sleeper):
    cid, _, _ = sleeper
    proc = {"terminal": False, "user": {"uid": 1000, "gid": 1000, "additionalGids": [30]},
            "args": ["sh", "-c", "pwd; id -u; id -g; grep ^Groups: /proc/self/status; env | sort"],
            "env": ["PATH=/bin:/usr/bin", "FOO=from-json"], "cwd": "/tmp"}
    f = runtime.workdir / "process.json"
    f.write_text(json.dumps(proc))
    p = runtime("exec", "-p", f, cid)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[:3] == ["/tmp", "1000", "1000"]
    assert lines[3].split()[1:] == ["30"]
    env = dict(line.split("=", 1) for line in lines[4:])
    # the process's env replaces the container's (no TERM); HOME filled in
    assert env.get("FOO") == "from-json" and env.get("PATH") == "/bin:/usr/bin"
    assert "TERM" not in env
    assert env.get("HOME") == "/"


@pytest.mark.parametrize("content,needle", [
    ("{not json", "process.json"),
    ('{"args": ["true"]}', "cwd"),
    ('{"cwd": "/", "args": "true"}', "args"),
])
def test_process_json_invalid(runtime, sleeper, content, needle):
    cid, _, b = sleeper
    f = runtime.workdir / "process.json"
    f.write_text(content)
    p = runtime("exec", "--process", f, cid)
    assert p.returncode != 0
    msg = error_msg(p.stderr)
    assert needle in msg, msg
    assert "Traceback" not in p.stderr
    assert runtime("ps", "--format", "json", cid).stdout.strip() == f"[{sleeper[1]}]"


def test_process_json_missing_file(runtime, sleeper):
    cid, _, _ = sleeper
    p = runtime("exec", "-p", runtime.workdir / "nope.json", cid)
    assert p.returncode != 0
    assert "no such file or directory" in error_msg(p.stderr)


def test_pid_file(runtime, sleeper):
    cid, init, _ = sleeper
    p, pid, pf = exec_detached(runtime, cid, "sleep", "300")
    try:
        assert p.returncode == 0, p.stderr
        raw = pf.read_text()
        assert raw == str(pid) and raw.isdigit()  # bare PID, no newline
        wait_exec(pid, "sleep")
        assert Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x00300\x00"
        assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{init}/ns/pid")
    finally:
        kill_pid(pid)


def test_pid_file_foreground(runtime, sleeper):
    cid, _, _ = sleeper
    pf = runtime.workdir / "fg.pid"
    p = runtime("exec", "--pid-file", pf, cid, "true")
    assert p.returncode == 0, p.stderr
    assert pf.read_text().isdigit()


def test_detach_keeps_running(runtime, sleeper):
    cid, init, b = sleeper
    p, pid, _ = exec_detached(runtime, cid, *sh("echo started > /tmp/detached; exec sleep 300"))
    try:
        assert p.returncode == 0, p.stderr
        ps = runtime("ps", "--format", "json", cid)
        assert ps.returncode == 0, ps.stderr
        assert sorted(json.loads(ps.stdout)) == sorted([init, pid])
        wait_exec(pid, "sleep")  # the echo came before the exec
        assert (b.rootfs / "tmp" / "detached").read_text() == "started\n"
        assert Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x00300\x00"
    finally:
        kill_pid(pid)


def _with_fd3(path):
    """subprocess kwargs: `path` open read-only on fd 3, and an extra fd 4, in the child."""
    def pre():
        fd = os.open(path, os.O_RDONLY)
        if fd != 3:
            os.dup2(fd, 3)
            os.close(fd)
        os.dup2(3, 4)
    return {"pass_fds": (3, 4), "preexec_fn": pre}


def test_preserve_fds(runtime, sleeper):
    cid, _, _ = sleeper
    f = runtime.workdir / "fd3.txt"
    f.write_text("through fd 3\n")
    p = runtime("exec", "--preserve-fds", "1", cid, *sh("cat <&3; ls /proc/$$/fd; true"), **_with_fd3(f))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "through fd 3"
    assert lines[1:] == ["0", "1", "2", "3"]


def test_only_stdio_fds(runtime, sleeper):
    cid, _, _ = sleeper
    f = runtime.workdir / "fd3.txt"
    f.write_text("x\n")
    p = runtime("exec", cid, *sh("ls /proc/$$/fd; true"), **_with_fd3(f))
    assert (p.returncode, p.stdout.split()) == (0, ["0", "1", "2"]), p.stderr


# --- refusals -------------------------------------------------------------------------------


def test_stopped_container_refused(runtime, make_bundle):
    b = make_bundle(["true"])
    cid = new_id()
    runtime.create(cid, b)
    runtime("start", cid, check=True)
    assert runtime.wait_status(cid, "stopped")
    p = runtime("exec", cid, "true")
    assert p.returncode != 0
    assert "cannot exec in a stopped container" in error_msg(p.stderr)


def test_paused_container_refused(runtime, sleeper):
    cid, _, _ = sleeper
    runtime("pause", cid, check=True)
    try:
        p = runtime("exec", cid, "true")
        assert p.returncode != 0
        assert "cannot exec in a paused container" in error_msg(p.stderr)
    finally:
        runtime("resume", cid)


def test_ignore_paused_starts_and_completes_after_resume(runtime, sleeper):
    cid, _, _ = sleeper
    runtime("pause", cid, check=True)
    out = runtime.workdir / "ignore-paused.out"
    proc = None
    try:
        with open(out, "w+") as fo:
            proc = subprocess.Popen(runtime.cmd("exec", "--ignore-paused", cid, *sh("echo ran")),
                                    stdin=subprocess.DEVNULL, stdout=fo, stderr=subprocess.STDOUT)
            # a refusal would come back at once: it did not, it waits on the frozen cgroup
            with pytest.raises(subprocess.TimeoutExpired):
                proc.wait(timeout=1.0)
            runtime("resume", cid, check=True)
            assert proc.wait(timeout=20) == 0
            fo.seek(0)
            assert fo.read() == "ran\n"
    finally:
        if proc is not None and proc.poll() is None:
            kill_pid(proc.pid)
            proc.wait()
        runtime("resume", cid)


def test_missing_container(runtime):
    p = runtime("exec", "nosuch-container", "true")
    assert p.returncode == 255
    assert "container does not exist" in error_msg(p.stderr)


def test_empty_command_refused(runtime, sleeper):
    cid, _, _ = sleeper
    p = runtime("exec", cid)
    assert p.returncode != 0
    msg = error_msg(p.stderr)
    assert "requires a minimum of 2 argument(s)" in msg or "args cannot be empty" in msg, msg


PREFIX_BUG = "pyrunc bug: refusals before any process starts get runc's 'unable to start container process: ' prefix"


def test_refusal_wording_like_runc(runtime, runc_runtime, make_bundle):
    """missing, stopped and paused containers: runc says `exec failed: <why>`."""
    got = {}
    for name, rt in (("pyrunc", runtime), ("runc", runc_runtime)):
        msgs = [error_msg(rt("exec", "nosuch-container", "true").stderr)]
        b = make_bundle(["true"])
        cid = new_id()
        rt.create(cid, b)
        rt("start", cid, check=True)
        assert rt.wait_status(cid, "stopped")
        msgs.append(error_msg(rt("exec", cid, "true").stderr))
        cid, _ = start(rt, make_bundle(["sleep", "300"]))
        rt("pause", cid, check=True)
        try:
            msgs.append(error_msg(rt("exec", cid, "true").stderr))
        finally:
            rt("resume", cid)
        got[name] = msgs
    assert got["pyrunc"] == got["runc"]


def test_empty_command_wording(runtime, sleeper):
    """A usage error starts nothing: runc 1.1.5 `exec failed: process args cannot be empty`,
    newer runc `runc: "exec" requires a minimum of 2 argument(s)`; never `unable to start …`."""
    cid, _, _ = sleeper
    msg = error_msg(runtime("exec", cid).stderr)
    assert msg in ('runc: "exec" requires a minimum of 2 argument(s)', "exec failed: process args cannot be empty"), msg


# --- CVE-2019-5736 class -------------------------------------------------------------------


PROBE = ("bb=$(stat -L -c %d:%i /bin/busybox); echo READY; n=0; "
         "while [ ! -e /tmp/stop ] && [ $n -lt 100000 ]; do n=$((n+1)); "
         "for p in /proc/[0-9]*; do "
         "(echo x >> $p/exe) 2>/dev/null && echo OPENED $p; "
         "s=$(stat -L -c %d:%i $p/exe 2>/dev/null) && [ \"$s\" != \"$bb\" ] && echo FOREIGN $p $s; "
         "done; done; echo DONE; exec sleep 300")


def _sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.mark.parametrize("privileged,which", [
    pytest.param(False, "pyrunc", id="default-caps-pyrunc"),
    pytest.param(False, "runc", id="default-caps-runc"),
    pytest.param(True, "pyrunc", id="ptrace-caps-pyrunc"),
    pytest.param(True, "runc", id="ptrace-caps-runc"),
])
def test_container_cannot_reach_runtime_binary(request, make_bundle, privileged, which):
    """While 20 execs start, no container process can open a non-container /proc/<pid>/exe
    for writing and the runtime's binary is unchanged. With the default caps no foreign exe is
    reachable at all (the exec child is not dumpable). With CAP_SYS_PTRACE the container may
    reach it (runc 1.1.5's own binary shows up too): only writing must fail."""
    cfg = base_config(sh(PROBE))
    if privileged:
        for k in ("bounding", "effective", "permitted"):
            cfg["process"]["capabilities"][k] += ["CAP_SYS_PTRACE", "CAP_DAC_OVERRIDE", "CAP_SYS_ADMIN"]
    b = make_bundle(config=cfg)
    runtime = request.getfixturevalue("runtime" if which == "pyrunc" else "runc_runtime")
    exe = os.path.realpath(sys.executable if which == "pyrunc" else runtime.binary)
    size, sha = os.path.getsize(exe), _sha(exe)
    try:
        cid, _ = start(runtime, b, comm="sh")  # the probe must still run during the execs
        out = runtime.workdir / f"{cid}.out"
        for _ in range(500):
            if "READY" in out.read_text():
                break
            time.sleep(0.01)
        assert "READY" in out.read_text()
        for _ in range(20):
            p = runtime("exec", cid, "true")
            assert p.returncode == 0, p.stderr
        assert "DONE" not in out.read_text(), "the probe ended before the execs did"
        (b.rootfs / "tmp" / "stop").write_text("")
        for _ in range(1000):
            if "DONE" in out.read_text():
                break
            time.sleep(0.01)
        text = out.read_text()
        assert "DONE" in text
        assert "OPENED" not in text, text
        if not privileged:
            assert "FOREIGN" not in text, text
        assert _sha(exe) == sha
    finally:
        # never leave the host interpreter modified by a failing run
        if os.path.getsize(exe) > size:
            os.truncate(exe, size)


# --- nothing left -------------------------------------------------------------------------


def test_nothing_left_after_execs(runtime, sleeper):
    cid, init, _ = sleeper
    assert runtime("exec", cid, "true").returncode == 0
    assert runtime("exec", cid, *sh("exit 3")).returncode == 3
    assert runtime("exec", cid, *sh("kill -9 $$")).returncode == 137
    assert runtime("exec", cid, "nosuch").returncode == 255
    assert runtime("exec", "--cwd", "/nosuch", cid, "true").returncode == 255
    assert runtime("exec", "-u", "1000", "--cap", "CAP_SYS_ADMIN", cid, "true").returncode == 0
    ps = runtime("ps", "--format", "json", cid)
    assert ps.returncode == 0, ps.stderr
    assert json.loads(ps.stdout) == [init]
    st = json.loads(Path(runtime.root, cid, "state.json").read_text())
    for ctrl, path in st["cgroup"]["paths"].items():
        procs = Path(path, "cgroup.procs")
        if procs.exists():
            assert procs.read_text().split() == [str(init)], ctrl
    assert runtime.status(cid) == "running"
