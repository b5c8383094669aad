#!/usr/bin/env python3
"""bench.py: time pyrunc against runc (and optionally crun) side by side, in one run.

Not a test. Prints median/p90 wall time per operation and runtime, the ratio of medians
pyrunc/runc and the peak RSS; with --check, exits 1 if a target is missed. Run as root.
Standard library only; see README.md next to this file for what exactly is timed.
"""
import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MKROOTFS = os.path.normpath(os.path.join(HERE, "..", "..", "bundles", "mkrootfs.sh"))
# Targets on the reference machine: max ratio of medians pyrunc/runc, and pyrunc's peak RSS.
TARGETS = {"run": 1.0, "create+start+delete": 1.3, "state": 2.5, "list (1)": 2.5, "list (10)": 2.5,
           "exec": 1.0}
RSS_TARGET_MIB = 20.0
DEVNULL = os.open(os.devnull, os.O_RDWR)
_current = None  # the Popen being timed: killed by its PID if we are interrupted


class BenchError(Exception):
    pass


class Runtime:
    """One runtime binary with its own --root and its own bundle."""

    def __init__(self, name, path, root_dir, bundle_dir):
        self.name, self.path = name, path
        self.root = os.path.join(root_dir, name)
        self.bundle = os.path.join(bundle_dir, name)
        self.ids = set()  # containers that may exist, deleted by cleanup()

    def argv(self, *args):
        return [self.path, "--root", self.root, *args]

    def new_id(self, tag):
        cid = f"bench{os.getpid()}-{self.name}-{tag}"  # distinct per runtime: cgroup paths differ
        self.ids.add(cid)
        return cid


# Peak RSS cannot come from the timed calls: a child forked or vforked from this Python process
# starts with the parent's RSS as its ru_maxrss (the kernel records the old mm's high-water mark
# at exec), so every runtime would show ~15 MiB. RSS runs are therefore extra, untimed runs,
# forked from this small helper, which reports the child's own wait4() rusage.
SPAWNER = r"""
import os, sys, time
null = os.open("/dev/null", os.O_RDWR)
for line in sys.stdin.buffer:
    argv = line.rstrip(b"\n").split(b"\0")
    t0 = time.perf_counter_ns()
    pid = os.fork()
    if pid == 0:
        try:
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.execv(argv[0], argv)
        finally:
            os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    t1 = time.perf_counter_ns()
    sys.stdout.buffer.write(b"%d %d %d\n" % (t1 - t0, ru.ru_maxrss, os.waitstatus_to_exitcode(status)))
    sys.stdout.buffer.flush()
"""


class Spawner:
    def __init__(self):
        # own session: a Ctrl-C does not reach it or the runtime it is running
        self.p = subprocess.Popen([sys.executable, "-I", "-S", "-c", SPAWNER], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, start_new_session=True)

    def __call__(self, argv):
        self.p.stdin.write(b"\0".join(os.fsencode(a) for a in argv) + b"\n")
        self.p.stdin.flush()
        reply = self.p.stdout.readline().split()
        if len(reply) != 3:
            raise BenchError("the RSS helper died")
        return tuple(map(int, reply))  # wall ns, ru_maxrss KiB, exit code

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=15)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()  # by its PID: we started it
            self.p.wait()


