"""The container's filesystem: root, mounts, /dev, masked/readonly paths, cgroupfs.

Every check is made from inside a real container: a foreground `run` of
`sh -c` that prints what the container sees (/proc/self/mountinfo, stat,
the result of writing a file). Host-side effects (files created outside
the rootfs, mounts left on the host) are checked after the run.
"""

import contextlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from support import TEST_TMP, mounts_under

# --- helpers -----------------------------------------------------------------


@pytest.fixture
def hostdir():
    """A scratch host directory under the test tree (not in any bundle)."""
    d = Path(tempfile.mkdtemp(prefix="host-", dir=TEST_TMP))
    yield d
    assert not mounts_under(d), f"mounts left under {d}"
    shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def host_tmpfs(path, shared=False):
    """A tmpfs mounted on the host for the duration of a test (ours: we unmount it)."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "pyrunc-test", str(path)], check=True)
    try:
        if shared:
            subprocess.run(["mount", "--make-shared", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def sh_bundle(make_bundle, script, **overrides):
    return make_bundle(["sh", "-c", script], **overrides)


def run(runtime, b, *flags, cid="rootfs", cwd=None):
    return runtime("run", *flags, "--bundle", b, cid, cwd=cwd, timeout=30)


def run_ok(runtime, b, *flags, **kw):
    p = run(runtime, b, *flags, **kw)
    assert p.returncode == 0, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p


def refused(runtime, b, *flags):
    """A run that must fail cleanly: error, and no container, state or mount left."""
    p = run(runtime, b, *flags)
    assert p.returncode != 0, f"expected a failure, got exit 0: {p.stdout}"
    assert runtime.ids() == []
    assert os.listdir(runtime.root) == []
    assert mounts_under(b.path) == []
    return p


def add_mount(b, dest, mtype="tmpfs", source=None, options=None):
    m = {"destination": dest, "type": mtype, "source": source if source is not None else mtype}
    if options is not None:
        m["options"] = list(options)
    b.config["mounts"].append(m)
    return m


def parse_mountinfo(text):
    out = []
    for line in text.splitlines():
        f = line.split()
        if len(f) < 10 or "-" not in f[6:]:
            continue
        sep = f.index("-", 6)
        out.append({
            "id": int(f[0]), "parent": int(f[1]), "root": f[3], "mp": f[4],
            "opts": set(f[5].split(",")), "optional": f[6:sep], "fstype": f[sep + 1],
            "source": f[sep + 2], "sopts": set(f[sep + 3].split(",")),
        })
    return out


def top_mount(info, mp):
    """The visible (last attached) mount at a mount point."""
    hits = [m for m in info if m["mp"] == mp]
    assert hits, f"no mount at {mp}: {[m['mp'] for m in info]}"
    return hits[-1]


MOUNTINFO = "cat /proc/self/mountinfo; echo ===; "


def split_mountinfo(stdout):
    info, _, rest = stdout.partition("===\n")
    return parse_mountinfo(info), rest


EROFS = "Read-only file system"


# --- root --------------------------------------------------------------------


def test_root_readonly_true_refuses_writes(runtime, make_bundle):
    b = sh_bundle(make_bundle, "touch /newfile 2>&1; echo rc=$?")
    p = run_ok(runtime, b)
    assert EROFS in p.stdout and "rc=1" in p.stdout
    assert not (b.rootfs / "newfile").exists()


def test_root_readonly_false_allows_writes(runtime, make_bundle):
    b = sh_bundle(make_bundle, "echo data > /newfile && echo rc=$?")
    b.config["root"]["readonly"] = False
    b.write()
    p = run_ok(runtime, b)
    assert "rc=0" in p.stdout
    assert (b.rootfs / "newfile").read_text() == "data\n"


def test_root_path_dot_bundle_is_rootfs(runtime, make_bundle):
    b = sh_bundle(make_bundle, "cat /config.json >/dev/null && echo has-config; ls /bin/busybox")
    cfg = b.config
    cfg["root"]["path"] = "."
    (b.rootfs / "config.json").write_text(json.dumps(cfg))
    p = run_ok(runtime, str(b.rootfs))
    assert "has-config" in p.stdout and "/bin/busybox" in p.stdout


def test_root_path_relative_resolves_against_bundle_not_cwd(runtime, make_bundle):
    b = sh_bundle(make_bundle, "cat /marker")
    (b.path / "images").mkdir()
    b.rootfs.rename(b.path / "images" / "img")
    (b.path / "images" / "img" / "marker").write_text("relative-root\n")
    b.config["root"]["path"] = "images/img"
    b.write()
    p = run_ok(runtime, b, cwd="/")
    assert p.stdout == "relative-root\n"


def test_root_path_absolute(runtime, make_bundle):
    other = make_bundle()
    (other.rootfs / "marker").write_text("absolute-root\n")
    b = sh_bundle(make_bundle, "cat /marker")
    shutil.rmtree(b.rootfs)
    b.config["root"]["path"] = str(other.rootfs)
    b.write()
    p = run_ok(runtime, b, cwd="/")
    assert p.stdout == "absolute-root\n"


def test_missing_rootfs_is_a_clean_error(runtime, make_bundle):
    b = make_bundle(["true"])
    b.config["root"]["path"] = "no-such-rootfs"
    b.write()
    p = refused(runtime, b)
    assert "no-such-rootfs" in p.stderr
    assert "no such file or directory" in p.stderr.lower()
    assert not (b.path / "no-such-rootfs").exists()


def test_rootfs_symlink_refused(runtime, make_bundle):
    b = make_bundle(["true"])
    os.symlink("rootfs", b.path / "link")
    b.config["root"]["path"] = "link"
    b.write()
    p = refused(runtime, b)
    # runc: "invalid rootfs: not an absolute path, or a symlink"
    assert "symlink" in p.stderr


# --- mounts: order and options -------------------------------------------------


def test_mounts_applied_in_order(runtime, make_bundle, hostdir):
    (hostdir / "data").mkdir()
    (hostdir / "data" / "f").write_text("bound\n")
    b = sh_bundle(make_bundle, MOUNTINFO + "cat /mnt/a/b/c/f")
    add_mount(b, "/mnt/a", options=["size=1m"])
    add_mount(b, "/mnt/a/b", options=["size=1m"])          # made inside the first tmpfs
    add_mount(b, "/mnt/a/b/c", "bind", str(hostdir / "data"), ["bind"])
    b.write()
    p = run_ok(runtime, b)
    info, rest = split_mountinfo(p.stdout)
    a, ab, abc = (top_mount(info, mp) for mp in ("/mnt/a", "/mnt/a/b", "/mnt/a/b/c"))
    assert ab["parent"] == a["id"] and abc["parent"] == ab["id"]
    assert rest == "bound\n"
    # the nested mount points were created inside the earlier tmpfs, not in the image
    assert (b.rootfs / "mnt" / "a").is_dir()
    assert not (b.rootfs / "mnt" / "a" / "b").exists()


@pytest.mark.parametrize("opt", ["ro", "nosuid", "nodev", "noexec"])
def test_mount_flag_option(runtime, make_bundle, opt):
    script = MOUNTINFO + {
        "ro": "touch /m/x 2>&1; echo rc=$?",
        "noexec": "cp /bin/busybox /m/bb && /m/bb true 2>&1; echo rc=$?",
        "nosuid": "true", "nodev": "true",
    }[opt]
    b = sh_bundle(make_bundle, script)
    add_mount(b, "/m", options=[opt, "size=4m"])
    add_mount(b, "/plain", options=["size=1m"])
    b.write()
    info, rest = split_mountinfo(run_ok(runtime, b).stdout)
    assert opt in top_mount(info, "/m")["opts"]
    assert opt not in top_mount(info, "/plain")["opts"]
    if opt == "ro":
        assert EROFS in rest and "rc=1" in rest
    if opt == "noexec":
        assert "Permission denied" in rest and "rc=126" in rest


@pytest.mark.parametrize("opt,shown,absent", [
    ("relatime", "relatime", "noatime"),
    ("noatime", "noatime", "relatime"),
    ("strictatime", None, ("relatime", "noatime")),
])
def test_mount_atime_option(runtime, make_bundle, opt, shown, absent):
    b = sh_bundle(make_bundle, MOUNTINFO)
    add_mount(b, "/m", options=[opt, "size=1m"])
    b.write()
    info, _ = split_mountinfo(run_ok(runtime, b).stdout)
    opts = top_mount(info, "/m")["opts"]
    if shown:
        assert shown in opts
    for a in (absent if isinstance(absent, tuple) else (absent,)):
        assert a not in opts, opts


def test_mount_sync_option(runtime, make_bundle):
    b = sh_bundle(make_bundle, MOUNTINFO)
    add_mount(b, "/m", options=["sync", "size=1m"])
    add_mount(b, "/plain", options=["size=1m"])
    b.write()
    info, _ = split_mountinfo(run_ok(runtime, b).stdout)
    assert "sync" in top_mount(info, "/m")["sopts"]
    assert "sync" not in top_mount(info, "/plain")["sopts"]


def test_tmpfs_mode_and_size(runtime, make_bundle):
    b = sh_bundle(make_bundle, MOUNTINFO + "stat -c %a /m")
    add_mount(b, "/m", options=["mode=0710", "size=3m"])
    b.write()
    info, rest = split_mountinfo(run_ok(runtime, b).stdout)
    m = top_mount(info, "/m")
    assert m["fstype"] == "tmpfs"
    assert "size=3072k" in m["sopts"] and "mode=710" in m["sopts"]
    assert rest.strip() == "710"


# --- mounts: binds -------------------------------------------------------------


def test_bind_host_directory(runtime, make_bundle, hostdir):
    (hostdir / "hello").write_text("from host\n")
    b = sh_bundle(make_bundle, "cat /data/hello && echo from container > /data/back")
    add_mount(b, "/data", "bind", str(hostdir), ["bind"])
    b.write()
    p = run_ok(runtime, b)
    assert p.stdout == "from host\n"
    assert (hostdir / "back").read_text() == "from container\n"


def test_rbind_carries_submounts_bind_does_not(runtime, make_bundle, hostdir):
    src = hostdir / "src"
    (src / "sub").mkdir(parents=True)
    with host_tmpfs(src / "sub") as sub:
        (sub / "inner").write_text("in submount\n")
        b = sh_bundle(make_bundle, "cat /r/sub/inner; echo ===; ls -A /nb/sub")
        add_mount(b, "/r", "bind", str(src), ["rbind"])
        add_mount(b, "/nb", "bind", str(src), ["bind"])
        b.write()
        p = run_ok(runtime, b)
    recursive, _, plain = p.stdout.partition("===\n")
    assert recursive == "in submount\n"
    assert plain == ""


def test_bind_single_file(runtime, make_bundle, hostdir):
    (hostdir / "f.conf").write_text("file content\n")
    b = sh_bundle(make_bundle, "test -f /etc/app/my.conf && cat /etc/app/my.conf")
    add_mount(b, "/etc/app/my.conf", "bind", str(hostdir / "f.conf"), ["bind", "ro"])
    b.write()
    p = run_ok(runtime, b)
    assert p.stdout == "file content\n"
    assert (b.rootfs / "etc" / "app" / "my.conf").is_file()


def test_bind_readonly(runtime, make_bundle, hostdir):
    (hostdir / "keep").write_text("x")
    b = sh_bundle(make_bundle, MOUNTINFO + "cat /ro/keep; touch /ro/new 2>&1; echo rc=$?")
    add_mount(b, "/ro", "bind", str(hostdir), ["rbind", "ro"])
    b.write()
    info, rest = split_mountinfo(run_ok(runtime, b).stdout)
    assert "ro" in top_mount(info, "/ro")["opts"]
    assert rest.startswith("x") and EROFS in rest and "rc=1" in rest
    assert sorted(os.listdir(hostdir)) == ["keep"]


def test_type_bind_without_bind_option(runtime, make_bundle, hostdir):
    (hostdir / "hello").write_text("typed bind\n")
    b = sh_bundle(make_bundle, "cat /tb/hello")
    b.config["mounts"].append({"destination": "/tb", "type": "bind", "source": str(hostdir)})
    b.write()
    assert run_ok(runtime, b).stdout == "typed bind\n"


def test_relative_bind_source_is_relative_to_bundle(runtime, make_bundle):
    b = sh_bundle(make_bundle, "cat /rel/hello")
    (b.path / "shared-data").mkdir()
    (b.path / "shared-data" / "hello").write_text("bundle relative\n")
    add_mount(b, "/rel", "bind", "shared-data", ["rbind"])
    b.write()
    assert run_ok(runtime, b, cwd="/").stdout == "bundle relative\n"


@pytest.mark.parametrize("prop", ["rprivate", "rslave", "rshared"])
def test_bind_propagation(runtime, make_bundle, hostdir, prop):
    with host_tmpfs(hostdir / "peer", shared=True) as peer:
        host = parse_mountinfo(Path("/proc/self/mountinfo").read_text())
        host_group = [f for f in top_mount(host, str(peer))["optional"] if f.startswith("shared:")]
        assert host_group, "setup: the host tmpfs must be shared"
        b = sh_bundle(make_bundle, MOUNTINFO)
        add_mount(b, "/p", "bind", str(peer), ["rbind", prop])
        b.write()
        info, _ = split_mountinfo(run_ok(runtime, b).stdout)
    fields = top_mount(info, "/p")["optional"]
    if prop == "rprivate":
        assert fields == []
    elif prop == "rslave":
        # a slave of the host's peer group, not itself shared
        assert f"master:{host_group[0].split(':')[1]}" in fields
        assert not any(f.startswith("shared:") for f in fields)
    else:
        assert any(f.startswith("shared:") for f in fields)


def test_rro_makes_submounts_readonly(runtime, make_bundle, hostdir):
    src = hostdir / "src"
    (src / "sub").mkdir(parents=True)
    with host_tmpfs(src / "sub"):
        b = sh_bundle(make_bundle, MOUNTINFO + "touch /rr/top 2>&1; echo rc=$?; touch /rr/sub/low 2>&1; echo rc=$?")
        add_mount(b, "/rr", "bind", str(src), ["rbind", "rro"])
        b.write()
        info, rest = split_mountinfo(run_ok(runtime, b).stdout)
        assert os.listdir(src / "sub") == []
    assert "ro" in top_mount(info, "/rr")["opts"]
    assert "ro" in top_mount(info, "/rr/sub")["opts"]
    assert rest.count(EROFS) == 2 and rest.count("rc=1") == 2, rest
    assert os.listdir(src) == ["sub"]


# --- mounts: destinations ----------------------------------------------------


def test_tmpcopyup_keeps_image_files(runtime, make_bundle):
    b = sh_bundle(make_bundle, MOUNTINFO + "grep ^root: /etc/passwd && echo new > /etc/added && echo wrote")
    add_mount(b, "/etc", options=["tmpcopyup", "size=4m"])
    b.write()
    info, rest = split_mountinfo(run_ok(runtime, b).stdout)
    assert top_mount(info, "/etc")["fstype"] == "tmpfs"
    assert rest == "root:x:0:0:root:/root:/bin/sh\nwrote\n"
    assert not (b.rootfs / "etc" / "added").exists()


def test_missing_destination_is_created(runtime, make_bundle):
    b = sh_bundle(make_bundle, MOUNTINFO + "test -d /not/there/yet && echo isdir")
    add_mount(b, "/not/there/yet", options=["size=1m"])
    b.write()
    info, rest = split_mountinfo(run_ok(runtime, b).stdout)
    assert top_mount(info, "/not/there/yet")["fstype"] == "tmpfs"
    assert rest == "isdir\n"
    assert (b.rootfs / "not" / "there" / "yet").is_dir()


@pytest.mark.parametrize("kind", ["absolute", "relative", "absolute-dangling"])
def test_symlink_destination_resolves_inside_rootfs(runtime, make_bundle, hostdir, kind):
    outside = hostdir / "outside"
    outside.mkdir()
    b = sh_bundle(make_bundle, MOUNTINFO + "echo x > /evil/probe && echo wrote")
    rel = str(outside).lstrip("/")
    if kind == "relative":
        target = "../" * 8 + rel
    else:
        target = str(outside)
    os.symlink(target, b.rootfs / "evil")
    b_inside = b.rootfs / rel
    if kind != "absolute-dangling":
        b_inside.mkdir(parents=True)
    add_mount(b, "/evil", options=["size=1m"])
    b.write()
    host_before = Path("/proc/self/mountinfo").read_text()
    p = run_ok(runtime, b)
    info, rest = split_mountinfo(p.stdout)
    # the tmpfs sits on the rootfs' own copy of the path, as seen in the container
    assert top_mount(info, str(outside))["fstype"] == "tmpfs"
    assert rest == "wrote\n"
    assert os.listdir(outside) == []
    assert b_inside.is_dir()
    host_after = Path("/proc/self/mountinfo").read_text()

    def ours(text):  # clients may mount elsewhere on the host meanwhile
        return sorted(mp for mp in (l.split()[4] for l in text.splitlines()) if mp.startswith(str(TEST_TMP)))
    assert ours(host_after) == ours(host_before)


def test_dotdot_in_destination_stays_inside_rootfs(runtime, make_bundle, hostdir):
    rel = str(hostdir).lstrip("/")
    b = sh_bundle(make_bundle, MOUNTINFO)
    add_mount(b, "/tmp/../../../../../" + rel + "/dotdot", options=["size=1m"])
    b.write()
    info, _ = split_mountinfo(run_ok(runtime, b).stdout)
    assert top_mount(info, str(hostdir / "dotdot"))["fstype"] == "tmpfs"
    assert not (hostdir / "dotdot").exists()
    assert (b.rootfs / rel / "dotdot").is_dir()


def test_destination_inside_proc_refused(runtime, make_bundle):
    b = make_bundle(["true"])
    add_mount(b, "/proc/sys/kernel", options=["size=1m"])
    b.write()
    p = refused(runtime, b)
    assert "/proc" in p.stderr


def test_destination_through_symlink_into_proc_refused(runtime, make_bundle):
    b = make_bundle(["true"])
    os.symlink("/proc", b.rootfs / "pp")
    add_mount(b, "/pp/sys", options=["size=1m"])
    b.write()
    p = refused(runtime, b)
    assert "proc" in p.stderr


def test_bind_over_allowed_proc_file(runtime, make_bundle, hostdir):
    # runc's allow-list (lxcfs binds over /proc/uptime and friends)
    (hostdir / "uptime").write_text("12345.67 0.00\n")
    b = sh_bundle(make_bundle, "cat /proc/uptime")
    add_mount(b, "/proc/uptime", "bind", str(hostdir / "uptime"), ["bind", "ro"])
    b.write()
    assert run_ok(runtime, b).stdout == "12345.67 0.00\n"


def test_image_proc_symlink_refused(runtime, make_bundle):
    b = make_bundle(["true"])
    (b.rootfs / "proc").rmdir()
    os.symlink("tmp", b.rootfs / "proc")
    p = refused(runtime, b)
    assert "proc" in p.stderr
    assert os.listdir(b.rootfs / "tmp") == []


def test_proc_on_non_directory_refused(runtime, make_bundle):
    fstype = "proc"
    b = make_bundle(["true"])
    (b.rootfs / "notadir").write_text("")
    add_mount(b, "/notadir", fstype)
    b.write()
    p = refused(runtime, b)
    assert "notadir" in p.stderr or "directory" in p.stderr


def test_proc_on_symlink_destination_refused(runtime, make_bundle):
    b = make_bundle(["true"])
    os.symlink("/tmp", b.rootfs / "proc2")
    add_mount(b, "/proc2", "proc")
    b.write()
    refused(runtime, b)


# --- /dev --------------------------------------------------------------------

DEFAULT_DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8),
                   "urandom": (1, 9), "tty": (5, 0)}


def _stat_lines(text):
    """name -> (mode int, major, minor, uid, gid) from `stat -c '%n %f %t %T %u %g'`."""
    out = {}
    for line in text.splitlines():
        n, f, t, T, u, g = line.split()
        out[n] = (int(f, 16), int(t, 16), int(T, 16), int(u), int(g))
    return out


STAT = "stat -c '%n %f %t %T %u %g' "


def test_default_devices(runtime, make_bundle):
    b = sh_bundle(make_bundle, STAT + " ".join(f"/dev/{d}" for d in DEFAULT_DEVICES))
    got = _stat_lines(run_ok(runtime, b).stdout)
    for name, (ma, mi) in DEFAULT_DEVICES.items():
        mode, gma, gmi, uid, gid = got[f"/dev/{name}"]
        assert stat.S_ISCHR(mode), name
        assert (gma, gmi) == (ma, mi), name
        assert stat.S_IMODE(mode) == 0o666, (name, oct(mode))
        assert (uid, gid) == (0, 0), name


def test_dev_symlinks_ptmx_pts_shm(runtime, make_bundle):
    b = sh_bundle(make_bundle, MOUNTINFO +
                  "for l in fd stdin stdout stderr ptmx; do echo $l=$(readlink /dev/$l); done")
    info, rest = split_mountinfo(run_ok(runtime, b).stdout)
    links = dict(line.split("=", 1) for line in rest.splitlines())
    assert links == {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
                     "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"}
    assert top_mount(info, "/dev/pts")["fstype"] == "devpts"
    assert top_mount(info, "/dev/shm")["fstype"] == "tmpfs"


def test_config_devices(runtime, make_bundle):
    b = sh_bundle(make_bundle, STAT + "/dev/mydev /dev/sub/fifo")
    b.config["linux"]["devices"] = [
        {"path": "/dev/mydev", "type": "c", "major": 1, "minor": 5, "fileMode": 0o640, "uid": 1000, "gid": 1001},
        {"path": "/dev/sub/fifo", "type": "p", "fileMode": 0o600},
    ]
    b.write()
    got = _stat_lines(run_ok(runtime, b).stdout)
    mode, ma, mi, uid, gid = got["/dev/mydev"]
    assert stat.S_ISCHR(mode) and (ma, mi) == (1, 5)
    assert stat.S_IMODE(mode) == 0o640 and (uid, gid) == (1000, 1001)
    mode, _, _, uid, gid = got["/dev/sub/fifo"]
    assert stat.S_ISFIFO(mode) and stat.S_IMODE(mode) == 0o600 and (uid, gid) == (0, 0)


def test_device_outside_dev_refused(runtime, make_bundle):
    b = make_bundle(["true"])
    b.config["linux"]["devices"] = [{"path": "/tmp/null", "type": "c", "major": 1, "minor": 3}]
    b.write()
    refused(runtime, b)
    assert not (b.rootfs / "tmp" / "null").exists()


def test_dev_bind_mounted_from_host_skips_device_setup(runtime, make_bundle, hostdir):
    (hostdir / "marker").write_text("")
    os.mknod(hostdir / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))  # runtimes use /dev/null
    b = sh_bundle(make_bundle, "ls -A /dev")
    b.config["mounts"] = [m for m in b.config["mounts"] if not m["destination"].startswith("/dev")]
    add_mount(b, "/dev", "bind", str(hostdir), ["rbind"])
    b.write()
    # no default nodes, no /dev/fd & co. symlinks, no /dev/ptmx
    assert sorted(run_ok(runtime, b).stdout.split()) == ["marker", "null"]
    assert sorted(os.listdir(hostdir)) == ["marker", "null"]


# --- maskedPaths / readonlyPaths ---------------------------------------------


def test_masked_file_reads_empty(runtime, make_bundle):
    b = sh_bundle(make_bundle, "cat /secret.txt; echo rc=$?; " + STAT + "/secret.txt")
    (b.rootfs / "secret.txt").write_text("top secret\n")
    b.config["linux"]["maskedPaths"] = ["/secret.txt"]
    b.write()
    out = run_ok(runtime, b).stdout
    assert out.startswith("rc=0\n"), out
    assert "top secret" not in out
    mode, ma, mi, _, _ = _stat_lines(out.split("\n", 1)[1])["/secret.txt"]
    assert stat.S_ISCHR(mode) and (ma, mi) == (1, 3)  # the null device over it


def test_masked_directory_is_empty_readonly_tmpfs(runtime, make_bundle):
    b = sh_bundle(make_bundle, MOUNTINFO + "ls -A /secrets; touch /secrets/x 2>&1; echo rc=$?")
    (b.rootfs / "secrets").mkdir()
    (b.rootfs / "secrets" / "key").write_text("k")
    b.config["root"]["readonly"] = False
    b.config["linux"]["maskedPaths"] = ["/secrets"]
    b.write()
    info, rest = split_mountinfo(run_ok(runtime, b).stdout)
    m = top_mount(info, "/secrets")
    assert m["fstype"] == "tmpfs" and "ro" in m["opts"]
    assert "key" not in rest
    assert EROFS in rest and rest.endswith("rc=1\n")
    assert os.listdir(b.rootfs / "secrets") == ["key"]


def test_missing_masked_and_readonly_paths_are_skipped(runtime, make_bundle):
    b = sh_bundle(make_bundle, "test -e /nope || echo absent")
    b.config["linux"]["maskedPaths"] = ["/nope", "/no/such/dir"]
    b.config["linux"]["readonlyPaths"] = ["/nope2"]
    b.write()
    assert run_ok(runtime, b).stdout == "absent\n"
    assert not (b.rootfs / "nope").exists()


def test_readonly_paths(runtime, make_bundle):
    b = sh_bundle(make_bundle, "touch /rodir/x 2>&1; echo rc=$?; touch /rwfile && echo rw-ok")
    (b.rootfs / "rodir").mkdir()
    b.config["root"]["readonly"] = False
    b.config["linux"]["readonlyPaths"] = ["/rodir"]
    b.write()
    out = run_ok(runtime, b).stdout
    assert EROFS in out and "rc=1" in out and "rw-ok" in out
    assert os.listdir(b.rootfs / "rodir") == []


def test_default_readonly_proc_sys(runtime, make_bundle):
    # a sysctl of the container's own network namespace: harmless even if writable
    b = sh_bundle(make_bundle, "(echo 0 > /proc/sys/net/ipv4/ip_forward) 2>&1; echo rc=$?")
    out = run_ok(runtime, b).stdout
    assert EROFS in out and "rc=1" in out


# --- cgroupfs ----------------------------------------------------------------


@pytest.mark.parametrize("cgroupns", [False, True], ids=["host-cgroupns", "cgroupns"])
def test_cgroup_mount_readonly(runtime, make_bundle, cgroupns):
    # never write into a hierarchy: only the tmpfs holding them is probed
    b = sh_bundle(make_bundle, MOUNTINFO + "touch /sys/fs/cgroup/probe 2>&1; echo rc=$?; "
                  "test -d /sys/fs/cgroup/memory && echo has-memory; echo ===; cat /proc/self/cgroup")
    if cgroupns:
        b.config["linux"]["namespaces"].append({"type": "cgroup"})
    b.write()
    info, rest = split_mountinfo(run_ok(runtime, b).stdout)
    probe, _, cgroup = rest.partition("===\n")
    assert "rc=1" in probe and "has-memory" in probe
    top = top_mount(info, "/sys/fs/cgroup")
    assert "ro" in top["opts"] | top["sopts"]
    mem = top_mount(info, "/sys/fs/cgroup/memory")
    assert mem["fstype"] == "cgroup" and "ro" in mem["opts"]
    hierarchies = [m for m in info if m["mp"].startswith("/sys/fs/cgroup/")]
    assert hierarchies and all("ro" in m["opts"] for m in hierarchies), hierarchies
    if cgroupns:
        assert mem["root"] == "/"
        assert all(line.endswith(":/") for line in cgroup.splitlines()), cgroup


# --- --no-pivot --------------------------------------------------------------


def test_no_pivot(runtime, make_bundle):
    b = sh_bundle(make_bundle, "cat /marker; test -x /bin/busybox && echo has-bb; test -e " + str(TEST_TMP) + " || echo no-host")
    (b.rootfs / "marker").write_text("no-pivot-root\n")
    p = run_ok(runtime, b, "--no-pivot")
    assert p.stdout == "no-pivot-root\nhas-bb\nno-host\n"


@pytest.mark.parametrize("prop", ["unbindable", "private", "slave", "shared"])
def test_rootfs_propagation_applies_to_the_new_root(runtime, make_bundle, prop):
    """rootfsPropagation is the new root's, set after pivot_root (an unbindable host
    tree could not be cloned into the container: runtime-tools linux_rootfs_propagation)."""
    b = make_bundle(["awk", '$5 == "/"', "/proc/self/mountinfo"])
    b.config["linux"]["rootfsPropagation"] = prop
    b.write()
    p = run_ok(runtime, b)
    fields = p.stdout.split()
    optional = fields[6:fields.index("-")]
    if prop == "unbindable":
        assert "unbindable" in optional, p.stdout
    elif prop == "shared":
        assert any(o.startswith("shared:") for o in optional), p.stdout
    else:  # a copy that was never shared has no peer to be a slave of: private either way
        assert not any(o.startswith("shared:") for o in optional), p.stdout
