"""AppArmor profiles and SELinux labels, as runc applies them.

- process.apparmorProfile: "exec <profile>" written to the process's
  attr/apparmor/exec (attr/exec on older kernels) just before execve, so
  the profile takes effect on exec. A host without AppArmor makes the write
  fail, as it does for runc.
- process.selinuxLabel: refused at validation when SELinux is off (runc's
  validator); otherwise written to attr/exec.
- linux.mountLabel: added as context="…" to the filesystems mounted for
  the container when SELinux is on; ignored (with a debug line) when off,
  as runc's label package does.

Every write goes through the runtime's private procfs handle, never a
path inside the container's /proc (CVE-2025-52881).
"""

import posix

from . import procfs
from .errors import ConfigError, ContainerError
from . import hostpath


def enabled(name):
    """Whether the kernel runs that LSM (AppArmor also needs its policy interface)."""
    try:
        with open("/sys/kernel/security/lsm") as f:
            active = f.read().split(",")
    except OSError:
        active = []
    if name == "apparmor":
        return "apparmor" in active and hostpath.isdir("/sys/kernel/security/apparmor")
    if name == "selinux":
        return "selinux" in active and hostpath.isdir("/sys/fs/selinux")
    return name in active


def check(spec, log):
    """Validation: what runc refuses, and what we only say in --debug."""
    proc = spec.process
    if proc.selinux_label and not enabled("selinux"):
        raise ConfigError("selinux label is specified in config, but selinux is disabled or not supported")
    if spec.linux.mount_label and not enabled("selinux"):
        log.debug("linux.mountLabel ignored: SELinux is not enabled on this host")
    if proc.apparmor_profile and not enabled("apparmor"):
        log.debug(f"process.apparmorProfile {proc.apparmor_profile!r}: AppArmor is not enabled "
                  "on this host; applying it will fail as it does with runc")


def mount_data(data, label, fstype, is_bind):
    """runc's label.FormatMountLabel for the filesystems that take a context."""
    if not label or is_bind or fstype in ("proc", "sysfs", "cgroup", "cgroup2") or not enabled("selinux"):
        return data
    ctx = f'context="{label}"'
    return f"{data},{ctx}" if data else ctx


def apply_on_exec(procfd, apparmor_profile, selinux_label):
    """Called just before execve, as root or as the user (the files are our own)."""
    pid = posix.getpid()
    if apparmor_profile:
        err = None
        for rel in (f"{pid}/attr/apparmor/exec", f"{pid}/attr/exec"):
            try:
                procfs.write(procfd, rel, f"exec {apparmor_profile}")
                err = None
                break
            except OSError as e:
                err = e
        if err is not None:
            raise ContainerError(f"apparmor failed to apply profile: {err}")
    if selinux_label:
        try:
            procfs.write(procfd, f"{pid}/attr/exec", selinux_label)
        except OSError as e:
            raise ContainerError(f"set selinux exec label {selinux_label!r}: {e}") from None
