"""Device access control: the rule model, runc's emulator, the v1 writes, the eBPF filter.

Unit tests need no kernel: parsing, runc's AllowedDevices and rule order,
runc's emulator test tables (devices_emulator_test.go), the v1 writes runc
makes, the eBPF program against runc's devicefilter_test.go listings, and
the eBPF interpreter against the emulator on a grid of requests for
hypothesis-generated rule lists.

Kernel tests (root, a devices v1 hierarchy and/or a cgroup2 mount) work only
in child cgroups they create themselves under this process's own cgroup,
and remove them.
"""

import errno
import itertools
import os
import secrets
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc.cgroups import devices as D
from pyrunc.cgroups import ebpf as E
from pyrunc.cgroups.manager import CgroupError
from pyrunc.spec import Device
from support import rmdir_cgroup

R = D.Rule
DENY_ALL = {"allow": False, "access": "rwm"}  # runc spec / podman / containerd
ALLOW_ALL = {"allow": True, "access": "rwm"}


# --- parsing ------------------------------------------------------------------------

@pytest.mark.parametrize("d, field", [
    ("a", "device rule: must be an object"),
    ({}, ".allow: is required"),
    ({"allow": "yes"}, ".allow: must be a boolean"),
    ({"allow": True, "type": "u"}, ".type: invalid cgroup device type 'u'"),
    ({"allow": True, "type": "p"}, ".type: invalid cgroup device type 'p'"),
    ({"allow": True, "type": "x"}, ".type"),
    ({"allow": True, "type": "c", "major": "1"}, ".major"),
    ({"allow": True, "type": "c", "major": -2}, ".major"),
    ({"allow": True, "type": "c", "major": True}, ".major"),
    ({"allow": True, "type": "c", "minor": 2 ** 32}, ".minor"),
    ({"allow": True, "type": "c", "minor": 1.5}, ".minor"),
    ({"allow": True, "access": "rwx"}, ".access: invalid device access 'rwx'"),
    ({"allow": True, "access": 7}, ".access"),
])
def test_parse_rule_errors(d, field):
    with pytest.raises(ValueError) as ei:
        D.parse_rule(d)
    assert field in str(ei.value)


def test_parse_rule_errors_name_the_entry():
    with pytest.raises(ValueError, match=r"linux\.resources\.devices\[1\]\.type"):
        D.rules_for_container([DENY_ALL, {"allow": True, "type": "u"}], [])


def test_parse_rule_defaults():
    assert D.parse_rule({"allow": False}) == R("a", -1, -1, "rwm", False)
    assert D.parse_rule({"allow": True, "access": ""}) == R("a", -1, -1, "rwm", True)
    r = D.parse_rule({"allow": True, "type": "c", "major": 136, "access": "wr"})
    assert (r.type, r.major, r.minor, r.access, r.allow) == ("c", 136, -1, "rw", True)
    assert D.parse_rule({"allow": True, "type": "b", "major": 8, "minor": None,
                         "access": "m"}).cgroup_string() == "b 8:* m"
    assert D.parse_rule({"allow": True, "type": "c", "major": -1, "minor": 2 ** 32 - 1,
                         "access": "mr"}).cgroup_string() == "c *:4294967295 rm"


def test_rule_is_frozen_and_hashable():
    r = R("c", 1, 3, "rwm", True)
    with pytest.raises(AttributeError):
        r.major = 2
    assert r == R("c", 1, 3, "mwr", True) and hash(r) == hash(R("c", 1, 3, "rwm", True))
    assert r != R("c", 1, 3, "rwm", False)
    assert {r, R("c", 1, 3)} == {r}
    with pytest.raises(ValueError):
        R("u", 1, 3)


# --- runc's rules for a container ------------------------------------------------------

# runc 1.1.5 specconv.AllowedDevices as CgroupString()s, in its order
RUNC_ALLOWED = ["c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm",
                "c 1:5 rwm", "c 1:9 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm"]


def test_default_allowed_is_runcs():
    assert [r.cgroup_string() for r in D.DEFAULT_ALLOWED] == RUNC_ALLOWED
    assert all(r.allow for r in D.DEFAULT_ALLOWED)


def test_rules_for_container_order():
    rules = D.rules_for_container([DENY_ALL, {"allow": True, "type": "c", "major": 4,
                                              "minor": 64, "access": "rw"}], [])
    assert rules[:2] == [R("a", -1, -1, "rwm", False), R("c", 4, 64, "rw", True)]
    assert rules[2:] == list(D.DEFAULT_ALLOWED)
    assert D.rules_for_container(None, None) == list(D.DEFAULT_ALLOWED)


