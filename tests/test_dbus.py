"""pyrunc.cgroups.dbus marshalling, and what the systemd driver derives from a
config, without systemd: pure unit tests, run anywhere.

The expected bytes are written out from the D-Bus specification's wire
format ("Marshaling (Wire Format)"): little-endian, every value aligned to
its own size from the start of the message (body offsets here start at 0,
as a body starts 8-aligned), array lengths counting the elements but not
the padding before the first one. Where `dbus-daemon` and `dbus-send`
(libdbus, an independent implementation) are installed, one test also
talks to a private bus daemon and has dbus-send call us and print our reply.
"""

import os
import shutil
import subprocess
import time

import pytest

from pyrunc.cgroups import dbus, systemd
from pyrunc.cgroups.dbus import MarshalError, Message, Variant, marshal, unmarshal
from pyrunc.cgroups.devices import DEFAULT_ALLOWED, Rule
from pyrunc.cgroups.manager import CgroupError

U64 = (1 << 64) - 1


def u32(n):
    return n.to_bytes(4, "little")


# --- basic types -------------------------------------------------------------------

@pytest.mark.parametrize("sig,value,wire", [
    ("y", 0x12, b"\x12"),
    ("b", True, b"\x01\x00\x00\x00"),
    ("b", False, b"\x00\x00\x00\x00"),
    ("n", -2, b"\xfe\xff"),
    ("q", 0x1234, b"\x34\x12"),
    ("i", -1, b"\xff\xff\xff\xff"),
    ("u", 0x01020304, b"\x04\x03\x02\x01"),
    ("x", -2, b"\xfe" + b"\xff" * 7),
    ("t", U64, b"\xff" * 8),
    ("d", 1.0, b"\x00\x00\x00\x00\x00\x00\xf0\x3f"),  # IEEE 754 0x3FF0000000000000
    ("h", 3, b"\x03\x00\x00\x00"),
    ("s", "foo", b"\x03\x00\x00\x00foo\x00"),
    ("s", "", b"\x00\x00\x00\x00\x00"),
    ("s", "é", b"\x02\x00\x00\x00\xc3\xa9\x00"),  # length in UTF-8 bytes
    ("o", "/", b"\x01\x00\x00\x00/\x00"),
    ("g", "a{sv}", b"\x05a{sv}\x00"),  # one length byte, no alignment
])
def test_basic_types(sig, value, wire):
    assert marshal(sig, [value]) == wire
    assert unmarshal(sig, wire) == [value]


def test_alignment_between_values():
    # each value aligned to its size from the start: y, 3 pad, u / y, 7 pad, t / y, 1 pad, n
    assert marshal("yu", [1, 2]) == b"\x01\0\0\0" + u32(2)
    assert marshal("yt", [1, 2]) == b"\x01" + b"\0" * 7 + (2).to_bytes(8, "little")
    assert marshal("yn", [1, -1]) == b"\x01\0\xff\xff"
    # a signature needs no alignment, the string after it does
    assert marshal("gs", ["s", "x"]) == b"\x01s\x00\x00" + u32(1) + b"x\x00"
    assert unmarshal("yt", marshal("yt", [1, 2])) == [1, 2]


def test_arrays():
    # "at": length 8, then 4 bytes of padding to the first 8-aligned element,
    # which the length does not count
    one = u32(8) + b"\0" * 4 + (5).to_bytes(8, "little")
    assert marshal("at", [[5]]) == one
    # an empty array still has the padding for its (absent) first element
    assert marshal("at", [[]]) == u32(0) + b"\0" * 4
    # no padding needed when the length ends 8-aligned: y, 3 pad, length, elements
    assert marshal("yat", [1, [5]]) == b"\x01\0\0\0" + u32(8) + (5).to_bytes(8, "little")
    assert marshal("as", [["a", "bc"]]) == u32(15) + u32(1) + b"a\0" + b"\0\0" + u32(2) + b"bc\0"
    assert marshal("au", [[1, 2]]) == u32(8) + u32(1) + u32(2)
    # ay is the raw bytes
    assert marshal("ay", [b"\x01\x02\x03"]) == u32(3) + b"\x01\x02\x03"
    assert unmarshal("ay", u32(3) + b"\x01\x02\x03") == [b"\x01\x02\x03"]
    assert unmarshal("as", marshal("as", [["a", "bc"]])) == [["a", "bc"]]
    assert unmarshal("at", u32(0) + b"\0" * 4) == [[]]


