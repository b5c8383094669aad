"""Helpers shared by the client suites: running commands, polling, cgroup files of a host PID."""

import os
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("PYRUNC_SHARED", REPO.parent / "shared"))
CLIENT_TOOLS = SHARED / "tools" / "clients"

BUSYBOX = "localhost/pyrunc-busybox:latest"
DEBIAN = "localhost/pyrunc-debian:latest"

# The runtime binaries under test. Keep pyrunc's path as given (not resolved): podman decides by the
# basename whether the runtime gets --log-format=json, and containers.conf knows it as "pyrunc".
RUNTIMES = {
    "pyrunc": os.environ.get("PYRUNC_BINARY", "/usr/local/bin/pyrunc"),
    "runc": os.environ.get("RUNC_BINARY", "/usr/sbin/runc"),
}

# State directory for files the tests make (bind sources, CRI logs): not /tmp (tools/v2vm empties it).
WORK = Path(os.environ.get("PYRUNC_CLIENTS_TMP", "/var/tmp/pyrunc-clients-tests"))

# Capability sets as the clients configure them by default (podman 4.3, containerd 1.6).
CAPEFF_PODMAN_DEFAULT = "00000000800405fb"
CAPEFF_CTR_DEFAULT = "00000000a80425fb"
CAP_NET_RAW_BIT = 1 << 13


class Runtime:
    def __init__(self, name, path):
        self.name = name
        self.path = path

    def __repr__(self):
        return f"Runtime({self.name}, {self.path})"

    def state(self, cid, root=None):
        """`RUNTIME [--root R] state ID` as a CompletedProcess (JSON on stdout if rc 0)."""
        argv = [self.path] + (["--root", root] if root else []) + ["state", cid]
        return run(argv, timeout=30)


def run(argv, timeout=60, input=None, env=None, cwd="/"):
    """Run argv (a list) to completion; never raises on a non-zero exit or a timeout."""
    try:
        return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                              env=env, cwd=cwd, errors="replace")
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        return subprocess.CompletedProcess(argv, -999, out, err + f"\n[timed out after {timeout}s]")


def tty_run(command, timeout=60):
    """Run a shell command line under util-linux script(1), which gives it a pty as its terminal.
    Returns (rc, output with CR and NUL removed); script -e passes the command's exit code on."""
    cp = run(["script", "-qec", command, "/dev/null"], timeout=timeout)
    return cp.returncode, (cp.stdout + cp.stderr).replace("\r", "").replace("\0", "")


def show(cp):
    """A CompletedProcess, for assertion messages."""
    return (f"argv={cp.args!r} rc={cp.returncode}\n--- stdout\n{cp.stdout[-3000:]}"
            f"\n--- stderr\n{cp.stderr[-3000:]}")


def lines(text):
    return [x.strip() for x in text.replace("\r", "").splitlines() if x.strip()]


def wait_for(fn, timeout=10.0, interval=0.1):
    """Call fn until it returns something truthy; return that, or the last value after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(interval)


def handles(pid, sig, ignored=False):
    """Whether `pid` has a handler for `sig` (SigCgt), or ignores it (SigIgn). A
    signal sent before a shell ran its `trap` kills it, or is dropped by a PID 1."""
    field = "SigIgn:" if ignored else "SigCgt:"
    try:
        with open(f"/proc/{pid}/status") as f:
            mask = next(int(ln.split()[1], 16) for ln in f if ln.startswith(field))
    except (OSError, StopIteration):
        return False
    return bool(mask & (1 << (sig - 1)))


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not a running container process
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# ------------------------------------------------------------------------------------------ cgroups
def _cgroup_mounts():
    """[(fstype, mount root, mount point, super options set)] of the cgroup/cgroup2 mounts here."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, rfields = left.split(), right.split()
            if rfields and rfields[0] in ("cgroup", "cgroup2"):
                out.append((rfields[0], fields[3], fields[4], set(rfields[2].split(","))))
    return out


def cgroup_dir(pid, controller):
    """The host directory of the cgroup of `pid` that holds `controller` (v1 hierarchy with that
    controller, else the cgroup2 hierarchy). Paths in /proc/PID/cgroup are relative to our own
    cgroup namespace root: the host's, for a test run on the host."""
    with open(f"/proc/{pid}/cgroup") as f:
        entries = [line.rstrip("\n").split(":", 2) for line in f if line.strip()]
    mounts = _cgroup_mounts()
    for _hid, ctrls, path in entries:
        if ctrls and controller in ctrls.split(","):
            for fstype, root, mnt, opts in mounts:
                if fstype == "cgroup" and controller in opts:
                    rel = os.path.relpath(path, root) if root != "/" else path.lstrip("/")
                    return Path(mnt) / rel
    for _hid, ctrls, path in entries:
        if ctrls == "":
            for fstype, root, mnt, _opts in mounts:
                if fstype == "cgroup2":
                    rel = os.path.relpath(path, root) if root != "/" else path.lstrip("/")
                    d = Path(mnt) / rel
                    try:
                        if controller in ("freezer",) or controller in (d / "cgroup.controllers").read_text().split():
                            return d
                    except OSError:
                        pass
    raise LookupError(f"no cgroup with controller {controller} for pid {pid}: {entries}")


# kind -> (controller, v1 file, v2 file)
_CG_FILES = {
    "memory": ("memory", "memory.limit_in_bytes", "memory.max"),
    "cpu": ("cpu", "cpu.cfs_quota_us", "cpu.max"),
    "pids": ("pids", "pids.max", "pids.max"),
    "freezer": ("freezer", "freezer.state", "cgroup.freeze"),
}


def cgroup_value(pid, kind):
    """(path, value) of a container's limit read on the host from its cgroup files; values are
    normalised to the v1 form: memory bytes, cpu quota (µs), pids max, freezer FROZEN/THAWED."""
    controller, v1, v2 = _CG_FILES[kind]
    d = cgroup_dir(pid, controller)
    p = d / v1
    if not p.exists():
        p = d / v2
    v = p.read_text().strip()
    if p.name == "cpu.max":
        v = v.split()[0]
    elif p.name == "cgroup.freeze":
        v = {"1": "FROZEN", "0": "THAWED"}.get(v, v)
    return str(p), v


def cgroup_dirs(pid):
    """Every cgroup directory of pid on the host (to check later that they were removed)."""
    out = set()
    with open(f"/proc/{pid}/cgroup") as f:
        entries = [line.rstrip("\n").split(":", 2) for line in f if line.strip()]
    for _hid, ctrls, path in entries:
        if path == "/":
            continue
        for fstype, root, mnt, opts in _cgroup_mounts():
            if (ctrls == "" and fstype == "cgroup2") or (
                    fstype == "cgroup" and ctrls and set(ctrls.split(",")) <= opts):
                rel = os.path.relpath(path, root) if root != "/" else path.lstrip("/")
                out.add(Path(mnt) / rel)
    return out


def capeff(status_text):
    for line in status_text.splitlines():
        if line.startswith("CapEff:"):
            return line.split()[1]
    return None
