"""linux.seccomp on real containers: actions, errno values, argument filters,
architectures, flags, a Docker-style default profile, exec, non-root users,
clean refusals, and seccomp notify with a real agent (tests/seccomp_agent.py).

tests/data/seccomp-default.json is modelled on moby's profiles/seccomp/default.json
as Docker renders it for a container with the default capabilities: defaultAction
ERRNO(EPERM), the long allow list (plus a few syscalls newer than Debian's
libseccomp, which pyrunc must skip with a warning), socket/personality/clone
argument rules, clone3 → ENOSYS, and the architectures of its x86_64 and
aarch64 arch maps (x86_64, x86, x32, aarch64, arm) in one filter.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import pytest

from support import REPO, TEST_TMP, Bundle, assert_refused, base_config

DATA = Path(__file__).resolve().parent / "data"
AGENT = Path(__file__).resolve().parent / "seccomp_agent.py"
MKDIR = ["mkdir", "mkdirat"]  # x86_64 busybox calls mkdir, aarch64 has only mkdirat


def sh(script):
    # the trailing builtin keeps busybox sh from exec'ing the last command in its place
    return ["sh", "-c", script + "\n:"]


def with_seccomp(make_bundle, args, profile, **process):
    b = make_bundle(args)
    b.config["root"]["readonly"] = False  # so that only seccomp can make mkdir fail
    b.config["linux"]["seccomp"] = profile
    b.config["process"].update(process)
    return b.write()


def uid(name):
    # container IDs name cgroups too: unique across concurrent test sessions
    return f"{name}-{os.getpid()}"


def run(runtime, b, cid="sc"):
    return runtime("run", "--bundle", b, uid(cid), timeout=30)


def deny_mkdir(errno=None):
    rule = {"names": MKDIR, "action": "SCMP_ACT_ERRNO"}
    if errno is not None:
        rule["errnoRet"] = errno
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [rule]}


def default_profile():
    return json.loads((DATA / "seccomp-default.json").read_text())


# --- actions ------------------------------------------------------------------


def test_mkdir_denied_with_eperm_other_syscalls_work(runtime, make_bundle):
    b = with_seccomp(make_bundle, sh("mkdir /tmp/x; echo rc=$?; touch /tmp/f && ls /tmp && echo alive"),
                     deny_mkdir(errno=1))
    p = run(runtime, b)
    assert p.returncode == 0, p.stderr
    assert "Operation not permitted" in p.stderr
    assert "rc=1" in p.stdout and "alive" in p.stdout
    assert "x" not in p.stdout.split()  # the directory was never made; f was
    assert "f" in p.stdout.split()
    assert "level=warning" not in p.stderr  # nothing unknown, nothing warned


def test_errno_defaults_to_eperm_and_errnoret_is_honoured(runtime, make_bundle):
    b = with_seccomp(make_bundle, sh("mkdir /tmp/x"), deny_mkdir())
    assert "Operation not permitted" in run(runtime, b).stderr
    b = with_seccomp(make_bundle, sh("mkdir /tmp/x"), deny_mkdir(errno=28))
    assert "No space left on device" in run(runtime, b).stderr


ECHO_OK_SYSCALLS = [
    # busybox sh -c 'echo ok' (static glibc)
    "arch_prctl", "brk", "execve", "exit", "exit_group", "getcwd", "getpid", "getppid", "getrandom",
    "getuid", "geteuid", "getgid", "getegid", "mprotect", "prlimit64", "readlink", "readlinkat", "rseq",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "set_robust_list", "set_tid_address", "uname",
    "newfstatat", "fstat", "statx", "ioctl", "mmap", "munmap", "fcntl", "dup2", "dup3",
    # what pyrunc itself still does once the filter is loaded (runc needs the like):
    # sync pipe, exec fifo, signal dispositions, execve — nothing newer (openat2,
    # close_range): profiles written for runc, like runtime-tools', do not list them
    "read", "close", "openat", "prctl",
]
# what a runc-era profile allows besides (runtime-tools' default), for the user switch
USER_SWITCH_SYSCALLS = ["setgroups", "setresgid", "setresuid", "capset", "capget", "fchdir", "fchown",
                        "chdir", "umask", "write"]


@pytest.mark.parametrize("nnp", [True, False])
def test_profile_without_newer_syscalls_still_runs(runtime, make_bundle, nnp):
    """The runtime's own syscalls after the filter is loaded are ones a runc-era profile allows:
    openat2 and close_range (both used by pyrunc) happen before it (runtime-tools' B1 finding)."""
    prof = {"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ECHO_OK_SYSCALLS + USER_SWITCH_SYSCALLS, "action": "SCMP_ACT_ALLOW"}]}
    b = with_seccomp(make_bundle, ["sh", "-c", "echo ok"], prof, noNewPrivileges=nnp)
    p = run(runtime, b)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "ok\n"


@pytest.mark.parametrize("nnp", [True, False])
def test_kill_default_without_ppoll_still_starts(runtime, make_bundle, nnp):
    """After the filter is loaded the init waits for `start` to let go of the
    exec fifo (a ppoll) only if the profile allows it: under a KILL default that
    does not list ppoll, it execs at once, as before."""
    prof = {"defaultAction": "SCMP_ACT_KILL_PROCESS",
            "syscalls": [{"names": ECHO_OK_SYSCALLS + USER_SWITCH_SYSCALLS, "action": "SCMP_ACT_ALLOW"}]}
    b = with_seccomp(make_bundle, ["sh", "-c", "echo ok > /tmp/started"], prof, noNewPrivileges=nnp)
    cid = uid("kp")
    runtime.create(cid, b)
    runtime("start", cid, check=True)
    assert runtime.wait_status(cid, "stopped")
    assert (b.rootfs / "tmp" / "started").read_text() == "ok\n"
    assert runtime("delete", cid).returncode == 0


@pytest.mark.parametrize("profile, allowed", [
    ({"defaultAction": "SCMP_ACT_ALLOW"}, True),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["ppoll"], "action": "SCMP_ACT_ERRNO"}]}, False),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "ppoll"], "action": "SCMP_ACT_ALLOW"}]},
     True),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["poll"], "action": "SCMP_ACT_ALLOW"}]}, False),
    ({"defaultAction": "SCMP_ACT_ERRNO",
      "syscalls": [{"names": ["ppoll"], "action": "SCMP_ACT_ALLOW",
                    "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]}]}, False),
    ({"defaultAction": "SCMP_ACT_ERRNO",
      "syscalls": [{"names": ["ppoll"], "action": "SCMP_ACT_ALLOW"},
                   {"names": ["ppoll"], "action": "SCMP_ACT_NOTIFY"}]}, False),
    ({"defaultAction": "SCMP_ACT_KILL", "syscalls": [{"names": ["ppoll"], "action": "SCMP_ACT_LOG"}]}, False),
])
def test_runtime_calls_allowed_only_unconditionally(profile, allowed):
    from pyrunc import seccomp
    assert ("ppoll" in seccomp._allowed(profile["defaultAction"], profile.get("syscalls", []))) == allowed


def test_default_errno_with_allow_list(runtime, make_bundle):
    prof = {"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ECHO_OK_SYSCALLS + ["write"], "action": "SCMP_ACT_ALLOW"}]}
    b = with_seccomp(make_bundle, ["sh", "-c", "echo ok"], prof, noNewPrivileges=True)
    p = run(runtime, b)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "ok\n"


def test_allow_list_without_write_gives_no_output(runtime, make_bundle):
    prof = {"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ECHO_OK_SYSCALLS, "action": "SCMP_ACT_ALLOW"}]}
    b = with_seccomp(make_bundle, ["sh", "-c", "echo ok"], prof, noNewPrivileges=True)
    p = run(runtime, b)
    assert p.stdout == ""
    assert p.returncode != 0  # the init cannot even report "ready" (runc fails too)


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_KILL",
                                    "SCMP_ACT_TRAP"])
def test_kill_and_trap_end_in_sigsys(runtime, make_bundle, action):
    # busybox sh calls getppid at start-up ($PPID)
    prof = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["getppid"], "action": action}]}
    b = with_seccomp(make_bundle, ["sh", "-c", "echo alive"], prof)
    p = run(runtime, b)
    assert p.returncode == 128 + 31, (p.returncode, p.stderr)  # SIGSYS: 159, as with runc
    assert p.stdout == ""


