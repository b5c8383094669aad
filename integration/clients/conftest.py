"""Fixtures for the client suites: the runtime under test (pyrunc and runc) and a private containerd."""

import os
import shutil
import signal
import time
from pathlib import Path

import pytest

from clientlib import CLIENT_TOOLS, RUNTIMES, WORK, Runtime, alive, run


def pytest_collection_modifyitems(items):
    # Everything here needs root (namespaces, cgroups, the clients' own state in /var/lib, /run).
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="client suites need root")
        for item in items:
            if "integration/clients/" in str(item.path):
                item.add_marker(skip)


@pytest.fixture(scope="module", params=list(RUNTIMES))
def runtime(request):
    """The OCI runtime binary the clients are pointed at: every test runs once per runtime."""
    path = RUNTIMES[request.param]
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.skip(f"runtime {request.param} not installed at {path}")
    return Runtime(request.param, path)


@pytest.fixture(scope="session")
def workdir():
    d = WORK / f"{os.getpid()}"
    d.mkdir(parents=True, exist_ok=True)
    yield d
    shutil.rmtree(d, ignore_errors=True)
    try:
        WORK.rmdir()
    except OSError:
        pass


# --------------------------------------------------------------------------------------- containerd
CTRD_DIR = Path(os.environ.get("CTRD_DIR", "/var/tmp/pyrunc-containerd"))


class Containerd:
    def __init__(self, directory, pid, started):
        self.dir = directory
        self.pid = pid
        self.started = started           # False: it was already running; we leave it running
        self.address = str(directory / "containerd.sock")
        self.config = directory / "config.toml"
        self.env = dict(os.environ, CONTAINERD_ADDRESS=self.address)

    def ctr(self, *args, ns="default", timeout=60, input=None):
        return run(["ctr", "--address", self.address, "-n", ns, *args], timeout=timeout, input=input)

    def handlers(self):
        """{CRI runtime handler name: BinaryName} from the containerd config."""
        out, name = {}, None
        prefix = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.'
        for line in self.config.read_text().splitlines():
            s = line.strip()
            if s.startswith(prefix) and s.endswith("]") and not s.endswith(".options]"):
                name = s[len(prefix):-1]
            elif s.startswith("BinaryName") and name:
                out[name] = s.split("=", 1)[1].strip().strip('"')
        return out


def _pidfile_pid(d):
    try:
        return int((d / "containerd.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


@pytest.fixture(scope="session")
def containerd():
    """A private containerd (tools/clients/start-containerd.sh, state under /var/tmp), stopped by its
    PID at the end of the session if this session started it."""
    for tool in ("containerd", "ctr"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed (run ../shared/tools/clients/setup.sh)")
    start = CLIENT_TOOLS / "start-containerd.sh"
    if not start.exists():
        pytest.skip(f"{start} missing")
    if not Path("/opt/clients/images/busybox.docker.tar").is_file():
        pytest.skip("no /opt/clients/images/busybox.docker.tar (run ../shared/tools/clients/setup.sh)")
    old = _pidfile_pid(CTRD_DIR)
    was_running = old is not None and alive(old)
    cp = run([str(start), RUNTIMES["pyrunc"]], timeout=120,
             env=dict(os.environ, CTRD_DIR=str(CTRD_DIR)))
    if cp.returncode != 0:
        new = _pidfile_pid(CTRD_DIR)
        if not was_running and new is not None:
            _stop(new)              # the script started one that did not come up
        pytest.fail(f"start-containerd.sh failed: {cp.stdout} {cp.stderr}")
    pid = int(cp.stdout.split()[-1])
    c = Containerd(CTRD_DIR, pid, started=not was_running)
    try:
        yield c
    finally:
        if c.started:
            _stop(pid)


def _stop(pid):
    """Stop the containerd this session started, by its PID."""
    if alive(pid):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    if _pidfile_pid(CTRD_DIR) == pid:
        (CTRD_DIR / "containerd.pid").unlink(missing_ok=True)