def test_config_devices_replace_defaults_by_path_and_are_not_allowed():
    # runc createDevices: a linux.devices entry with a default's path drops that
    # default's rule; the config's devices themselves get no rule.
    devs = [Device(path="/dev/null", type="c", major=1, minor=3, file_mode=0o666, uid=0, gid=0),
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]
    rules = D.rules_for_container([DENY_ALL], devs)
    strs = [r.cgroup_string() for r in rules[1:]]
    assert strs == [s for s in RUNC_ALLOWED if s != "c 1:3 rwm"]
    assert not D.allowed(rules, "c", 1, 3, "rw")
    assert not D.allowed(rules, "c", 10, 229, "r")
    assert D.allowed(rules, "c", 10, 229, "m")  # runc's "mknod anything"


def test_rules_for_container_rejects_holes_in_wildcards():
    with pytest.raises(ValueError, match="cannot punch a hole in the wildcard rule 'c 1:\\* rw'"):
        D.rules_for_container([DENY_ALL, {"allow": True, "type": "c", "major": 1, "access": "rw"},
                               {"allow": False, "type": "c", "major": 1, "minor": 3,
                                "access": "r"}], [])


# --- the emulator: runc's devices_emulator_test.go tables ----------------------------------

def _emu(default_allow, *entries):
    rules = {}
    for s in entries:  # "c 1:3 rw"
        t, mm, perms = s.split()
        ma, mi = mm.split(":")
        rules[(t, -1 if ma == "*" else int(ma), -1 if mi == "*" else int(mi))] = \
            D.access_bits(perms)
    return D.Emulator(default_allow, rules)


WHITELIST_COMPLICATED = """c *:* m
b *:* m
c 1:3 rwm
c 1:5 rwm
c 1:7 rwm
c 1:8 rwm
c 1:9 rwm
c 5:0 rwm
c 5:2 rwm
c 136:* rwm
c 10:200 rwm"""


@pytest.mark.parametrize("text, expected", [
    ("a *:* rwm", _emu(True)),
    ("c 4:2 rw", _emu(False, "c 4:2 rw")),
    ("b 0:* m", _emu(False, "b 0:* m")),
    ("c *:* rwm\nc 1:1 r", _emu(False, "c *:* rwm", "c 1:1 r")),
    (WHITELIST_COMPLICATED, _emu(False, *WHITELIST_COMPLICATED.splitlines())),
    ("", _emu(False)),
    ("b 1:0", None), ("p *:* rwm", None), ("p -1:3 rwm", None), ("c foo:27 rwm", None),
    ("b 1:-4 rwm", None), ("b 1:foo rwm", None), ("b 1:7 rwk", None),
])
def test_emulator_from_list(text, expected):
    if expected is None:
        with pytest.raises(CgroupError):
            D.Emulator.from_list(text)
    else:
        assert D.Emulator.from_list(text) == expected


# (name, rule as (type, major, minor, perms, allow is "flip"/"same"), base, expected or None)
APPLY_CASES = [
    ("SwitchToOtherMode", ("a", -1, -1, "rwm", "flip"), ["c *:* rwm", "c 1:1 r"], "other-empty"),
    ("SwitchToSameModeNoop", ("a", -1, -1, "rwm", "same"), [], []),
    ("SwitchToSameMode", ("a", -1, -1, "rwm", "same"), ["c *:* rwm", "c 1:1 r"], []),
    ("RuleAdditionBasic", ("c", 42, 1337, "rm", "flip"), ["c 2:1 rwm", "b 1:5 r"],
     ["c 2:1 rwm", "b 1:5 r", "c 42:1337 rm"]),
    ("RuleAdditionBasicDuplicate", ("c", 42, 1337, "rm", "flip"), ["c 42:* rwm"],
     ["c 42:* rwm", "c 42:1337 rm"]),
    ("RuleAdditionBasicDuplicateNoop", ("c", 42, 1337, "rm", "flip"), ["c 42:1337 rm"],
     ["c 42:1337 rm"]),
    ("RuleAdditionMerge", ("b", 5, 12, "rm", "flip"), ["c 2:1 rwm", "b 5:12 rw"],
     ["c 2:1 rwm", "b 5:12 rwm"]),
    ("RuleAdditionMergeWildcard", ("b", 5, -1, "rm", "flip"), ["c 2:1 rwm", "b 5:* rw"],
     ["c 2:1 rwm", "b 5:* rwm"]),
    ("RuleAdditionMergeNoop", ("b", 5, 12, "r", "flip"), ["c 2:1 rwm", "b 5:12 rw"],
     ["c 2:1 rwm", "b 5:12 rw"]),
    ("RuleRemovalBasic", ("c", 42, 1337, "rm", "same"), ["c 42:1337 rm", "b 1:5 r"], ["b 1:5 r"]),
    ("RuleRemovalNonexistent", ("c", 4, 1, "rw", "same"), ["b 1:5 r"], ["b 1:5 r"]),
    ("RuleRemovalFull", ("c", 42, 1337, "rw", "same"), ["c 42:1337 w", "b 1:5 r"], ["b 1:5 r"]),
    ("RuleRemovalPartial", ("c", 42, 1337, "r", "same"), ["c 42:1337 rm", "b 1:5 r"],
     ["c 42:1337 m", "b 1:5 r"]),
    ("RuleRemovalWildcardPunchoutImpossible", ("c", 42, 1337, "r", "same"),
     ["c 42:* rm", "c 42:1337 r"], None),
    ("RuleRemovalWildcardPunchoutPossible", ("c", 42, 1337, "r", "same"),
     ["c 42:* wm", "c 42:1337 r"], ["c 42:* wm"]),
]