def test_structs_variants_dicts():
    # structs start 8-aligned
    assert marshal("(yu)", [(1, 2)]) == b"\x01\0\0\0" + u32(2)
    assert marshal("y(y)", [1, (2,)]) == b"\x01" + b"\0" * 7 + b"\x02"
    # a variant: its signature (g), then the value aligned as usual
    assert marshal("v", [Variant("u", 7)]) == b"\x01u\x00" + b"\x00" + u32(7)
    assert marshal("v", [Variant("s", "ab")]) == b"\x01s\x00\x00" + u32(2) + b"ab\x00"
    # a{sv}: length, pad to 8, each entry 8-aligned
    wire = (u32(16) + b"\0" * 4                      # length 16, padding to the entry
            + u32(1) + b"a\0"                        # key "a" (offset 8..14)
            + b"\x01b\x00"                           # variant signature "b" (14..17)
            + b"\0" * 3 + u32(1))                    # padding, true (20..24)
    assert marshal("a{sv}", [{"a": Variant("b", True)}]) == wire
    assert unmarshal("a{sv}", wire) == [{"a": Variant("b", True)}]
    # a(sv) (systemd's property list) is the same layout with structs
    assert marshal("a(sv)", [[("a", Variant("b", True))]]) == wire
    assert unmarshal("a(sv)", wire) == [[("a", Variant("b", True))]]
    # nested variants and containers round-trip
    v = [Variant("a(ss)", [("char-*", "m"), ("/dev/char/1:3", "rwm")]), Variant("v", Variant("ay", b"\xff"))]
    assert unmarshal("vv", marshal("vv", v)) == v


def test_invalid_signatures_and_values():
    for sig in ("a", "(", "()", "(i", "a{vs}", "a{s}", "a{sii}", "{sv}", "z", "i)"):
        with pytest.raises(MarshalError):
            dbus.split_signature(sig)
    assert dbus.split_signature("sa{sv}(ii)v") == ["s", "a{sv}", "(ii)", "v"]
    with pytest.raises(MarshalError):
        dbus.split_signature("a" * 33 + "i")  # arrays nest 32 deep at most
    bad = [("y", 256), ("n", 1 << 15), ("u", -1), ("t", -1), ("x", 1 << 63), ("i", "1"), ("b", 2),
           ("s", "a\0b"), ("s", 5), ("o", "no/slash"), ("o", "/trailing/"), ("o", "/a//b"), ("o", "/a-b"),
           ("g", "a"), ("v", 5), ("v", Variant("ii", 1)), ("(ii)", (1,)), ("ai", "12")]
    for sig, value in bad:
        with pytest.raises(MarshalError):
            marshal(sig, [value])
    with pytest.raises(MarshalError):
        marshal("ii", [1])
    # reading: truncated data, non-zero padding, bad booleans, bytes left over
    for sig, data in [("u", b"\x01\x02"), ("s", u32(5) + b"ab\0"), ("yu", b"\x01\x01\0\0" + u32(1)),
                      ("b", u32(2)), ("u", u32(1) + b"\0"), ("s", u32(1) + b"ab"), ("g", b"\x05ab")]:
        with pytest.raises(MarshalError):
            unmarshal(sig, data)


# --- messages ------------------------------------------------------------------------

def _hdr_field(code, sig, payload):
    """One (yv) header field, starting 8-aligned: code, signature, value."""
    return bytes([code, 1]) + sig.encode() + b"\0" + payload


