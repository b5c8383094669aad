"""Helpers the test modules import (`from support import ...`).

Kept out of conftest.py: tests/ and integration/ each have a conftest.py, and
pytest keeps only one module named `conftest` importable at a time.
"""

import copy
import errno
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))

# Where tests keep state: not /tmp (a tools/v2vm guest given /tmp empties it).
TEST_TMP = Path(os.environ.get("PYRUNC_TEST_TMP", "/var/tmp/pyrunc-tests"))

def _base():
    """`pyrunc spec` (runc's default) for tests: no terminal, /bin/true, our hostname."""
    from pyrunc import specconv
    cfg = specconv.example()
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["true"]
    cfg["hostname"] = "pyrunc-test"
    return cfg


BASE_CONFIG = _base()


def base_config(args=None, **overrides):
    """A fresh copy of the test config (runc's `spec` minus the terminal)."""
    cfg = copy.deepcopy(BASE_CONFIG)
    if args is not None:
        cfg["process"]["args"] = list(args)
    cfg.update(overrides)
    return cfg


class Bundle:
    def __init__(self, path, rootfs):
        self.path = path
        self.rootfs = rootfs
        self.config = base_config()

    def write(self, config=None):
        if config is not None:
            self.config = config
        (self.path / "config.json").write_text(json.dumps(self.config, indent=1))
        return self

    def __str__(self):
        return str(self.path)

    def __fspath__(self):
        return str(self.path)



class Runtime:
    """One pyrunc `--root` and helpers to call the binary against it."""

    def __init__(self, binary, root, workdir):
        self.binary = binary
        self.root = str(root)
        self.workdir = workdir

    def cmd(self, *args, global_args=()):
        return [self.binary, *global_args, "--root", self.root, *map(str, args)]

    def __call__(self, *args, input=None, timeout=60, global_args=(), check=False, **kw):
        """Run pyrunc to completion capturing output (not for create: see create())."""
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        p = subprocess.run(self.cmd(*args, global_args=global_args), input=input, timeout=timeout,
                           text=True, **kw)
        if check and p.returncode != 0:
            raise AssertionError(f"pyrunc {' '.join(map(str, args))} exited {p.returncode}: {p.stderr}")
        return p

    def create(self, cid, bundle, *extra, out=None, check=True, timeout=60, global_args=()):
        """`create`, with the container's stdio on files: the container keeps
        create's stdout/stderr open, so pipes would never see EOF."""
        out = Path(out or (self.workdir / f"{cid}.out"))
        err = out.with_suffix(".err")
        with open(out, "wb") as fo, open(err, "w+") as fe:
            p = subprocess.run(self.cmd("create", "--bundle", bundle, *extra, cid, global_args=global_args),
                               stdin=subprocess.DEVNULL, stdout=fo, stderr=fe,
                               timeout=timeout, text=True)
            fe.seek(0)
            p.stderr = fe.read()
        if check and p.returncode != 0:
            raise AssertionError(f"create {cid} exited {p.returncode}: {p.stderr}")
        p.output_path = out
        return p

    def state(self, cid):
        p = self("state", cid)
        assert p.returncode == 0, p.stderr
        return json.loads(p.stdout)

    def status(self, cid):
        p = self("state", cid)
        if p.returncode != 0:
            return None
        return json.loads(p.stdout)["status"]

    def wait_status(self, cid, want, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status(cid) == want:
                return True
            time.sleep(0.02)
        return False

    def ids(self):
        p = self("list", "-q")
        return p.stdout.split()


def mounts_under(prefix):
    """Host mount points under a path prefix (to prove nothing leaked)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4]
            if mp.startswith(str(prefix)):
                out.append(mp)
    return out


def assert_refused(runtime, b, *needles, cid="bad"):
    """create fails with an error naming the problem and leaves nothing behind."""
    p = runtime.create(cid, b, check=False)
    assert p.returncode != 0, "create should have failed"
    low = p.stderr.lower()
    assert any(n.lower() in low for n in needles), p.stderr
    assert runtime.ids() == []
    assert os.listdir(runtime.root) == []
    assert mounts_under(b.path) == []
    return p


def rmdir_cgroup(d):
    """Remove a test's own cgroup; a reaped process may still be leaving it (EBUSY)."""
    for _ in range(100):
        try:
            os.rmdir(d)
            return
        except OSError as e:
            if e.errno != errno.EBUSY:
                raise
            time.sleep(0.02)
    os.rmdir(d)


def wait_exec(pid, comm, timeout=5.0):
    """`start` and `run -d` return before the init's execve, as runc's do:
    wait until the container process is the program, not the runtime's init.
    The kernel names the process (comm) before it commits its credentials and
    places its argv, then its environment: /proc/PID/cmdline and environ read
    empty for a moment after comm changed. Every test container has an env."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if (Path(f"/proc/{pid}/comm").read_text().strip() == comm
                    and Path(f"/proc/{pid}/cmdline").read_bytes()
                    and Path(f"/proc/{pid}/environ").read_bytes()):
                return
        except FileNotFoundError:
            break
        time.sleep(0.005)
    raise AssertionError(f"pid {pid} never became {comm!r}")