def direct(argv):
    """Timed call: Popen (vfork+exec, like any client) + wait4, stdio on /dev/null."""
    global _current
    t0 = time.perf_counter_ns()
    _current = p = subprocess.Popen(argv, stdin=DEVNULL, stdout=DEVNULL, stderr=DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    t1 = time.perf_counter_ns()
    p.returncode = os.waitstatus_to_exitcode(status)
    _current = None
    return t1 - t0, ru.ru_maxrss, p.returncode


_runner = direct  # measure() switches to a Spawner for the RSS runs


def timed(rt, *args):
    """Run one runtime command; return (wall ns, ru_maxrss KiB) or raise."""
    argv = rt.argv(*args)
    ns, rss, rc = _runner(argv)
    if rc != 0:
        raise BenchError(f"`{' '.join(argv)}` exited {rc} (run it by hand to see why)")
    return ns, rss


def quiet(rt, *args, timeout=10):
    """An untimed helper call; returns CompletedProcess (stdout captured)."""
    return subprocess.run(rt.argv(*args), stdin=DEVNULL, capture_output=True, timeout=timeout)


def wait_stopped(rt, cid, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = quiet(rt, "state", cid)
        if r.returncode == 0 and json.loads(r.stdout)["status"] == "stopped":
            return
        time.sleep(0.001)
    raise BenchError(f"{rt.name}: container {cid} not stopped after {timeout} s")


# Each operation returns (total ns, max ru_maxrss KiB, {part: ns}).
def op_run(rt, tag):
    cid = rt.new_id(f"run{tag}")
    ns, rss = timed(rt, "run", "--bundle", rt.bundle, cid)  # foreground; removed on exit
    rt.ids.discard(cid)
    return ns, rss, {}


def op_create_start_delete(rt, tag):
    cid = rt.new_id(f"csd{tag}")
    c_ns, c_rss = timed(rt, "create", "--bundle", rt.bundle, cid)
    s_ns, s_rss = timed(rt, "start", cid)
    wait_stopped(rt, cid)  # not timed
    d_ns, d_rss = timed(rt, "delete", cid)
    rt.ids.discard(cid)
    return c_ns + s_ns + d_ns, max(c_rss, s_rss, d_rss), {"create": c_ns, "start": s_ns, "delete": d_ns}


def op_state(rt, tag):
    ns, rss = timed(rt, "state", rt.new_id("idle0"))
    return ns, rss, {}


def op_list(rt, tag):
    ns, rss = timed(rt, "list")
    return ns, rss, {}


def op_exec(rt, tag):
    ns, rss = timed(rt, "exec", rt.new_id("busy"), "/bin/true")  # foreground, its exit status
    return ns, rss, {}


def op_podman(image):
    """podman run --rm: the latency a podman user sees, conmon and all (RSS is podman's: not kept)."""
    def op(rt, tag):
        ns, _rss, rc = _runner(["podman", "--runtime", rt.path, "run", "--rm", "--network", "none",
                                image, "true"])
        if rc != 0:
            raise BenchError(f"podman --runtime {rt.path} run --rm {image} true exited {rc}")
        return ns, 0, {}
    return op


def measure(runtimes, op, pairs, warmup, rss_runs, spawner):
    global _runner
    res = {rt.name: {"ns": [], "rss": 0, "parts": {}} for rt in runtimes}
    for i in range(warmup):
        for rt in runtimes:
            op(rt, f"w{i}")
    for i in range(pairs):
        for rt in (runtimes if i % 2 == 0 else runtimes[::-1]):  # A,B then B,A: cancels drift
            ns, _, parts = op(rt, i)
            res[rt.name]["ns"].append(ns)
            for k, v in parts.items():
                res[rt.name]["parts"].setdefault(k, []).append(v)
    _runner = spawner
    try:
        for i in range(rss_runs):
            for rt in runtimes:
                res[rt.name]["rss"] = max(res[rt.name]["rss"], op(rt, f"m{i}")[1])
    finally:
        _runner = direct
    return res


def summary(samples_ns):
    ms = sorted(x / 1e6 for x in samples_ns)
    return {"median_ms": statistics.median(ms), "p90_ms": ms[math.ceil(0.9 * len(ms)) - 1],
            "samples_ms": [round(x, 3) for x in ms]}


def make_bundles(runtimes, runc_path, bundle_dir):
    """The same config.json, byte for byte, for every runtime: `runc spec`, not a terminal, /bin/true."""
    spec_dir = os.path.join(bundle_dir, "spec")
    os.makedirs(spec_dir)
    subprocess.run([runc_path, "spec"], cwd=spec_dir, check=True)
    with open(os.path.join(spec_dir, "config.json")) as f:
        config = json.load(f)
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/true"]
    data = (json.dumps(config, indent=2) + "\n").encode()
    for rt in runtimes:
        subprocess.run([MKROOTFS, os.path.join(rt.bundle, config["root"]["path"])],
                       check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(rt.bundle, "config.json"), "wb") as f:
            f.write(data)
        # a long-running container for exec, on the same rootfs
        busy = json.loads(data)
        busy["process"]["args"] = ["/bin/sleep", "100000"]
        busy["root"]["path"] = os.path.join(rt.bundle, config["root"]["path"])
        os.makedirs(rt.bundle + "-busy")
        with open(os.path.join(rt.bundle + "-busy", "config.json"), "w") as f:
            json.dump(busy, f, indent=2)
    return config["ociVersion"]


def cleanup(runtimes, dirs):
    """Kill our own timed child by PID, delete --force every container, remove the temp dirs."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave leftovers
    p = _current
    if p is not None and p.poll() is None:
        p.kill()
        p.wait()
    for rt in runtimes:
        ids = set(rt.ids)
        try:
            r = quiet(rt, "list", "-q")
            ids.update(r.stdout.decode().split() if r.returncode == 0 else ())
        except (OSError, subprocess.SubprocessError):
            pass
        for cid in sorted(ids):
            try:
                quiet(rt, "delete", "--force", cid)
            except (OSError, subprocess.SubprocessError) as e:
                print(f"cleanup: {rt.name} delete --force {cid}: {e}", file=sys.stderr)
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def default_pyrunc():
    """The launcher clients use (.ci/run links it), else the one next to this interpreter."""
    if os.access("/usr/local/bin/pyrunc", os.X_OK):
        return os.path.realpath("/usr/local/bin/pyrunc")
    return os.path.join(sysconfig.get_path("scripts"), "pyrunc")


def interpreter_floor(path, runs=30):
    """Median ms of the launcher's own interpreter doing nothing (`-I -S -c pass`): the part of every
    pyrunc command that pyrunc's code cannot shorten. None if path is not a Python launcher."""
    try:
        with open(path, "rb") as f:
            first = f.readline().decode(errors="replace")
    except OSError:
        return None
    if not first.startswith("#!") or "python" not in first:
        return None
    interp = first[2:].split()[0]
    return statistics.median(direct([interp, "-I", "-S", "-c", "pass"])[0] for _ in range(runs)) / 1e6


def version(path):
    r = subprocess.run([path, "--version"], capture_output=True, text=True)
    return (r.stdout.splitlines() or ["?"])[0]


def report(runtimes, results, meta):
    names = [rt.name for rt in runtimes]
    others = [n for n in names if n != "runc"]
    head = f"{'operation':<22}" + "".join(f"{n + ' med':>12}{'p90':>8}{'RSS':>7}" for n in names)
    head += "".join(f"{n + '/runc':>13}" for n in others) + f"{'target':>8}"
    lines = ["# " + " | ".join([*meta["versions"].values(), f"kernel {meta['kernel']}",
                                f"ociVersion {meta['ociVersion']}", f"{meta['warmup']} warm-up"]),
             "# " + "  ".join(f"{n}={p}" for n, p in meta["paths"].items()),
             f"# wall ms over {meta['pairs']} pairs (median, p90); RSS = peak ru_maxrss in MiB over"
             f" {meta['rss_runs']} extra runs (floor {meta['rss_floor_mib']:.1f} MiB: /bin/true)"]
    if meta.get("python_floor_ms"):
        lines.append(f"# pyrunc's interpreter alone (-I -S -c pass): {meta['python_floor_ms']:.2f} ms median,"
                     " paid by every pyrunc command")
    lines.append(head)
    for op, res in results.items():
        rows = [(op, {n: res[n] for n in names}, True)]
        for part in res["runc"].get("parts", {}):
            rows.append((f"  {part}", {n: res[n]["parts"][part] for n in names}, False))
        for label, cells, top in rows:
            line = f"{label:<22}"
            for n in names:
                rss = f"{cells[n]['max_rss_mib']:7.1f}" if top else " " * 7
                line += f"{cells[n]['median_ms']:12.2f}{cells[n]['p90_ms']:8.2f}{rss}"
            for n in others:
                line += f"{cells[n]['median_ms'] / cells['runc']['median_ms']:12.2f}x"
            if top and op in TARGETS:
                line += f"{'<=' + str(TARGETS[op]) + 'x':>8}"
            lines.append(line)
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pyrunc", default=None, help="pyrunc launcher (default: the installed one, not a shim)")
    ap.add_argument("--runc", default=shutil.which("runc") or "runc")
    ap.add_argument("--crun", default=None, help="also time crun (it refuses hybrid-cgroup hosts)")
    ap.add_argument("--pairs", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--rss-runs", type=int, default=5, help="untimed runs per operation for peak RSS")
    ap.add_argument("--podman", metavar="IMAGE", help="also time `podman --runtime X run --rm IMAGE true`"
                    " (a local image, e.g. localhost/pyrunc-busybox from ../shared/tools/clients)")
    ap.add_argument("--json", metavar="FILE", help="write machine-readable results to FILE")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench.py: run as root")
    paths = {"pyrunc": args.pyrunc or default_pyrunc(), "runc": args.runc}
    if args.crun:
        paths["crun"] = args.crun
    for name, path in paths.items():
        if not os.access(path, os.X_OK):
            sys.exit(f"bench.py: {name} not executable: {path}")

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    root_dir = tempfile.mkdtemp(prefix="pyrunc-bench-", dir="/run")  # --root, like /run/runc
    bundle_dir = tempfile.mkdtemp(prefix="pyrunc-bench-", dir="/var/tmp")
    runtimes = [Runtime(n, p, root_dir, bundle_dir) for n, p in paths.items()]
    spawner = Spawner()
    rc = None
    try:
        oci = make_bundles(runtimes, args.runc, bundle_dir)
        floor = max(spawner(["/bin/true"])[1] for _ in range(3))
        meta = {"versions": {n: version(p) for n, p in paths.items()}, "paths": paths,
                "kernel": os.uname().release, "ociVersion": oci, "pairs": args.pairs,
                "warmup": args.warmup, "rss_runs": args.rss_runs, "rss_floor_mib": round(floor / 1024, 2),
                "python_floor_ms": interpreter_floor(paths["pyrunc"])}
        n = (args.pairs, args.warmup, args.rss_runs, spawner)
        raw = {"run": measure(runtimes, op_run, *n),
               "create+start+delete": measure(runtimes, op_create_start_delete, *n)}
        for rt in runtimes:  # one idle created container per runtime for state and list
            timed(rt, "create", "--bundle", rt.bundle, rt.new_id("idle0"))
        raw["state"] = measure(runtimes, op_state, *n)
        raw["list (1)"] = measure(runtimes, op_list, *n)
        for rt in runtimes:
            for k in range(1, 10):
                timed(rt, "create", "--bundle", rt.bundle, rt.new_id(f"idle{k}"))
        raw["list (10)"] = measure(runtimes, op_list, *n)
        for rt in runtimes:
            timed(rt, "run", "--detach", "--bundle", rt.bundle + "-busy", rt.new_id("busy"))
        raw["exec"] = measure(runtimes, op_exec, *n)
        if args.podman:
            raw["podman run --rm"] = measure(runtimes, op_podman(args.podman), *n[:2], 0, spawner)
    except KeyboardInterrupt:
        print("\ninterrupted: cleaning up", file=sys.stderr)
        rc = 130
    except BenchError as e:
        print(f"bench.py: {e}", file=sys.stderr)
        rc = 2
    finally:
        spawner.close()
        cleanup(runtimes, [root_dir, bundle_dir])
    if rc is not None:
        return rc

    results = {}
    for op, per_rt in raw.items():
        results[op] = {}
        for name, r in per_rt.items():
            results[op][name] = dict(summary(r["ns"]), max_rss_mib=round(r["rss"] / 1024, 2),
                                     parts={k: summary(v) for k, v in r["parts"].items()})
    checks = [{"target": f"{op} pyrunc/runc",
               "value": results[op]["pyrunc"]["median_ms"] / results[op]["runc"]["median_ms"], "limit": lim}
              for op, lim in TARGETS.items()]
    peak = max(results[op]["pyrunc"]["max_rss_mib"] for op in results)
    checks.append({"target": "pyrunc peak RSS MiB", "value": peak, "limit": RSS_TARGET_MIB})
    for c in checks:
        c["met"] = c["value"] <= c["limit"]

    print("\n".join(report(runtimes, results, meta)))
    print("targets: " + ", ".join(f"{c['target']} {c['value']:.2f} {'<=' if c['met'] else '>'} {c['limit']:g}"
                                  f" {'ok' if c['met'] else 'MISSED'}" for c in checks))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "results": results, "targets": checks}, f, indent=2)
    return 1 if args.check and not all(c["met"] for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