def test_method_call_wire_format():
    m = Message(dbus.METHOD_CALL, path="/o", interface="a.b", member="M", destination="d.e",
                signature="u", body=[7])
    wire = m.encode(5)
    fields = (_hdr_field(1, "o", u32(2) + b"/o\0")                    # 16..27: PATH
              + b"\0" * 5                                            # pad to 32
              + _hdr_field(2, "s", u32(3) + b"a.b\0")                # 32..44: INTERFACE
              + b"\0" * 4                                            # pad to 48
              + _hdr_field(3, "s", u32(1) + b"M\0")                  # 48..58: MEMBER
              + b"\0" * 6                                            # pad to 64
              + _hdr_field(6, "s", u32(3) + b"d.e\0")                # 64..76: DESTINATION
              + b"\0" * 4                                            # pad to 80
              + _hdr_field(8, "g", b"\x01u\0"))                      # 80..86: SIGNATURE
    # endianness, type, flags, version, body length, serial
    expect = (b"l\x01\x00\x01" + u32(4) + u32(5)
              + u32(len(fields)) + fields + b"\0"                     # header fields, padding to 88
              + u32(7))                                               # the body
    assert wire == expect
    back = dbus.decode(wire)
    assert (back.type, back.serial, back.path, back.interface, back.member, back.destination,
            back.signature, back.body) == (1, 5, "/o", "a.b", "M", "d.e", "u", [7])
    assert dbus.message_size(wire[:16]) == len(wire)


def test_decode_big_endian_error_and_unknown_fields():
    # a big-endian error reply, as a peer on another architecture would send it;
    # header field 42 is unknown and must be ignored
    def be32(n):
        return n.to_bytes(4, "big")
    fields = (bytes([4, 1]) + b"s\0" + be32(5) + b"x.Err\0" + b"\0" * 2     # 16..30, pad to 32
              + bytes([5, 1]) + b"u\0" + be32(3)                            # 32..40 REPLY_SERIAL
              + bytes([42, 1]) + b"y\0" + b"\x09" + b"\0" * 3               # 40..45 unknown, pad to 48
              + bytes([8, 1]) + b"g\0" + b"\x01s\0")                        # 48..55 SIGNATURE
    body = be32(2) + b"no\0"
    wire = b"B\x03\x00\x01" + be32(len(body)) + be32(9) + be32(len(fields)) + fields + b"\0" + body
    m = dbus.decode(wire)
    assert (m.type, m.serial, m.error_name, m.reply_serial, m.body) == (dbus.ERROR, 9, "x.Err", 3, ["no"])
    with pytest.raises(MarshalError):
        dbus.decode(b"X" + wire[1:])
    with pytest.raises(MarshalError):
        dbus.decode(wire[:-1])


def test_message_round_trip_and_checks():
    body = ["pyrunc-x.scope", "replace",
            [("Description", Variant("s", "c")), ("PIDs", Variant("au", [1, 2])),
             ("MemoryMax", Variant("t", U64)), ("AllowedCPUs", Variant("ay", b"\x03"))], []]
    m = Message(dbus.METHOD_CALL, path="/org/freedesktop/systemd1", interface="org.freedesktop.systemd1.Manager",
                member="StartTransientUnit", destination="org.freedesktop.systemd1",
                signature="ssa(sv)a(sa(sv))", body=body)
    back = dbus.decode(m.encode(1))
    assert back.body == body and back.signature == "ssa(sv)a(sa(sv))"
    assert len(m.encode(1)) % 8 == (len(marshal(m.signature, body)) % 8)
    with pytest.raises(MarshalError):
        Message(dbus.METHOD_CALL, member="M").encode(1)  # no path
    with pytest.raises(MarshalError):
        Message(dbus.SIGNAL, path="/", member="M").encode(1)  # no interface
    with pytest.raises(MarshalError):
        Message(dbus.METHOD_RETURN).encode(1)  # no reply serial
    with pytest.raises(MarshalError):
        Message(dbus.METHOD_CALL, path="/", member="M").encode(0)


def test_addresses():
    assert dbus.parse_address("unix:path=/run/dbus/system_bus_socket") == [
        ("unix", {"path": "/run/dbus/system_bus_socket"})]
    assert dbus.parse_address("unix:abstract=/tmp/x%2cy,guid=00;tcp:host=h,port=1") == [
        ("unix", {"abstract": "/tmp/x,y", "guid": "00"}), ("tcp", {"host": "h", "port": "1"})]
    with pytest.raises(dbus.DBusError):
        dbus.parse_address("nocolon")


