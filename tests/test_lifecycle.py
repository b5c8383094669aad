"""create → start → kill → delete, as runc users drive it."""

import json
import os
import time

from support import wait_exec


def test_create_start_kill_delete(runtime, bundle, tmp_path):
    pidfile = tmp_path / "pid"
    runtime.create("c1", bundle, "--pid-file", pidfile)
    raw = pidfile.read_bytes()
    assert raw.isdigit(), raw  # bare PID, no newline (runtime-tools reads it so)
    st = runtime.state("c1")
    assert st["status"] == "created"
    assert st["pid"] == int(raw)
    assert st["bundle"] == str(bundle)
    assert st["id"] == "c1"
    assert runtime("start", "c1").returncode == 0
    assert runtime.status("c1") == "running"
    wait_exec(st["pid"], "sleep")
    assert runtime("kill", "c1", "KILL").returncode == 0
    assert runtime.wait_status("c1", "stopped")
    stopped = runtime("state", "c1").stdout
    assert json.loads(stopped)["pid"] == 0
    assert runtime("state", "c1").stdout == stopped  # stable for runtime-tools
    assert runtime("delete", "c1").returncode == 0
    assert runtime("state", "c1").returncode == 1
    assert os.listdir(runtime.root) == []


def test_run_foreground_exit_code_and_output(runtime, make_bundle):
    b = make_bundle(["sh", "-c", "echo hello from $(hostname); exit 7"])
    p = runtime("run", "--bundle", b, "fg")
    assert p.returncode == 7, p.stderr
    assert p.stdout == "hello from pyrunc-test\n"
    assert runtime.ids() == []


def test_delete_created_fails_without_force(runtime, bundle):
    runtime.create("c2", bundle)
    p = runtime("delete", "c2")
    assert p.returncode == 1
    assert "not stopped: created" in p.stderr
    assert runtime.status("c2") == "created"
    assert runtime("delete", "--force", "c2").returncode == 0
    assert runtime.ids() == []


def test_kill_all_and_delete_force_on_gone_container(runtime, make_bundle):
    b = make_bundle(["true"])
    assert runtime("run", "--detach", "--bundle", b, "c3").returncode == 0
    assert runtime.wait_status("c3", "stopped")
    assert runtime("kill", "--all", "c3", "9").returncode == 0
    p = runtime("kill", "c3", "9")
    assert p.returncode == 1 and "container not running" in p.stderr
    assert runtime("delete", "c3").returncode == 0
    assert runtime("delete", "--force", "c3").returncode == 0
    assert runtime("delete", "c3").returncode == 1


def test_start_twice(runtime, bundle):
    runtime.create("c4", bundle)
    assert runtime("start", "c4").returncode == 0
    p = runtime("start", "c4")
    assert p.returncode == 1
    assert "cannot start an already running container" in p.stderr


def test_exec_fifo_reader_holds_the_program_back_for_a_bounded_time(runtime, bundle):
    # `pyrunc start` keeps the fifo open until it exits, so that the program runs
    # after `start` returned (as with runc); any other reader (runc users start a
    # container with `cat exec.fifo`) only delays it
    runtime.create("held", bundle)
    pid = runtime.state("held")["pid"]
    opened = time.monotonic()  # the init's wait (init.HOLD_MS, 100 ms) starts after this
    fd = os.open(os.path.join(runtime.root, "held", "exec.fifo"), os.O_RDONLY)
    try:
        assert os.read(fd, 1) == b"0"
        comm = open(f"/proc/{pid}/comm").read().strip()
        if time.monotonic() - opened < 0.08:  # else this test was descheduled: no verdict
            assert comm != "sleep", "exec'd while the fifo was held"
        wait_exec(pid, "sleep")
        assert os.read(fd, 16) == b""  # the init's end closed at execve
    finally:
        os.close(fd)
    assert runtime("delete", "--force", "held").returncode == 0


def test_zombie_init_reported_stopped(runtime, make_bundle):
    b = make_bundle(["true"])
    runtime.create("z", b)
    pid = runtime.state("z")["pid"]
    runtime("start", "z", check=True)
    # the init's reaper may be lazy: whatever /proc says, state must say stopped
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and runtime.status("z") != "stopped":
        time.sleep(0.01)
    assert runtime.status("z") == "stopped"
    del pid