def test_trace_without_tracer_is_enosys_and_log_allows(runtime, make_bundle):
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": MKDIR, "action": "SCMP_ACT_TRACE"},
                         {"names": ["rmdir"], "action": "SCMP_ACT_LOG"}]}
    b = with_seccomp(make_bundle, sh("mkdir /tmp/x; echo mk=$?; mkdir -p /tmp; rmdir /tmp/x; echo rm=$?"), prof)
    p = run(runtime, b)
    assert "Function not implemented" in p.stderr  # SECCOMP_RET_TRACE with no tracer: ENOSYS
    assert "mk=1" in p.stdout
    b = with_seccomp(make_bundle, sh("touch /tmp/d; rm /tmp/d; echo rm=$?"),
                     {"defaultAction": "SCMP_ACT_LOG", "syscalls": [{"names": ["unlink", "unlinkat"],
                                                                   "action": "SCMP_ACT_LOG"}]})
    p = run(runtime, b)
    assert p.returncode == 0, p.stderr
    assert "rm=0" in p.stdout


def test_unknown_syscall_names_are_warned_and_skipped(runtime, make_bundle):
    prof = deny_mkdir()
    prof["syscalls"][0]["names"] = ["pyrunc_no_such_syscall"] + MKDIR + ["another_fake_one"]
    b = with_seccomp(make_bundle, sh("mkdir /tmp/x"), prof)
    p = run(runtime, b)
    assert "Operation not permitted" in p.stderr
    warn = [ln for ln in p.stderr.splitlines() if "level=warning" in ln]
    assert len(warn) == 1, p.stderr
    assert "pyrunc_no_such_syscall" in warn[0] and "another_fake_one" in warn[0]