@pytest.mark.parametrize("base_allow", [False, True], ids=["whitelist", "blacklist"])
@pytest.mark.parametrize("name, rule, base, expected", APPLY_CASES, ids=[c[0] for c in APPLY_CASES])
def test_emulator_apply(base_allow, name, rule, base, expected):
    t, ma, mi, perms, which = rule
    emu = _emu(base_allow, *base)
    r = R(t, ma, mi, perms, (not base_allow) if which == "flip" else base_allow)
    if expected is None:
        with pytest.raises(CgroupError, match="cannot punch a hole"):
            emu.apply(r)
        return
    emu.apply(r)
    if expected == "other-empty":
        assert emu == _emu(not base_allow)
    else:
        assert emu == _emu(base_allow, *expected)


# (name, source entries, target entries, switch mode, expected rules as
#  (type major:minor perms, allow is "target-default"/"not-target-default"))
TRANSITION_CASES = [
    ("Noop", ["c 42:* wm"], ["c 42:* wm"], False, []),
    ("SwitchToOtherMode", ["c 1:2 rwm"], ["b 42:* wm"], True,
     [("a *:* rwm", "default"), ("b 42:* wm", "exception")]),
    ("RuleAddition", ["c 1:2 rwm"], ["c 1:2 rwm", "b 42:1337 rwm"], False,
     [("b 42:1337 rwm", "exception")]),
    ("RuleRemoval", ["c 1:2 rwm", "b 42:1337 rwm"], ["c 1:2 rwm"], False,
     [("b 42:1337 rwm", "default")]),
    ("RuleMultipleAdditionRemoval", ["c 1:2 rwm", "b 3:9 rw"], ["c 1:2 rwm"], False,
     [("b 3:9 rw", "default")]),
    ("RulePartialAddition", ["c 1:2 r"], ["c 1:2 rwm"], False, [("c 1:2 wm", "exception")]),
    ("RulePartialRemoval", ["c 1:2 rw"], ["c 1:2 w"], False, [("c 1:2 r", "default")]),
    ("RulePartialBoth", ["c 1:2 rw"], ["c 1:2 rm"], False,
     [("c 1:2 w", "default"), ("c 1:2 m", "exception")]),
]


@pytest.mark.parametrize("source_allow", [False, True], ids=["fromWhitelist", "fromBlacklist"])
@pytest.mark.parametrize("name, src, dst, switch, expected", TRANSITION_CASES,
                         ids=[c[0] for c in TRANSITION_CASES])
def test_emulator_transition(source_allow, name, src, dst, switch, expected):
    source = _emu(source_allow, *src)
    target = _emu(source_allow != switch, *dst)
    want = [(s, target.default_allow if k == "default" else not target.default_allow)
            for s, k in expected]
    if source_allow and not switch:
        # from a deny-list runc always starts over: the clear-all rule, then every exception
        want = [("a *:* rwm", target.default_allow)] + [
            (r.cgroup_string(), r.allow) for r in target.exceptions()]
    got = source.transition(target)
    assert [(r.cgroup_string(), r.allow) for r in got] == want
    for r in got:
        source.apply(r)
    assert source == target


# --- the v1 writes runc makes ---------------------------------------------------------

DEFAULT_SPEC_WRITES = [
    ("devices.deny", "a *:* rwm"),
    ("devices.allow", "b *:* m"), ("devices.allow", "c *:* m"),
    ("devices.allow", "c 1:3 rwm"), ("devices.allow", "c 1:5 rwm"),
    ("devices.allow", "c 1:7 rwm"), ("devices.allow", "c 1:8 rwm"),
    ("devices.allow", "c 1:9 rwm"), ("devices.allow", "c 5:0 rwm"),
    ("devices.allow", "c 5:2 rwm"), ("devices.allow", "c 10:200 rwm"),
    ("devices.allow", "c 136:* rwm"),
]


