"""Shared fixtures: a pyrunc binary from this checkout, busybox bundles, private roots.

Every real-container test runs pyrunc as a separate process, as its users
do, under its own `--root` in a temporary directory. Teardown force-deletes
whatever the test left and fails the test if a container process, a state
directory or a mount survives.
"""

import copy
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


def _write_launcher(path):
    paths = [str(REPO)]
    for key in ("purelib", "platlib"):
        p = sysconfig.get_paths()[key]
        if p not in paths:
            paths.append(p)
    path.write_text(
        f"#!{os.path.realpath(sys.executable)} -IS\n"
        "import sys\n"
        f"sys.path[:0] = {paths!r}\n"
        "from pyrunc.cli import run\n"
        "run()\n")
    path.chmod(0o755)


@pytest.fixture(scope="session")
def test_tmp():
    TEST_TMP.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix="session-", dir=TEST_TMP))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def pyrunc_bin(test_tmp):
    """Path of a `pyrunc` launcher running this checkout (PYRUNC_BIN overrides)."""
    env = os.environ.get("PYRUNC_BIN")
    if env:
        return env
    p = test_tmp / "bin" / "pyrunc"
    p.parent.mkdir()
    _write_launcher(p)
    return str(p)


@pytest.fixture(scope="session")
def rootfs_template(test_tmp):
    d = test_tmp / "rootfs-template"
    subprocess.run([str(REPO / "bundles" / "mkrootfs.sh"), str(d)], check=True,
                   stdout=subprocess.DEVNULL)
    return d


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


@pytest.fixture
def make_bundle(tmp_path_factory, rootfs_template, test_tmp):
    """make_bundle(args=[...], config=..., **overrides) -> Bundle with its own rootfs copy."""
    made = []

    def make(args=None, config=None, **overrides):
        d = Path(tempfile.mkdtemp(prefix="bundle-", dir=test_tmp))
        made.append(d)
        rootfs = d / "rootfs"
        subprocess.run(["cp", "-a", str(rootfs_template), str(rootfs)], check=True)
        b = Bundle(d, rootfs)
        b.write(config if config is not None else base_config(args, **overrides))
        return b

    yield make
    for d in made:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def bundle(make_bundle):
    return make_bundle(["sleep", "300"])


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


def _container_pids(root):
    pids = []
    if not os.path.isdir(root):
        return pids
    for cid in os.listdir(root):
        try:
            st = json.loads(Path(root, cid, "state.json").read_text())
            pids.append(st.get("pid"))
        except (OSError, ValueError):
            pass
    return [p for p in pids if p]


@pytest.fixture
def runtime(pyrunc_bin, test_tmp):
    root = Path(tempfile.mkdtemp(prefix="root-", dir=test_tmp))
    work = Path(tempfile.mkdtemp(prefix="work-", dir=test_tmp))
    rt = Runtime(pyrunc_bin, root, work)
    yield rt
    leftovers = []
    for cid in rt.ids():
        leftovers.append(cid)
        rt("delete", "--force", cid, timeout=30)
    pids = _container_pids(root)
    for pid in pids:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    remaining = [n for n in os.listdir(root)] if root.exists() else []
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)
    assert not remaining, f"state left under --root after force-deleting {leftovers}: {remaining}"


@pytest.fixture
def runc_runtime(test_tmp):
    """The same helper around Debian's runc, for differential tests."""
    binary = shutil.which("runc")
    if not binary:
        pytest.skip("runc is not installed")
    root = Path(tempfile.mkdtemp(prefix="runc-root-", dir=test_tmp))
    work = Path(tempfile.mkdtemp(prefix="runc-work-", dir=test_tmp))
    rt = Runtime(binary, root, work)
    yield rt
    for cid in rt.ids():
        rt("delete", "--force", cid, timeout=30)
    shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(work, ignore_errors=True)


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


@pytest.fixture(autouse=True)
def no_host_mounts_leak():
    """No test may leave a mount on the host under the test directories."""
    TEST_TMP.mkdir(parents=True, exist_ok=True)
    before = set(mounts_under(TEST_TMP))
    yield
    after = set(mounts_under(TEST_TMP))
    assert after <= before, f"host mounts left behind: {sorted(after - before)}"