# --- arguments ----------------------------------------------------------------


def test_arg_eq_on_personality(runtime, make_bundle):
    # only personality(PER_LINUX32) is refused: linux32 fails, linux64 works
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}
    b = with_seccomp(make_bundle, sh("linux64 true; echo l64=$?; linux32 true; echo l32=$?"), prof)
    p = run(runtime, b)
    assert "l64=0" in p.stdout
    assert "l32=1" in p.stdout and "Operation not permitted" in p.stderr


def test_arg_masked_eq_on_clone_flags(runtime, make_bundle):
    # fork() is clone(CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID|SIGCHLD, ...) in glibc
    settid = 0x01000000
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 11,
                          "args": [{"index": 0, "value": settid, "valueTwo": settid,
                                    "op": "SCMP_CMP_MASKED_EQ"}]}]}
    b = with_seccomp(make_bundle, sh("(true); echo sub=$?"), prof)
    p = run(runtime, b)
    assert "sub=0" not in p.stdout
    assert "can't fork" in p.stderr or "Resource temporarily unavailable" in p.stderr, p.stderr
    # a mask that fork's flags do not match: forking works
    newuser = 0x10000000
    prof["syscalls"][0]["args"][0].update(value=newuser, valueTwo=newuser)
    b = with_seccomp(make_bundle, sh("(true); echo sub=$?"), prof)
    assert "sub=0" in run(runtime, b).stdout


def test_several_args_distinct_indexes_are_anded(runtime, make_bundle):
    # one rule: kill(1, 0) refused; kill(1, SIGCONT) and kill(other, 0) allowed
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                                   {"index": 1, "value": 0, "op": "SCMP_CMP_EQ"}]}]}
    b = with_seccomp(make_bundle, sh("kill -0 1; echo a=$?; kill -CONT 1; echo b=$?; "
                                     "sleep 5 & kill -0 $!; echo c=$?; kill $!"), prof)
    p = run(runtime, b)
    assert "a=1" in p.stdout and "b=0" in p.stdout and "c=0" in p.stdout, (p.stdout, p.stderr)