class _FakeSock:
    """A peer that has already written `data`; records what we send."""

    def __init__(self, data):
        self.data = bytearray(data)
        self.sent = bytearray()

    def settimeout(self, t):
        pass

    def recv(self, n):
        out, self.data = bytes(self.data[:3]), self.data[3:]  # dribble: 3 bytes a read
        return out

    def sendall(self, b, flags=0):
        self.sent += b

    def close(self):
        pass


def test_connection_auth_replies_and_signals_out_of_order():
    reply = Message(dbus.METHOD_RETURN, reply_serial=2, signature="o", body=["/job/1"]).encode(10)
    sig_early = Message(dbus.SIGNAL, path="/org/freedesktop/systemd1", interface="org.freedesktop.systemd1.Manager",
                        member="JobRemoved", signature="uoss", body=[1, "/job/1", "u.scope", "done"]).encode(9)
    other = Message(dbus.METHOD_RETURN, reply_serial=1, signature="s", body=["x"]).encode(8)
    err = Message(dbus.ERROR, reply_serial=3, error_name="org.freedesktop.systemd1.NoSuchUnit",
                  signature="s", body=["Unit u.scope not loaded."]).encode(11)
    sock = _FakeSock(b"OK 0123abcd\r\n" + other + sig_early + reply + err)
    c = dbus.Connection(sock, bus=False)
    c._auth(5)
    assert c.guid == "0123abcd"
    assert bytes(sock.sent) == b"\0AUTH EXTERNAL " + str(os.geteuid()).encode().hex().encode() + b"\r\nBEGIN\r\n"
    s1 = c.send_call("d.e", "/", "a.b", "One")
    s2 = c.send_call("d.e", "/", "a.b", "Two")
    s3 = c.send_call("d.e", "/", "a.b", "Three")
    assert c.reply(s2) == ["/job/1"]          # the signal before it is kept
    assert c.reply(s1) == ["x"]               # a reply read earlier is kept
    m = c.wait_signal(lambda m: m.member == "JobRemoved" and m.body[1] == "/job/1", 1)
    assert m.body[3] == "done" and c.signals == []
    with pytest.raises(dbus.DBusError) as e:
        c.reply(s3)
    assert e.value.name == "org.freedesktop.systemd1.NoSuchUnit" and "not loaded" in str(e.value)
    with pytest.raises(dbus.DBusError) as e:
        c.reply(99, timeout=1)                  # the peer has nothing more: disconnected
    assert e.value.name.endswith("Disconnected")


def test_auth_rejected():
    c = dbus.Connection(_FakeSock(b"REJECTED EXTERNAL\r\n"), bus=False)
    with pytest.raises(dbus.DBusError) as e:
        c._auth(5)
    assert e.value.name.endswith("AuthFailed")


@pytest.mark.skipif(not (shutil.which("dbus-daemon") and shutil.which("dbus-send")),
                    reason="needs dbus-daemon and dbus-send (package dbus)")