def test_v1_writes_runc_default_spec():
    rules = D.rules_for_container([DENY_ALL], [])
    assert D.v1_writes(rules) == DEFAULT_SPEC_WRITES
    # the same cgroup already set up: nothing to write
    listing = "\n".join(v for _, v in DEFAULT_SPEC_WRITES[1:])
    assert D.v1_writes(rules, listing) == []


def test_v1_writes_allow_all():
    rules = D.rules_for_container([ALLOW_ALL], [])
    assert D.v1_writes(rules) == [("devices.allow", "a *:* rwm")]
    assert D.allowed(rules, "b", 8, 0, "rw")
    # from an allow-list cgroup (an update), the switch is one write too
    assert D.v1_writes(rules, "c 1:3 rwm") == [("devices.allow", "a *:* rwm")]


def test_v1_writes_privileged_except_one_device():
    rules = D.rules_for_container([ALLOW_ALL, {"allow": False, "type": "b", "major": 8,
                                               "minor": 0, "access": "rwm"}], [])
    assert D.v1_writes(rules) == [("devices.allow", "a *:* rwm"), ("devices.deny", "b 8:0 rwm")]
    assert not D.allowed(rules, "b", 8, 0, "r") and D.allowed(rules, "b", 8, 1, "r")


def test_v1_writes_containerd_ctr_config():
    # containerd 1.6 `ctr run`'s list (with /dev/console 5:1), then runc's defaults
    ctr = [DENY_ALL] + [{"allow": True, "type": "c", "major": ma, "minor": mi, "access": "rwm"}
                        for ma, mi in ((1, 3), (1, 8), (1, 7), (5, 0), (1, 5), (1, 9), (5, 1))] \
        + [{"allow": True, "type": "c", "major": 136, "access": "rwm"},
           {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"}]
    rules = D.rules_for_container(ctr, [])
    want = list(DEFAULT_SPEC_WRITES)
    want.insert(9, ("devices.allow", "c 5:1 rwm"))
    assert D.v1_writes(rules) == want


def test_v1_writes_mixed_and_update():
    listing = "\n".join(v for _, v in DEFAULT_SPEC_WRITES[1:])
    rules = D.rules_for_container([DENY_ALL,
                                   {"allow": True, "type": "c", "major": 4, "access": "rw"},
                                   {"allow": False, "type": "c", "major": 1, "minor": 5,
                                    "access": "rwm"},  # AllowedDevices allow it again
                                   {"allow": True, "type": "b", "major": 7, "minor": 0,
                                    "access": "r"}], [{"path": "/dev/tty"}])
    assert D.v1_writes(rules, listing) == [
        ("devices.deny", "c 5:0 rwm"),  # /dev/tty's default dropped by linux.devices
        ("devices.allow", "c 4:* rw"), ("devices.allow", "b 7:0 r")]
    assert D.v1_writes(rules) == [("devices.deny", "a *:* rwm")] + [
        ("devices.allow", s) for s in ("b *:* m", "c *:* m", "c 1:3 rwm", "c 1:5 rwm",
                                       "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", "c 4:* rw",
                                       "c 5:2 rwm", "b 7:0 r", "c 10:200 rwm", "c 136:* rwm")]


# --- the eBPF program, against runc's devicefilter_test.go ------------------------------------

_HEAD = """LdXMemW dst: r2 src: r1 off: 0 imm: 0
And32Imm dst: r2 imm: 65535
LdXMemW dst: r3 src: r1 off: 0 imm: 0
RSh32Imm dst: r3 imm: 16
LdXMemW dst: r4 src: r1 off: 4 imm: 0
LdXMemW dst: r5 src: r1 off: 8 imm: 0
"""


def _block(t, ma=None, mi=None, acc=None, v=1):
    s = f"JNEImm dst: r2 off: -1 imm: {t}\n"
    if acc is not None:
        s += f"Mov32Reg dst: r1 src: r3\nAnd32Imm dst: r1 imm: {acc}\nJNEReg dst: r1 off: -1 src: r3\n"
    if ma is not None:
        s += f"JNEImm dst: r4 off: -1 imm: {ma}\n"
    if mi is not None:
        s += f"JNEImm dst: r5 off: -1 imm: {mi}\n"
    return s + f"Mov32Imm dst: r0 imm: {v}\nExit\n"


def _end(v):
    return f"Mov32Imm dst: r0 imm: {v}\nExit\n"


BUILTIN = (_HEAD + _block(1, acc=1) + _block(2, acc=1)
           + "".join(_block(2, ma, mi) for ma, mi in ((1, 3), (1, 5), (1, 7), (1, 8), (1, 9),
                                                       (5, 0), (5, 2), (10, 200)))
           + _block(2, 136) + _end(0))


def disasm(code):
    """cilium/ebpf's asm listing of our opcodes; jump offsets shown as runc's test has them
    (-1, unresolved); each jump is checked to land on the next block instead."""
    insns = E.decode(code)
    out = []
    for i, (op, dst, src, off, imm) in enumerate(insns):
        if op in (E.JNE_IMM, E.JNE_REG):
            nxt = next(j for j in range(i, len(insns)) if insns[j][0] == E.EXIT) + 1
            assert i + 1 + off == nxt, f"insn {i} jumps to {i + 1 + off}, not block start {nxt}"
        out.append({
            E.LDXW: f"LdXMemW dst: r{dst} src: r{src} off: {off} imm: {imm}",
            E.AND32_IMM: f"And32Imm dst: r{dst} imm: {imm}",
            E.RSH32_IMM: f"RSh32Imm dst: r{dst} imm: {imm}",
            E.JNE_IMM: f"JNEImm dst: r{dst} off: -1 imm: {imm}",
            E.JNE_REG: f"JNEReg dst: r{dst} off: -1 src: r{src}",
            E.MOV32_REG: f"Mov32Reg dst: r{dst} src: r{src}",
            E.MOV32_IMM: f"Mov32Imm dst: r{dst} imm: {imm}",
            E.EXIT: "Exit",
        }[op])
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("rules, listing", [
    ([], _HEAD + _end(0)),  # TestDeviceFilter_Nil
    (list(D.DEFAULT_ALLOWED), BUILTIN),  # TestDeviceFilter_BuiltInAllowList
    ([R("a", allow=True)], _HEAD + _end(1)),  # TestDeviceFilter_Privileged
    ([R("a", allow=True), R("b", 8, 0, "rwm", False)],  # ..._PrivilegedExceptSingleDevice
     _HEAD + _block(1, 8, 0, v=0) + _end(1)),
    ([R("b", 8, 1, "rwm", False), R("a", allow=True), R("b", 8, 2, "rwm", False)],  # _Weird
     _HEAD + _block(1, 8, 2, v=0) + _end(1)),
], ids=["Nil", "BuiltInAllowList", "Privileged", "PrivilegedExceptSingleDevice", "Weird"])
def test_program_matches_runc_devicefilter(rules, listing):
    assert disasm(E.program(rules)) == listing


def test_program_for_runc_default_spec_is_64_insns():
    code = E.program(D.rules_for_container([DENY_ALL], []))
    assert len(code) == 64 * 8 and disasm(code) == BUILTIN


def test_program_rejects_holes():
    with pytest.raises(CgroupError, match="punch a hole"):
        E.program([R("c", 1, -1, "rwm", True), R("c", 1, 3, "w", False)])


def test_interpreter_rejects_what_it_does_not_know():
    with pytest.raises(ValueError):
        E.decode(b"\x95" * 7)
    with pytest.raises(ValueError, match="unsupported opcode"):
        E.run(E.insn(0x18), "c", 1, 3, "r")  # ld_imm64
    with pytest.raises(ValueError, match="read before it was written"):
        E.run(E.insn(E.EXIT), "c", 1, 3, "r")
    with pytest.raises(ValueError, match="not the context"):
        E.run(E.insn(E.LDXW, 0, 2) + E.insn(E.EXIT), "c", 1, 3, "r")
    with pytest.raises(ValueError, match="out of bounds"):
        E.run(E.insn(E.LDXW, 0, 1, 12) + E.insn(E.EXIT), "c", 1, 3, "r")
    with pytest.raises(ValueError, match="out of the program"):
        E.run(E.insn(E.MOV32_IMM, 0, imm=0) + E.insn(E.JNE_IMM, 0, off=5, imm=1), "c", 1, 3, "r")


def test_interpreter_sign_extension_like_the_kernel():
    # JNE (64-bit) against an imm >= 2^31: the imm sign-extends, the u32 load does not,
    # so runc's filter never matches such majors (no Linux major is that large).
    code = E.program([R("a", allow=False), R("c", 2 ** 31 + 1, 3, "rwm", True)])
    assert E.run(code, "c", 2 ** 31 + 1, 3, "r") == 0
    assert D.allowed([R("c", 2 ** 31 + 1, 3, "rwm", True)], "c", 2 ** 31 + 1, 3, "r")


# --- interpreter == emulator, for many rule lists ------------------------------------------

MAJORS = (0, 1, 5, 8, 10, 136)
MINORS = (0, 2, 3, 5, 200)
ACCESSES = ("r", "w", "m", "rw", "rm", "wm", "rwm")
GRID = [(t, ma, mi, a) for t in "cb" for ma in MAJORS for mi in MINORS for a in ACCESSES]

rule_st = st.builds(R, type=st.sampled_from("acb"),
                    major=st.sampled_from((-1,) + MAJORS), minor=st.sampled_from((-1,) + MINORS),
                    access=st.sampled_from(ACCESSES), allow=st.booleans())
rules_st = st.one_of(st.lists(rule_st, max_size=10),
                     st.lists(rule_st, max_size=10).map(lambda rs: [R("a", allow=False)] + rs))


@settings(derandomize=True, database=None, max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(rules_st)
def test_ebpf_interpreter_agrees_with_emulator(rules):
    try:
        emu = D.Emulator.from_rules(rules)
    except CgroupError:
        with pytest.raises(CgroupError):
            E.program(rules)
        with pytest.raises(CgroupError):
            D.allowed(rules, "c", 1, 3, "r")
        return
    interp = E.Interpreter(E.program(rules))
    for t, ma, mi, a in GRID:
        want = emu.allows(t, ma, mi, D.access_bits(a))
        assert interp.run(t, ma, mi, a) == int(want), (rules, t, ma, mi, a)
    for t, ma, mi, a in GRID[::37]:
        assert D.allowed(rules, t, ma, mi, a) == bool(interp.run(t, ma, mi, a))


@settings(derandomize=True, database=None, max_examples=300, deadline=None)
@given(rules_st, rules_st)
def test_v1_writes_reach_the_target(before, after):
    """From the state `before` leaves (as devices.list shows it), the writes give `after`."""
    try:
        source = D.Emulator.from_rules(before)
        target = D.Emulator.from_rules(after)
    except CgroupError:
        return
    listing = "a *:* rwm" if source.default_allow else "\n".join(
        r.cgroup_string() for r in source.exceptions())
    state = D.Emulator.from_list(listing)
    for f, v in D.v1_writes(after, listing):
        t, mm, perms = (v.split() + ["rwm"])[:3]
        ma, mi = (-1 if x == "*" else int(x) for x in mm.split(":"))
        state.apply(R(t, ma, mi, perms, f == "devices.allow"))
    if target.default_allow:
        assert state.default_allow
    assert state == target


# --- the real kernel ----------------------------------------------------------------------------

def _own_hierarchy(kind):
    """(mountpoint, own cgroup path) of the v1 devices hierarchy or the cgroup2 mount."""
    from pyrunc import cgroups
    if os.geteuid() != 0:
        return None
    with open("/proc/self/mountinfo", "rb") as f:
        hs = cgroups.hierarchies(f.read())
    with open("/proc/self/cgroup", "rb") as f:
        own = cgroups.parse_proc_cgroup(f.read())
    for h in hs:
        if kind == "v1" and h.fstype == "cgroup" and "devices" in h.controllers:
            return h.mountpoint, own.get(h.key)
        if kind == "v2" and h.fstype == "cgroup2":
            return h.mountpoint, own.get("")
    return None


@pytest.fixture
def own_cgroup(request):
    """A fresh child cgroup of our own cgroup in the hierarchy `request.param`; removed after."""
    found = _own_hierarchy(request.param)
    if not found or found[1] is None:
        pytest.skip(f"no {request.param} device cgroup hierarchy here (or not root)")
    mnt, path = found
    d = os.path.join(mnt + path.rstrip("/"), f"pyrunc-test-{secrets.token_hex(4)}")
    os.mkdir(d)
    try:
        yield d
    finally:
        rmdir_cgroup(d)


def _probe(cgroup_dirs, ops):
    """Fork a child that joins `cgroup_dirs` and tries each op; ["ok" | errno name] per op.

    ops: ("open", path, flags) or ("mknod", type, major, minor)."""
    tmp = tempfile.mkdtemp(prefix="pyrunc-devtest-", dir="/var/tmp")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        try:
            os.close(r)
            for d in cgroup_dirs:
                fd = os.open(d + "/cgroup.procs", os.O_WRONLY)
                os.write(fd, b"0")
                os.close(fd)
            res = []
            for op in ops:
                try:
                    if op[0] == "open":
                        os.close(os.open(op[1], op[2]))
                    else:
                        import stat
                        node = f"{tmp}/n"
                        os.mknod(node, 0o600 | (stat.S_IFCHR if op[1] == "c" else stat.S_IFBLK),
                                 os.makedev(op[2], op[3]))
                        os.unlink(node)
                    res.append("ok")
                except OSError as e:
                    res.append(errno.errorcode.get(e.errno, str(e.errno)))
            os.write(w, " ".join(res).encode())
        finally:
            os._exit(0)
    os.close(w)
    try:
        with os.fdopen(r, "rb") as f:
            out = f.read().decode().split()
    finally:
        os.waitpid(pid, 0)
        os.rmdir(tmp)
    assert len(out) == len(ops), out
    return out


_FLAGS = {"r": os.O_RDONLY, "w": os.O_WRONLY, "rw": os.O_RDWR}
DEVS = {"/dev/null": (1, 3), "/dev/zero": (1, 5), "/dev/full": (1, 7), "/dev/urandom": (1, 9)}
OPS = [("open", p, _FLAGS[a]) for p in DEVS for a in ("r", "w", "rw")] + \
    [("mknod", "c", 1, 3), ("mknod", "c", 1, 5), ("mknod", "b", 7, 0)]


def _expect(rules, v1):
    out = []
    for op in OPS:
        if op[0] == "open":
            (ma, mi), acc = DEVS[op[1]], {v: k for k, v in _FLAGS.items()}[op[2]]
            ok = D.allowed(rules, "c", ma, mi, acc, v1=v1)
        else:
            ok = D.allowed(rules, op[1], op[2], op[3], "m", v1=v1)
        out.append("ok" if ok else "EPERM")
    return out


# null allowed, zero not; an allow-list with partial access; a deny-list with partial denies
KERNEL_CASES = {
    "null-not-zero": [R("a", allow=False), R("c", 1, 3, "rwm", True)],
    "runc-default": D.rules_for_container([DENY_ALL], []),
    "allow-list-partial": [R("a", allow=False), R("c", 1, -1, "r", True), R("c", 1, 5, "w", True),
                           R("c", -1, 3, "wm", True), R("c", 1, 7, "rw", True)],
    "deny-list-partial": [R("a", allow=True), R("c", 1, 5, "r", False), R("c", 1, 7, "w", False),
                          R("c", 1, 3, "m", False), R("b", -1, -1, "m", False)],
    "allow-all": D.rules_for_container([ALLOW_ALL], []),
}


@pytest.mark.parametrize("own_cgroup", ["v1"], indirect=True)
def test_v1_kernel_devices_list_and_update(own_cgroup):
    rules = D.rules_for_container([DENY_ALL], [])
    D.apply_v1(own_cgroup, rules)
    with open(own_cgroup + "/devices.list") as f:
        listing = f.read().splitlines()
    assert listing == [v for _, v in DEFAULT_SPEC_WRITES[1:]]
    # an update adds and removes only what changed; runc's check passes
    more = D.rules_for_container([DENY_ALL, {"allow": True, "type": "c", "major": 4, "minor": 64,
                                             "access": "rw"}], [{"path": "/dev/zero"}])
    D.apply_v1(own_cgroup, more)
    with open(own_cgroup + "/devices.list") as f:
        listing = f.read().splitlines()
    assert sorted(listing) == sorted([v for _, v in DEFAULT_SPEC_WRITES[1:] if v != "c 1:5 rwm"]
                                     + ["c 4:64 rw"])
    assert _probe([own_cgroup], [("open", "/dev/null", os.O_RDWR),
                                 ("open", "/dev/zero", os.O_RDONLY)]) == ["ok", "EPERM"]
    D.apply_v1(own_cgroup, D.rules_for_container([ALLOW_ALL], []))
    with open(own_cgroup + "/devices.list") as f:
        assert f.read().split() == ["a", "*:*", "rwm"]


@pytest.mark.parametrize("case", list(KERNEL_CASES))
@pytest.mark.parametrize("own_cgroup", ["v1"], indirect=True)
def test_v1_kernel_enforces_what_allowed_predicts(own_cgroup, case):
    rules = KERNEL_CASES[case]
    D.apply_v1(own_cgroup, rules)
    assert _probe([own_cgroup], OPS) == _expect(rules, v1=True)


@pytest.mark.parametrize("case", list(KERNEL_CASES))
@pytest.mark.parametrize("own_cgroup", ["v2"], indirect=True)
def test_v2_kernel_enforces_what_allowed_predicts(own_cgroup, case):
    rules = KERNEL_CASES[case]
    D.apply_v2(own_cgroup, rules)
    got = _probe([own_cgroup], OPS)
    assert got == _expect(rules, v1=False)
    if case == "null-not-zero":
        assert got[:3] == ["ok"] * 3 and got[3:6] == ["EPERM"] * 3


def test_v1_and_v2_differ_on_partial_denies():
    # runc's eBPF filter only denies when a deny rule covers every requested access;
    # the v1 controller denies when it covers any of them.
    rules = KERNEL_CASES["deny-list-partial"]
    assert D.allowed(rules, "c", 1, 5, "rw") and not D.allowed(rules, "c", 1, 5, "rw", v1=True)
    assert not D.allowed(rules, "c", 1, 5, "r") and not D.allowed(rules, "c", 1, 5, "r", v1=True)


def _ours_and_others(fd):
    ours, others = [], []
    for pid in E.attached(fd):
        pfd = E.prog_fd(pid)
        try:
            (ours if E.prog_info(pfd)[1] == E.PROG_NAME else others).append(pid)
        finally:
            os.close(pfd)
    return ours, others


@pytest.mark.parametrize("own_cgroup", ["v2"], indirect=True)
def test_v2_update_replaces_only_our_programs(own_cgroup):
    fd = os.open(own_cgroup, os.O_DIRECTORY | os.O_RDONLY)
    try:
        foreign = E.load(E.insn(E.MOV32_IMM, 0, imm=1) + E.insn(E.EXIT), name="someone_else")
        try:
            E.attach(fd, foreign)
        finally:
            os.close(foreign)
        rules = [R("a", allow=False), R("c", 1, 3, "rwm", True), R("c", 1, 5, "rwm", True)]
        D.apply_v2(own_cgroup, rules)
        ours1, others = _ours_and_others(fd)
        assert len(ours1) == 1 and len(others) == 1
        assert _probe([own_cgroup], [("open", "/dev/zero", os.O_RDONLY)]) == ["ok"]
        D.apply_v2(own_cgroup, rules[:2])  # update: replaced in place
        ours2, others2 = _ours_and_others(fd)
        assert len(ours2) == 1 and ours2 != ours1 and others2 == others
        assert _probe([own_cgroup], [("open", "/dev/zero", os.O_RDONLY)]) == ["EPERM"]
        # two filters of ours (someone attached one more): both go, the new one stays
        extra = E.load(E.program([R("a", allow=True)]))
        try:
            E.attach(fd, extra)
        finally:
            os.close(extra)
        assert len(_ours_and_others(fd)[0]) == 2
        D.apply_v2(own_cgroup, [R("a", allow=True)])
        ours3, others3 = _ours_and_others(fd)
        assert len(ours3) == 1 and not set(ours3) & set(ours2) and others3 == others
        assert _probe([own_cgroup], [("open", "/dev/zero", os.O_RDONLY)]) == ["ok"]
        for pid in E.attached(fd):
            pfd = E.prog_fd(pid)
            try:
                E.detach(fd, pfd)
            finally:
                os.close(pfd)
        assert E.attached(fd) == []
    finally:
        os.close(fd)


def test_load_error_names_the_step():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with pytest.raises(CgroupError, match="BPF_PROG_LOAD"):
        E.load(E.insn(E.MOV32_IMM, 0, imm=1))  # no exit: the verifier refuses it


def test_apply_errors_name_the_cgroup(tmp_path):
    rules = D.rules_for_container([DENY_ALL], [])
    with pytest.raises(CgroupError, match=str(tmp_path / "nope")):
        D.apply_v2(str(tmp_path / "nope"), rules)
    with pytest.raises(CgroupError, match=str(tmp_path / "nope")):
        D.apply_v1(str(tmp_path / "nope"), rules)
    if os.geteuid() == 0:  # not a cgroup2 directory: the query/attach fails, not skipped
        with pytest.raises(CgroupError, match=f"cgroup device filter for {tmp_path}"):
            D.apply_v2(str(tmp_path), rules)


def test_modules_stay_light():
    import subprocess
    import sys
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = (f"import sys; sys.path.insert(0, {repo!r}); "
            "import pyrunc.cgroups.devices, pyrunc.cgroups.ebpf; "
            "bad = {'ctypes', 'json', 're', 'enum', 'typing', 'dataclasses', 'collections'} "
            "& set(sys.modules); print(sorted(bad))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_grid_covers_the_named_devices():
    for t, ma, mi in (("c", 1, 3), ("c", 5, 0), ("c", 136, 0), ("c", 10, 200)):
        assert any(g[:3] == (t, ma, mi) for g in GRID)
    assert len(list(itertools.islice(GRID, 10))) == 10
