"""Build backend: setuptools, plus the lean `pyrunc` launcher.

pip writes console scripts with a bare `#!python` shebang, so the
interpreter starts with `site` — about 20 ms on the reference machine,
more than runc's whole `state`. This backend builds the wheel with
setuptools and adds a script whose shebang is the building interpreter
with `-IS` (isolated, no site) and which puts the install's
site-packages on sys.path itself. pip copies such a script unchanged.
"""

import base64
import hashlib
import os
import sys
import sysconfig
import zipfile

from setuptools import build_meta as _orig
from setuptools.build_meta import *  # noqa: F401,F403 - the PEP 517 hooks we do not wrap

LAUNCHER = '''#!{python} -IS
# pyrunc launcher, written at build time. -I -S keeps start-up lean: no
# site module, no .pth files; the packages' own directories are added here.
import gc
import sys
# A command lives for milliseconds and makes almost no reference cycles; the
# collector's passes over the modules being imported cost ~6 % of `create`.
# Commands that stay (foreground run/exec, events --interval) turn it back on.
gc.disable()
sys.path[:0] = {paths!r}
try:
    from pyrunc.cli import run
except ImportError:
    import site  # installed somewhere unexpected: fall back to the slow, general path
    from pyrunc.cli import run
run()
'''


def _launcher():
    paths = []
    for key in ("purelib", "platlib"):
        p = sysconfig.get_paths()[key]
        if p not in paths:
            paths.append(p)
    return LAUNCHER.format(python=os.path.realpath(sys.executable), paths=paths).encode()


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = _orig.build_wheel(wheel_directory, config_settings, metadata_directory)
    path = os.path.join(wheel_directory, name)
    with zipfile.ZipFile(path) as zin:
        items = [(info, zin.read(info.filename)) for info in zin.infolist()]
    dist = name.split("-")[0] + "-" + name.split("-")[1]
    script = f"{dist}.data/scripts/pyrunc"
    data = _launcher()
    tmp = path + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
        for info, content in items:
            if info.filename.endswith(".dist-info/RECORD"):
                record = content.decode().rstrip("\n").split("\n")
                record.insert(-1, _record_line(script, data))
                zout.writestr(info, "\n".join(record) + "\n")
            else:
                zout.writestr(info, content)
        sinfo = zipfile.ZipInfo(script)
        sinfo.external_attr = 0o100755 << 16
        zout.writestr(sinfo, data)
    os.replace(tmp, path)
    return name
