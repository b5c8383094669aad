"""cgroup v2 and systemd are proven in guests, not assumed.

This host has v1 controllers only and no systemd. The tests marked
`cgroupv2` and `systemd` run inside QEMU guests booted by the shared
tools/v2vm scripts (pure cgroup v2; the second with systemd as PID 1 and
D-Bus), which see this checkout read-write and the host read-only. Each
guest runs the marked tests of this very suite; the test here passes when
they all pass in the guest. Inside a guest (or on a v2 host) these two
tests skip themselves and the marked tests run directly.
"""

import os
import subprocess
import sys

import pytest

from support import REPO, SHARED

V2VM = SHARED / "tools" / "v2vm"


def _host_is_v1():
    from pyrunc.cgroups import host_mode
    return host_mode() != "v2"


def _run_in_guest(script, marker):
    if not _host_is_v1():
        pytest.skip("already on a cgroup v2 host: the marked tests run directly")
    if not (V2VM / script).exists():
        pytest.skip(f"{V2VM / script} is not available")
    # sys.executable as it is: a venv's python finds its packages through the venv's path
    cmd = [str(V2VM / script), str(REPO), sys.executable, "-m", "pytest", "-q",
           "-p", "no:cacheprovider", "-m", marker, "tests"]
    env = dict(os.environ, V2VM_TIMEOUT="1200")
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=1500, env=env)
    tail = "\n".join(p.stdout.splitlines()[-40:])
    if p.returncode == 125 and "setup failed" in p.stdout:
        pytest.skip(f"the v2vm guest cannot be set up here:\n{tail}")
    if p.returncode == 5:  # pytest: nothing collected
        pytest.skip(f"no test is marked {marker}")
    assert p.returncode == 0, f"{marker} tests failed in the guest (rc {p.returncode}):\n{tail}"
    assert " passed" in tail, tail


@pytest.mark.slow
def test_cgroup_v2_tests_pass_in_a_v2_guest():
    _run_in_guest("run-in-v2.sh", "cgroupv2")


@pytest.mark.slow
def test_systemd_tests_pass_in_a_systemd_guest():
    _run_in_guest("run-in-systemd.sh", "systemd")