def test_several_args_same_index_are_separate_rules(runtime, make_bundle):
    # runc: the same index twice → one rule per comparison (either matches)
    prof = {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_EQ"},
                                   {"index": 1, "value": 18, "op": "SCMP_CMP_EQ"}]}]}
    b = with_seccomp(make_bundle, sh("kill -0 1; echo a=$?; kill -CONT 1; echo b=$?; kill -URG 1; echo c=$?"), prof)
    p = run(runtime, b)
    assert "a=1" in p.stdout and "b=1" in p.stdout and "c=0" in p.stdout, (p.stdout, p.stderr)


def kill_rule(*args):
    return {"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO",
                          "args": [{"index": i, "value": v, "op": "SCMP_CMP_" + op} for i, op, v in args]}]}


KILLS = "kill -0 1; echo s0=$?; kill -CONT 1; echo s18=$?; kill -URG 1; echo s23=$?"


@pytest.mark.parametrize("args,refused", [
    ([(0, "LT", 2), (1, "GE", 18)], {"s18", "s23"}),
    ([(0, "LE", 1), (1, "NE", 0)], {"s18", "s23"}),
    ([(1, "GT", 20)], {"s23"}),
    ([(0, "GE", 2)], set()),  # the container's own PID 1 is never matched
])
def test_other_operators(runtime, make_bundle, args, refused):
    b = with_seccomp(make_bundle, sh(KILLS), kill_rule(*args))
    p = run(runtime, b)
    for sig in ("s0", "s18", "s23"):
        assert f"{sig}={int(sig in refused)}" in p.stdout, (args, p.returncode, p.stdout, p.stderr)


# --- architectures, flags, the default profile -------------------------------------


def test_native_arch_is_always_present(runtime, make_bundle):
    foreign = "SCMP_ARCH_X86" if os.uname().machine == "x86_64" else "SCMP_ARCH_ARM"
    prof = deny_mkdir()
    prof["architectures"] = [foreign]
    b = with_seccomp(make_bundle, sh("mkdir /tmp/x"), prof)
    assert "Operation not permitted" in run(runtime, b).stderr


def test_flags_accepted(runtime, make_bundle):
    prof = deny_mkdir()
    prof["flags"] = ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
    b = with_seccomp(make_bundle, sh("mkdir /tmp/x; grep Seccomp: /proc/self/status"), prof)
    p = run(runtime, b)
    assert "Operation not permitted" in p.stderr and "Seccomp:\t2" in p.stdout, p.stderr


def test_docker_default_profile(runtime, make_bundle):
    b = with_seccomp(make_bundle, sh("ls / && echo ok && grep Seccomp /proc/self/status; "
                                     "unshare -m true; echo unshare=$?"), default_profile())
    p = run(runtime, b)
    assert p.returncode == 0, p.stderr
    assert "ok" in p.stdout.splitlines()
    assert "bin" in p.stdout.split()
    assert "Seccomp:\t2" in p.stdout and "Seccomp_filters:\t1" in p.stdout
    assert "unshare=1" in p.stdout and "Operation not permitted" in p.stderr
    # names this libseccomp does not know are skipped with a warning, not an error
    for line in p.stderr.splitlines():
        if "level=warning" in line:
            assert "unknown to libseccomp" in line


def test_default_errno_ret(runtime, make_bundle):
    prof = default_profile()
    prof["defaultErrnoRet"] = 38
    b = with_seccomp(make_bundle, sh("unshare -m true; echo unshare=$?"), prof)
    p = run(runtime, b)
    assert "unshare=1" in p.stdout
    assert "Function not implemented" in p.stderr, p.stderr


# --- users, exec ----------------------------------------------------------------


@pytest.mark.parametrize("nnp", [False, True])
def test_non_root_user(runtime, make_bundle, nnp):
    # without noNewPrivileges the filter needs CAP_SYS_ADMIN: loaded before the user switch
    b = with_seccomp(make_bundle, sh("id -u; mkdir /tmp/x; grep -E 'Seccomp:|NoNewPrivs' /proc/self/status"),
                     deny_mkdir(), noNewPrivileges=nnp, user={"uid": 1000, "gid": 1000})
    p = run(runtime, b)
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines()[0] == "1000"
    assert "Operation not permitted" in p.stderr
    assert "Seccomp:\t2" in p.stdout
    assert f"NoNewPrivs:\t{int(nnp)}" in p.stdout