def test_against_libdbus(tmp_path):
    """A private dbus-daemon: Hello, calls, errors; dbus-send (libdbus) calls us,
    we parse its arguments and it prints our reply."""
    conf = tmp_path / "bus.conf"
    conf.write_text(f"""<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path={tmp_path}/bus</listen>
<auth>EXTERNAL</auth><policy context="default"><allow send_destination="*" eavesdrop="true"/>
<allow eavesdrop="true"/><allow own="*"/></policy></busconfig>""")
    daemon = subprocess.Popen(["dbus-daemon", f"--config-file={conf}", "--nofork", "--nopidfile",
                               "--print-address=1"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    sender = None
    try:
        addr = daemon.stdout.readline().strip()
        with dbus.connect(addr) as c:
            assert c.unique_name.startswith(":1.")
            names = c.call(dbus.BUS_DEST, dbus.BUS_PATH, dbus.BUS_IFACE, "ListNames")[0]
            assert c.unique_name in names and dbus.BUS_DEST in names
            with pytest.raises(dbus.DBusError) as e:
                c.call(dbus.BUS_DEST, dbus.BUS_PATH, dbus.BUS_IFACE, "NoSuchMethod")
            assert e.value.name == "org.freedesktop.DBus.Error.UnknownMethod"
            assert c.call(dbus.BUS_DEST, dbus.BUS_PATH, dbus.BUS_IFACE, "RequestName", "su",
                          ["org.pyrunc.Test", 4]) == [1]
            c.reply(c.add_match("type='signal',interface='org.pyrunc.Sig'"))
            sender = subprocess.Popen(
                ["dbus-send", f"--bus={addr}", "--print-reply", "--dest=org.pyrunc.Test", "/a/b", "x.y.Method",
                 "string:hé", "uint64:18446744073709551615", "int16:-3", "byte:7", "boolean:true",
                 "double:1.5", "objpath:/x/y", "array:string:a,b", "dict:string:int32:k1,1,k2,-2",
                 "variant:uint32:9"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 10
            m = c.read_message(deadline)
            while m.type != dbus.METHOD_CALL:
                m = c.read_message(deadline)
            assert (m.path, m.interface, m.member, m.signature) == ("/a/b", "x.y", "Method", "stnybdoasa{si}v")
            assert m.body == ["hé", U64, -3, 7, True, 1.5, "/x/y", ["a", "b"], {"k1": 1, "k2": -2},
                              Variant("u", 9)]
            c.send(Message(dbus.METHOD_RETURN, reply_serial=m.serial, destination=m.sender,
                           signature="a{sv}(ti)ay",
                           body=[{"p": Variant("as", ["x", "y"])}, (U64, -5), b"\x01\x02"]))
            out, errs = sender.communicate(timeout=10)
            assert sender.returncode == 0, errs
            words = out.split()
            for w in ('"p"', '"x"', '"y"', "18446744073709551615", "-5", "01", "02"):
                assert w in words, out
            # a signal from libdbus reaches us through our match rule
            subprocess.run(["dbus-send", f"--bus={addr}", "--type=signal", "/s", "org.pyrunc.Sig.Ping",
                            "string:hi"], check=True, timeout=10)
            m = c.wait_signal(lambda m: m.interface == "org.pyrunc.Sig", 10)
            assert (m.member, m.body) == ("Ping", ["hi"])
    finally:
        if sender is not None and sender.poll() is None:
            sender.kill()
            sender.wait()
        daemon.kill()
        daemon.wait()


# --- what the systemd driver derives (no D-Bus) ---------------------------------------

def test_cgroups_path_and_unit_names():
    assert systemd.parse_cgroups_path("", "abc") == ("", "pyrunc", "abc")
    assert systemd.parse_cgroups_path("system.slice:docker:1234", "x") == ("system.slice", "docker", "1234")
    assert systemd.parse_cgroups_path(":p:n", "x") == ("", "p", "n")
    for bad in ("a", "a:b", "a:b:c:d", "/abs/path"):
        with pytest.raises(CgroupError, match="slice:prefix:name"):
            systemd.parse_cgroups_path(bad, "x")
    assert systemd.unit_name("pyrunc", "abc") == "pyrunc-abc.scope"
    assert systemd.unit_name("x", "kubepods-pod1.slice") == "kubepods-pod1.slice"
    # runc ExpandSlice
    assert systemd.expand_slice("system.slice") == "/system.slice"
    assert systemd.expand_slice("test-a-b.slice") == "/test.slice/test-a.slice/test-a-b.slice"
    assert systemd.expand_slice("-.slice") == "/"
    for bad in ("foo", ".slice", "a/b.slice", "a--b.slice", "-a.slice", "a-.slice"):
        with pytest.raises(CgroupError, match="invalid slice name"):
            systemd.expand_slice(bad)
    for bad in ("", "../x.scope", "x", "a" * 250 + ".scope"):
        with pytest.raises(CgroupError):
            systemd._check_unit(bad)


def test_state_round_trip_without_dbus():
    st = {"driver": "systemd", "unit": "pyrunc-x.scope", "slice": "", "v2": True,
          "fs": {"driver": "fs2", "path": "/sys/fs/cgroup/system.slice/pyrunc-x.scope", "created": []}}
    m = systemd.load(st)
    assert m.state() == st and m.freezer_probe().endswith("pyrunc-x.scope/cgroup.freeze")
    with pytest.raises(CgroupError):
        systemd.load(dict(st, unit="../../etc.scope"))


@pytest.mark.parametrize("text,out", [
    # runc 1.1.x TestRangeToBits (little-endian byte order, as systemd reads it)
    ("0", [1]), ("1", [2]), ("0-1", [3]), ("0,1", [3]), (",0,1,", [3]), ("0-3", [0x0F]),
    ("0,1,2-3", [0x0F]), ("4-7", [0xF0]), ("0-7", [0xFF]), ("0-15", [0xFF, 0xFF]), ("16", [0, 0, 1]),
    ("0-3,32-33", [0x0F, 0, 0, 0, 3]), ("1, 2, 1-2", [6]), ("    , 1   , 3  ,  5-7,\t", [0xEA]),
    ("128-130,1", [2] + [0] * 15 + [7]),
    ("0-7:2/4", [0x33]),  # the kernel's stride form
    ("", None), ("-", None), ("1-", None), ("-3", None), ("54-53", None), ("1 - 2", None),
])
def test_range_to_bits(text, out):
    if out is None:
        with pytest.raises(CgroupError):
            systemd.range_to_bits(text)
    else:
        assert list(systemd.range_to_bits(text)) == out


def test_systemd_version():
    for text, v in (('"219"', 219), ("v245.4-1.fc32", 245), ("241-1", 241), ("v241-1", 241),
                    ("252.38-1~deb12u1", 252)):
        assert systemd.systemd_version(text) == v
    for bad in ("NaN", ""):
        with pytest.raises(CgroupError):
            systemd.systemd_version(bad)


def _props(props):
    return [(n, v.signature, v.value) for n, v in props]


PROC_DEVICES = """Character devices:
  1 mem
  4 /dev/vc/0
  5 /dev/tty
136 pts
Block devices:
  8 sd
"""


def test_device_properties():
    warns = []
    rules = [Rule("c", 1, 3, "rwm"), Rule("c", 136, -1, "rw"), Rule("b", 8, -1, "r"), Rule("c", -1, 5, "r"),
             Rule("c", 99, -1, "r")] + list(DEFAULT_ALLOWED[:2])
    got = _props(systemd.device_properties(rules, 252, warns.append, PROC_DEVICES))
    assert got[:2] == [("DevicePolicy", "s", "strict"), ("DeviceAllow", "a(ss)", [])]
    assert got[2] == ("DeviceAllow", "a(ss)", [
        ("block-*", "m"), ("char-*", "m"),            # by (major, minor, type), as runc orders them
        ("/dev/char/1:3", "rwm"), ("block-sd", "r"), ("char-pts", "rw")])
    assert len(warns) == 2 and "'*:n'" in warns[0] and "99" in warns[1]
    # systemd < 240 stats /dev/char/M:m itself: rules for missing nodes are left out
    got = _props(systemd.device_properties([Rule("c", 1, 3, "rwm")], 239, warns.append, PROC_DEVICES,
                                           exists=lambda p: False))
    assert got[2] == ("DeviceAllow", "a(ss)", [])
    # allow-all (privileged): auto, no list; another deny-list: deny all, warned
    assert _props(systemd.device_properties([Rule("a", allow=True)], 252, warns.append)) == [
        ("DevicePolicy", "s", "auto"), ("DeviceAllow", "a(ss)", [])]
    got = _props(systemd.device_properties([Rule("a", allow=True), Rule("c", 1, 3, "rwm", allow=False)],
                                           252, warns.append))
    assert got == [("DevicePolicy", "s", "strict"), ("DeviceAllow", "a(ss)", [])] and "blacklist" in warns[-1]


def test_find_device_group():
    assert systemd.find_device_group("c", 136, PROC_DEVICES) == "char-pts"
    assert systemd.find_device_group("c", 4, PROC_DEVICES) == "char-/dev/vc/0"
    assert systemd.find_device_group("b", 8, PROC_DEVICES) == "block-sd"
    assert systemd.find_device_group("b", 1, PROC_DEVICES) == ""


def test_cpu_quota_properties():
    f = systemd.cpu_quota_properties
    assert _props(f(50000, 100000, 252, True)) == [("CPUQuotaPeriodUSec", "t", 100000),
                                                    ("CPUQuotaPerSecUSec", "t", 500000)]
    # rounded up to whole percents (10 ms per second); the default period when none
    assert _props(f(1234, 0, 252, False)) == [("CPUQuotaPerSecUSec", "t", 20000)]
    assert _props(f(-1, 0, 252, False)) == [("CPUQuotaPerSecUSec", "t", U64)]
    # only the period: no quota (infinity); CPUQuotaPeriodUSec needs systemd >= 242
    assert _props(f(0, 50000, 241, True)) == [("CPUQuotaPerSecUSec", "t", U64)]
    assert f(0, 0, 252, True) == []


def _manager(v2=True):
    from pyrunc.cgroups import fs2
    return systemd.SystemdManager("pyrunc-x.scope", "", fs2.Fs2Manager("/nonexistent/pyrunc-x.scope"), v2,
                                  fresh=True)


def test_resource_properties_v2():
    m = _manager()
    r = {"memory": {"limit": 64 << 20, "reservation": 1 << 20, "swap": 96 << 20},
         "cpu": {"shares": 1024, "quota": 20000, "period": 50000, "cpus": "0-1", "mems": "0"},
         "pids": {"limit": 10}, "blockIO": {"weight": 500},
         "unified": {"memory.high": "max", "pids.max": "7", "io.max": "8:0 rbps=1"}}
    got = _props(m._resource_props(r, None, 252, fresh=True))
    assert got == [("MemoryMax", "t", 64 << 20), ("MemoryLow", "t", 1 << 20), ("MemorySwapMax", "t", 32 << 20),
                   ("CPUWeight", "t", 39),
                   ("CPUQuotaPeriodUSec", "t", 50000), ("CPUQuotaPerSecUSec", "t", 400000),
                   ("IOWeight", "t", 4950), ("TasksMax", "t", 10),
                   ("AllowedCPUs", "ay", b"\x03"), ("AllowedMemoryNodes", "ay", b"\x01"),
                   ("MemoryHigh", "t", U64), ("TasksMax", "t", 7)]
    # -1 is infinity; runtime-spec's pids 0 (systemd refuses TasksMax=0) and old
    # systemd's missing AllowedCPUs go to the cgroup files only
    got = _props(m._resource_props({"memory": {"limit": -1}, "pids": {"limit": 0}, "cpu": {"cpus": "0"}},
                                   None, 243, fresh=True))
    assert got == [("MemoryMax", "t", U64), ("MemorySwapMax", "t", U64)]
    assert _props(m._resource_props({"pids": {"limit": -1}}, None, 252)) == [("TasksMax", "t", U64)]
    # swap = limit: no swap at all
    assert _props(m._resource_props({"memory": {"limit": 100, "swap": 100}}, None, 252, fresh=True)) == [
        ("MemoryMax", "t", 100), ("MemorySwapMax", "t", 0)]
    for bad in ({"memory": {"limit": -2}}, {"pids": {"limit": -3}}, {"cpu": {"cpus": "x"}},
                {"memory": {"swap": 10, "limit": 20}}, {"unified": {"cpu.weight": "heavy"}}):
        with pytest.raises(CgroupError):
            m._resource_props(bad, None, 252, fresh=True)


def test_resource_properties_v1():
    m = _manager(v2=False)
    m.fs.paths = {}
    got = _props(m._resource_props({"memory": {"limit": 1 << 20, "reservation": 5}, "cpu": {"shares": 512},
                                    "blockIO": {"weight": 300}}, None, 252, fresh=True))
    assert got == [("MemoryLimit", "t", 1 << 20), ("CPUShares", "t", 512), ("BlockIOWeight", "t", 300)]


def test_annotation_properties():
    # runc's TestInitSystemdProps
    cases = [
        ("TimeoutStopUSec", "uint64 123456789", ("TimeoutStopUSec", "t", 123456789)),
        ("TimeoutStopSec", "456", ("TimeoutStopUSec", "t", 456000000)),
        ("TimeoutStopSec", "byte 234", ("TimeoutStopUSec", "t", 234000000)),
        ("TimeoutStopSec", "int16 234", ("TimeoutStopUSec", "t", 234000000)),
        ("TimeoutStopSec", "uint32 234", ("TimeoutStopUSec", "t", 234000000)),
        ("TimeoutStopSec", "int64 234", ("TimeoutStopUSec", "t", 234000000)),
        ("TimeoutStopSec", "234.789", ("TimeoutStopUSec", "t", 234789000)),
        ("TimeoutStopSec", "false", None), ("TimeoutStopSec", "'covfefe'", None),
        ("FOOSec", "123", ("FOOSec", "i", 123)),
        ("CollectMode", "'inactive-or-failed'", ("CollectMode", "s", "inactive-or-failed")),
        ("Xo", "1", None), ("Number1", "1", None), ("ValidName", "invalid-value", None),
        ("After", "['a.service', \"b.service\"]", ("After", "as", ["a.service", "b.service"])),
        ("Wants", "@as []", ("Wants", "as", [])),
        ("CPUWeight", "@t 300", ("CPUWeight", "t", 300)),
        ("Pair", "('x', uint32 3)", ("Pair", "(su)", ("x", 3))),
        ("Nope", "[]", None), ("Big", "byte 256", None), ("Mixed", "['a', 1]", None),
    ]
    for name, value, want in cases:
        ann = {"org.systemd.property." + name: value, "some.other.annotation": "0"}
        if want is None:
            with pytest.raises(CgroupError):
                systemd.annotation_properties(ann)
        else:
            assert _props(systemd.annotation_properties(ann)) == [want], (name, value)
    assert systemd.annotation_properties(None) == []


def test_new_paths_without_dbus():
    """new() asks nothing of systemd: it names the unit and its cgroup path(s),
    and refuses to work without systemd as runc does."""
    from pyrunc.cgroups import CGROUP_ROOT, host_mode
    if not systemd.running_systemd():
        with pytest.raises(CgroupError, match="systemd not running"):
            systemd.new("", "abc")
        return
    m = systemd.new("machine-a.slice:x:abc", "ignored")
    assert m.unit == "x-abc.scope" and m._started is False
    if host_mode() == "v2":
        assert m.fs.path == f"{CGROUP_ROOT}/machine.slice/machine-a.slice/x-abc.scope"
    else:
        assert m.fs.paths["memory"] == f"{CGROUP_ROOT}/memory/machine.slice/machine-a.slice/x-abc.scope"
    m.destroy()  # never applied: no D-Bus, nothing removed


def test_fs_paths_of_a_unit():
    """runc initPath / initPaths: the slice's path, then the unit, in each hierarchy."""
    from pyrunc.cgroups import CGROUP_ROOT, fs1, host_mode
    sl = systemd.expand_slice("machine-a.slice")
    if host_mode() == "v2":
        assert systemd._fs2_at(sl, "x-abc.scope").path == f"{CGROUP_ROOT}/machine.slice/machine-a.slice/x-abc.scope"
        return
    fs = systemd._fs1_at(sl, "x-abc.scope")
    assert isinstance(fs, fs1.Fs1Manager) and fs.created == []
    for ctrl in ("devices", "memory", "pids", "freezer"):
        assert fs.paths[ctrl].endswith("/machine.slice/machine-a.slice/x-abc.scope")
        assert fs.paths[ctrl].startswith(CGROUP_ROOT + "/")
    if host_mode() == "hybrid":
        assert fs.paths[fs1.UNIFIED] == f"{CGROUP_ROOT}/unified/machine.slice/machine-a.slice/x-abc.scope"
    assert not fs.exists()

