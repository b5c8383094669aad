"""hostpath: posixpath's semantics for str paths, without importing os (unit tests)."""

import os
import posixpath
import subprocess
import sys
import sysconfig

import pytest

from support import REPO

from pyrunc import hostpath

PATHS = ["", ".", "/", "//", "///", "a/b/../c", "/a/./b//c/", "../x", "/..", "a/..", "//x/y", "rel/path",
         "/a/b/", "a//b", "./a", "a/./", "/../../a", "a/../../b"]


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "f").write_text("")
    os.symlink("../a", tmp_path / "a" / "b" / "up")
    os.symlink(tmp_path / "a", tmp_path / "abs")
    os.symlink("loop2", tmp_path / "loop1")
    os.symlink("loop1", tmp_path / "loop2")
    os.symlink("missing/x", tmp_path / "dangling")
    return tmp_path


@pytest.mark.parametrize("p", PATHS)
def test_pure_functions_match_posixpath(p):
    for f in ("normpath", "dirname", "basename", "split"):
        assert getattr(hostpath, f)(p) == getattr(posixpath, f)(p), (f, p)
    assert hostpath.abspath(p or ".") == posixpath.abspath(p or ".")


@pytest.mark.parametrize("parts", [("a", "b"), ("/a", "/b", "c"), ("a/", "b"), ("", "x"), ("a", ""), ("/",)])
def test_join_matches_posixpath(parts):
    assert hostpath.join(*parts) == posixpath.join(*parts)


@pytest.mark.parametrize("rel", ["a/b/up/b/up", "abs/b", "loop1/x", "missing/../a", "abs/../f", "a/b/up/..",
                                 "dangling", "dangling/y", "f/x", "."])
def test_filesystem_functions_match_posixpath(tree, rel):
    p = str(tree / rel)
    for f in ("realpath", "exists", "isdir", "isfile"):
        assert getattr(hostpath, f)(p) == getattr(posixpath, f)(p), (f, rel)


def test_create_path_does_not_import_os():
    """The reason hostpath exists: os (collections.abc, posixpath) costs ~2.5 ms per command."""
    paths = [str(REPO)] + sorted({sysconfig.get_paths()[k] for k in ("purelib", "platlib")})
    code = (f"import sys; sys.path[:0] = {paths!r}\n"
            "assert 'os' not in sys.modules\n"
            "from pyrunc import cli, parent, container, setns\n"
            "from pyrunc.cgroups import fs1, fs2, devices\n"
            "print('os' in sys.modules)")
    # -I -S as the launcher: `site` would import os itself
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