def test_exec_gets_the_profile(runtime, make_bundle):
    b = with_seccomp(make_bundle, ["sleep", "300"], deny_mkdir())
    ex = uid("ex")
    runtime.create(ex, b)
    runtime("start", ex, check=True)
    p = runtime("exec", ex, "sh", "-c", "mkdir /tmp/x; echo rc=$?; grep Seccomp: /proc/self/status")
    assert "Operation not permitted" in p.stderr
    assert "rc=1" in p.stdout and "Seccomp:\t2" in p.stdout
    assert "level=warning" not in p.stderr
    # noNewPrivileges and a user set by exec: still filtered
    p = runtime("exec", "--no-new-privs", "--user", "1000:1000", ex, "sh", "-c", "mkdir /tmp/y; echo rc=$?")
    assert "rc=1" in p.stdout and "Operation not permitted" in p.stderr
    runtime("delete", "--force", ex, check=True)


# --- refusals -------------------------------------------------------------------------


def _refuse(runtime, make_bundle, profile, *needles):
    b = with_seccomp(make_bundle, ["true"], profile)
    return assert_refused(runtime, b, *needles, cid=uid("bad"))


@pytest.mark.parametrize("mutate,needle", [
    (lambda p: p["syscalls"][0].update(action="SCMP_ACT_FOO"), "linux.seccomp.syscalls[0].action"),
    (lambda p: p.update(defaultAction="SCMP_ACT_FOO"), "linux.seccomp.defaultAction"),
    (lambda p: p.update(architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_FOO"]), "linux.seccomp.architectures[1]"),
    (lambda p: p.update(flags=["SECCOMP_FILTER_FLAG_FOO"]), "linux.seccomp.flags[0]"),
    (lambda p: p["syscalls"][0].update(args=[{"index": 0, "value": 1, "op": "SCMP_CMP_FOO"}]),
     "linux.seccomp.syscalls[0].args[0].op"),
    (lambda p: p["syscalls"][0].update(args=[{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]),
     "linux.seccomp.syscalls[0].args[0].index"),
    (lambda p: p["syscalls"][0].update(action="SCMP_ACT_ALLOW", errnoRet=5), "linux.seccomp.syscalls[0].errnoRet"),
    (lambda p: p.update(defaultErrnoRet=5), "linux.seccomp.defaultErrnoRet"),
    (lambda p: p["syscalls"][0].update(names=[""]), "linux.seccomp.syscalls[0].names[0]"),
    (lambda p: p.update(defaultAction="SCMP_ACT_NOTIFY", listenerPath="/nonexistent"),
     "linux.seccomp.defaultAction"),
    (lambda p: p["syscalls"][0].update(action="SCMP_ACT_NOTIFY"), "linux.seccomp.listenerPath"),
    (lambda p: p.update(listenerMetadata="m"), "linux.seccomp.listenerMetadata"),
    (lambda p: p["syscalls"].append({"names": ["write"], "action": "SCMP_ACT_NOTIFY"}) or
     p.update(listenerPath="/nonexistent"), "linux.seccomp.syscalls[1]"),
])
def test_bad_profiles_refused_cleanly(runtime, make_bundle, mutate, needle):
    prof = deny_mkdir()
    mutate(prof)
    _refuse(runtime, make_bundle, prof, needle)


def test_unsupported_arch_or_flag_named(runtime, make_bundle):
    from pyrunc import seccomp
    feats = seccomp.features()
    missing_arch = [a for a in seccomp.ARCHS if a not in feats["archs"]]
    missing_flag = [f for f in seccomp.FLAGS if f not in feats["supportedFlags"]]
    if not missing_arch and not missing_flag:
        pytest.skip("this host's libseccomp supports every arch and flag of the spec")
    if missing_arch:
        prof = deny_mkdir()
        prof["architectures"] = [missing_arch[0]]
        p = _refuse(runtime, make_bundle, prof, "linux.seccomp.architectures[0]")
        assert missing_arch[0] in p.stderr
    if missing_flag:
        prof = deny_mkdir()
        prof["flags"] = [missing_flag[0]]
        p = _refuse(runtime, make_bundle, prof, "linux.seccomp.flags[0]")
        assert missing_flag[0] in p.stderr


def test_notify_agent_unreachable_is_a_clean_error(runtime, make_bundle):
    prof = deny_mkdir()
    prof["syscalls"][0]["action"] = "SCMP_ACT_NOTIFY"
    prof["listenerPath"] = str(runtime.workdir / "nobody-listens.sock")
    _refuse(runtime, make_bundle, prof, "seccomp agent")


# --- notify -------------------------------------------------------------------------


@pytest.fixture
def agent(runtime):
    """agent(policy) -> (socket path, read_events(n)): a seccomp agent subprocess."""
    procs = []

    def start(policy):
        i = len(procs)
        sock = runtime.workdir / f"agent{i}.sock"
        report = runtime.workdir / f"agent{i}.jsonl"
        p = subprocess.Popen([sys.executable, str(AGENT), str(sock), str(report), policy],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(p)
        assert p.stdout.readline().strip() == "ready", p.stderr.read()

        def events(n, kind=None, timeout=10):
            deadline = time.monotonic() + timeout
            while True:
                lines = report.read_text().splitlines() if report.exists() else []
                got = [json.loads(x) for x in lines]
                if kind:
                    got = [e for e in got if e["event"] == kind]
                if len(got) >= n or time.monotonic() > deadline:
                    return got
                time.sleep(0.02)

        return str(sock), events

    yield start
    for p in procs:
        p.kill()
        p.wait()


def notify_profile(sock, metadata=None):
    prof = {"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": sock,
            "syscalls": [{"names": MKDIR, "action": "SCMP_ACT_NOTIFY"}]}
    if metadata is not None:
        prof["listenerMetadata"] = metadata
    return prof


def test_notify_state_sent_during_create_and_errno_answer(runtime, make_bundle, agent):
    sock, events = agent("errno:122")
    b = make_bundle(sh("mkdir /tmp/n; echo rc=$?; test -d /tmp/n || echo absent"))
    b.config["root"]["readonly"] = False
    b.config["linux"]["seccomp"] = notify_profile(sock, metadata="opaque-meta")
    b.config["annotations"] = {"org.example.k": "v"}
    b.write()
    nt = uid("nt")
    c = runtime.create(nt, b)
    # like runc, the listener fd reaches the agent during create, before start
    got = events(1, "state")
    assert len(got) == 1, got
    ev = got[0]
    st = runtime.state(nt)
    assert ev["nfds"] == 1
    assert ev["fd_kind"] == "anon_inode:seccomp notify"
    cps = ev["state"]
    assert set(cps) == {"ociVersion", "fds", "pid", "metadata", "state"}
    assert cps["ociVersion"] == st["ociVersion"]
    assert cps["fds"] == ["seccompFd"]
    assert cps["pid"] == st["pid"]  # the host PID of the container process
    assert cps["metadata"] == "opaque-meta"
    assert cps["state"] == {"ociVersion": st["ociVersion"], "id": nt, "status": "creating",
                            "pid": st["pid"], "bundle": str(b), "annotations": {"org.example.k": "v"}}
    runtime("start", nt, check=True)
    assert runtime.wait_status(nt, "stopped")
    out = c.output_path.read_text()
    err = c.output_path.with_suffix(".err").read_text()
    assert "rc=1" in out and "absent" in out
    assert "Disk quota exceeded" in err  # EDQUOT, the agent's answer
    notifs = events(1, "notif")
    assert notifs and all(n["answered"] for n in notifs)
    runtime("delete", nt, check=True)


def test_notify_fake_success_and_exec(runtime, make_bundle, agent):
    sock, events = agent("ok")
    b = make_bundle(["sleep", "300"])
    b.config["root"]["readonly"] = False
    b.config["linux"]["seccomp"] = notify_profile(sock)
    b.write()
    nx = uid("nx")
    runtime.create(nx, b)
    runtime("start", nx, check=True)
    init_pid = runtime.state(nx)["pid"]
    pidfile = runtime.workdir / "exec.pid"
    p = runtime("exec", "--pid-file", pidfile, nx, "sh", "-c",
                "mkdir /tmp/e && echo made; test -d /tmp/e || echo absent")
    assert p.returncode == 0, p.stderr
    assert "made" in p.stdout and "absent" in p.stdout  # the agent said yes without doing it
    got = events(2, "state")
    assert len(got) == 2, got
    cps = got[1]["state"]
    assert "metadata" not in cps
    assert cps["pid"] == int(pidfile.read_text())  # the exec'd process, not the init
    assert cps["state"]["status"] == "running" and cps["state"]["pid"] == init_pid
    assert cps["state"]["id"] == nx and got[1]["nfds"] == 1
    runtime("delete", "--force", nx, check=True)


@pytest.fixture
def userns_bundle(rootfs_template):
    """A bundle with a new user namespace (the two-stage create), readable by the mapped root."""
    made = []

    def make(args):
        d = Path(tempfile.mkdtemp(prefix="userns-bundle-", dir=TEST_TMP))
        made.append(d)
        d.chmod(0o755)
        subprocess.run(["cp", "-a", str(rootfs_template), str(d / "rootfs")], check=True)
        (d / "rootfs").chmod(0o755)
        b = Bundle(d, d / "rootfs")
        cfg = base_config(args)
        cfg["root"]["readonly"] = False
        cfg["linux"]["namespaces"].append({"type": "user"})
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        # a cgroup v1 hierarchy cannot be mounted from a non-initial user namespace
        cfg["mounts"] = [m for m in cfg["mounts"] if m["destination"] != "/sys/fs/cgroup"]
        b.config = cfg
        return b

    yield make
    for d in made:
        shutil.rmtree(d, ignore_errors=True)


def test_user_namespace_without_no_new_privs(runtime, userns_bundle, agent):
    # the filter is loaded with CAP_SYS_ADMIN of the container's user namespace, and the
    # runtime copies a listener fd out of a process in another user namespace
    sock, events = agent("errno:122")
    b = userns_bundle(sh("mkdir /tmp/u; echo rc=$?; rmdir /tmp; grep Seccomp: /proc/self/status"))
    b.config["process"]["noNewPrivileges"] = False
    prof = notify_profile(sock)
    prof["syscalls"].append({"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 16})
    b.config["linux"]["seccomp"] = prof
    b.write()
    p = run(runtime, b, "un")
    assert p.returncode == 0, p.stderr
    assert "rc=1" in p.stdout and "Seccomp:\t2" in p.stdout
    assert "Disk quota exceeded" in p.stderr and "resource busy" in p.stderr, p.stderr
    assert len(events(1, "state")) == 1


# --- hot path -------------------------------------------------------------------------


def _modules_after_run(bundle, root):
    paths = [str(REPO)] + list(dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib")))
    code = (f"import sys; sys.path[:0] = {paths!r}\n"
            "from pyrunc.cli import main\n"
            f"rc = main(['--root', {root!r}, 'run', '--bundle', {bundle!r}, {uid('hp')!r}])\n"
            "print(sorted(m for m in sys.modules if 'seccomp' in m))\n")
    p = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip().splitlines()[-1]


def test_nothing_seccomp_imported_without_linux_seccomp(runtime, make_bundle):
    b = make_bundle(["true"])
    assert _modules_after_run(str(b), runtime.root) == "[]"
    b = with_seccomp(make_bundle, ["true"], deny_mkdir())
    assert _modules_after_run(str(b), runtime.root) == "['pyrunc.libseccomp', 'pyrunc.seccomp']"


def test_getcwd_blocked_by_the_profile_is_reported_as_such(runtime, make_bundle):
    """runtime-tools finding B7: without noNewPrivileges the filter is loaded before the cwd
    check (as runc does); a profile without getcwd fails with that errno, not 'outside the root'."""
    names = [n for n in ECHO_OK_SYSCALLS + USER_SWITCH_SYSCALLS if n != "getcwd"]
    prof = {"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": names, "action": "SCMP_ACT_ALLOW"}]}
    b = with_seccomp(make_bundle, ["sh", "-c", "echo ok"], prof, noNewPrivileges=False)
    p = runtime.create("nocwd", b, check=False)
    assert p.returncode != 0
    assert "getcwd: operation not permitted" in p.stderr and "outside" not in p.stderr, p.stderr
    assert runtime.ids() == []
