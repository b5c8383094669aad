"""cgroup discovery shared by the drivers and by the container's cgroupfs mount.

Only parsing lives here: which hierarchies are mounted where, and where a
process sits in each. Hierarchies that /proc/<pid>/cgroup lists but that
are mounted nowhere (hugetlb bound to v1 on a hybrid host) are tolerated:
they simply have no mount point.
"""


class Hierarchy:
    __slots__ = ("mountpoint", "root", "fstype", "controllers")

    def __init__(self, mountpoint, root, fstype, controllers):
        self.mountpoint = mountpoint
        self.root = root
        self.fstype = fstype
        self.controllers = controllers  # tuple, e.g. ("cpu", "cpuacct") or ("name=systemd",)

    @property
    def key(self):
        return ",".join(sorted(self.controllers))

    def __repr__(self):
        return f"Hierarchy({self.mountpoint!r}, {self.fstype}, {self.controllers})"


def _unescape(s):
    # mountinfo escapes space, tab, newline and backslash as \ooo
    if "\\" not in s:
        return s
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) + 0 and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def parse_mountinfo(data):
    """[(mount_id, parent_id, root, mountpoint, mount_options, fstype, source, super_options)]"""
    out = []
    for line in data.decode(errors="replace").splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        f = left.split()
        r = right.split()
        if len(f) < 6 or len(r) < 3:
            continue
        out.append((int(f[0]), int(f[1]), _unescape(f[3]), _unescape(f[4]), f[5], r[0],
                    _unescape(r[1]), r[2]))
    return out


def hierarchies(mountinfo):
    """The cgroup hierarchies mounted in a mount namespace, first mount of each wins."""
    seen = {}
    for _mid, _pid, root, mnt, _mopts, fstype, _src, sopts in parse_mountinfo(mountinfo):
        if fstype == "cgroup":
            ctrls = tuple(o for o in sopts.split(",") if o not in ("rw", "ro") and not o.startswith("xattr")
                          and o not in ("clone_children", "noprefix", "cpuset_v2_mode")
                          and not o.startswith("release_agent="))
        elif fstype == "cgroup2":
            ctrls = ()
        else:
            continue
        h = Hierarchy(mnt, root, fstype, ctrls)
        seen.setdefault((fstype, h.key), h)
    return list(seen.values())


def parse_proc_cgroup(data):
    """{controllers key ('' for v2): path} from /proc/<pid>/cgroup."""
    out = {}
    for line in data.decode(errors="replace").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, ctrls, path = parts
        out[",".join(sorted(c for c in ctrls.split(",") if c))] = path
    return out


def is_v2_only(hs):
    return bool(hs) and all(h.fstype == "cgroup2" for h in hs)
