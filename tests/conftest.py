"""Shared fixtures: a pyrunc binary from this checkout, busybox bundles, private roots.

Every real-container test runs pyrunc as a separate process, as its users
do, under its own `--root` in a temporary directory. Teardown force-deletes
whatever the test left and fails the test if a container process, a state
directory or a mount survives.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

from support import REPO, TEST_TMP, Bundle, Runtime, base_config, mounts_under


def _write_launcher(path):
    paths = [str(REPO)]
    for key in ("purelib", "platlib"):
        p = sysconfig.get_paths()[key]
        if p not in paths:
            paths.append(p)
    path.write_text(
        f"#!{os.path.realpath(sys.executable)} -IS\n"
        "import gc\n"
        "import sys\n"
        "gc.disable()\n"  # as the installed launcher (pyrunc/_build_backend.py)
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


@pytest.fixture(autouse=True)
def no_host_mounts_leak():
    """No test may leave a mount on the host under the test directories."""
    TEST_TMP.mkdir(parents=True, exist_ok=True)
    before = set(mounts_under(TEST_TMP))
    yield
    after = set(mounts_under(TEST_TMP))
    assert after <= before, f"host mounts left behind: {sorted(after - before)}"
