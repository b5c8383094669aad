"""A minimal D-Bus client: what the systemd cgroup driver needs, nothing more.

No dependency beyond the standard library's C modules (`_socket`, `_struct`:
`socket` itself imports `enum`, `selectors` and more, several ms).

- Transport: unix stream sockets only ("unix:path=..." and
  "unix:abstract=..." addresses, the forms the system bus and systemd use).
- Authentication: SASL EXTERNAL with the hex-encoded decimal uid (the
  server checks it against SO_PEERCRED), pipelined with BEGIN as sd-bus does;
  no unix fd passing is negotiated.
- Messages: method_call, method_return, error and signal, both byte orders
  on input, little-endian on output; serials, header fields, and a body
  marshalled from an explicit signature.
- Types: every basic type (y b n q i u x t d h s o g), arrays (a dict
  entries {..} as dicts), structs ( ), variants v; the alignment rules of
  the D-Bus specification ("Marshaling (Wire Format)").

Python values: y n q i u x t d h → int/float; b → bool; s → str; o →
ObjectPath (a str); g → Signature (a str); a → list (ay → bytes, a{..} →
dict); ( ) → tuple; v → Variant(signature, value).

`Connection.call()` sends one method call and reads messages until its
reply; signals read meanwhile are kept in order for `wait_signal()`, so a
signal that overtakes the reply it belongs to (systemd's JobRemoved) is
never lost. `send()` + `reply()` pipeline several calls in one round trip.
"""

import _socket
import _struct
import posix
import time

BUS_DEST = "org.freedesktop.DBus"
BUS_PATH = "/org/freedesktop/DBus"
BUS_IFACE = "org.freedesktop.DBus"
SYSTEM_BUS_DEFAULT = "unix:path=/var/run/dbus/system_bus_socket"
SYSTEMD_PRIVATE = "unix:path=/run/systemd/private"

# message types
METHOD_CALL, METHOD_RETURN, ERROR, SIGNAL = 1, 2, 3, 4
TYPE_NAMES = {METHOD_CALL: "method_call", METHOD_RETURN: "method_return", ERROR: "error", SIGNAL: "signal"}
# flags
NO_REPLY_EXPECTED, NO_AUTO_START, ALLOW_INTERACTIVE_AUTHORIZATION = 0x1, 0x2, 0x4
# header fields: code -> (attribute, signature)
FIELDS = {1: ("path", "o"), 2: ("interface", "s"), 3: ("member", "s"), 4: ("error_name", "s"),
          5: ("reply_serial", "u"), 6: ("destination", "s"), 7: ("sender", "s"),
          8: ("signature", "g"), 9: ("unix_fds", "u")}
_FIELD_CODES = {attr: (code, sig) for code, (attr, sig) in FIELDS.items()}

MAX_MESSAGE = 1 << 27  # 128 MiB
MAX_ARRAY = 1 << 26  # 64 MiB
MAX_DEPTH = 32  # nesting of structs / arrays each (spec: 32)

_FIXED = {"y": ("B", 1), "b": ("I", 4), "n": ("h", 2), "q": ("H", 2), "i": ("i", 4), "u": ("I", 4),
          "x": ("q", 8), "t": ("Q", 8), "d": ("d", 8), "h": ("I", 4)}
_ALIGN = {"y": 1, "b": 4, "n": 2, "q": 2, "i": 4, "u": 4, "x": 8, "t": 8, "d": 8, "h": 4,
          "s": 4, "o": 4, "g": 1, "a": 4, "(": 8, "{": 8, "v": 1}
_BASIC = "ybnqiuxtdhsog"


class DBusError(Exception):
    """An error reply (name = the D-Bus error name) or a local failure
    (org.freedesktop.DBus.Error.* names as libdbus would use them)."""

    def __init__(self, name, message=""):
        super().__init__(f"{name}: {message}" if message else name)
        self.name = name
        self.message = message


class MarshalError(DBusError):
    def __init__(self, message):
        super().__init__("org.freedesktop.DBus.Error.InvalidArgs", message)


class ObjectPath(str):
    __slots__ = ()


class Signature(str):
    __slots__ = ()


class Variant:
    __slots__ = ("signature", "value")

    def __init__(self, signature, value):
        self.signature = signature
        self.value = value

    def __eq__(self, other):
        return type(other) is Variant and (self.signature, self.value) == (other.signature, other.value)

    def __hash__(self):
        return hash(self.signature)

    def __repr__(self):
        return f"Variant({self.signature!r}, {self.value!r})"


# --- signatures -----------------------------------------------------------------

def _type_end(sig, i, depth_a=0, depth_s=0):
    """Index just past the single complete type starting at sig[i]."""
    if i >= len(sig):
        raise MarshalError(f"signature {sig!r}: incomplete type")
    c = sig[i]
    if c in _BASIC or c == "v":
        return i + 1
    if c == "a":
        if depth_a >= MAX_DEPTH:
            raise MarshalError(f"signature {sig!r}: arrays nested too deeply")
        if i + 1 < len(sig) and sig[i + 1] == "{":
            # dict entry: a basic key and one complete value type
            if i + 2 >= len(sig) or sig[i + 2] not in _BASIC:
                raise MarshalError(f"signature {sig!r}: a dict key must be a basic type")
            j = _type_end(sig, i + 3, depth_a + 1, depth_s + 1)
            if j >= len(sig) or sig[j] != "}":
                raise MarshalError(f"signature {sig!r}: a dict entry holds exactly a key and a value")
            return j + 1
        return _type_end(sig, i + 1, depth_a + 1, depth_s)
    if c == "(":
        if depth_s >= MAX_DEPTH:
            raise MarshalError(f"signature {sig!r}: structs nested too deeply")
        j = i + 1
        if j < len(sig) and sig[j] == ")":
            raise MarshalError(f"signature {sig!r}: empty struct")
        while j < len(sig) and sig[j] != ")":
            j = _type_end(sig, j, depth_a, depth_s + 1)
        if j >= len(sig):
            raise MarshalError(f"signature {sig!r}: unclosed struct")
        return j + 1
    raise MarshalError(f"signature {sig!r}: invalid type code {c!r}")


def split_signature(sig):
    """The complete types of a signature: "sa{sv}(ii)" -> ["s", "a{sv}", "(ii)"]."""
    if len(sig) > 255:
        raise MarshalError(f"signature longer than 255 bytes: {sig!r}")
    out, i = [], 0
    while i < len(sig):
        j = _type_end(sig, i)
        out.append(sig[i:j])
        i = j
    return out


def _struct_fields(t):
    return split_signature(t[1:-1])


# --- marshalling ----------------------------------------------------------------

class _Writer:
    __slots__ = ("buf",)

    def __init__(self):
        self.buf = bytearray()

    def align(self, n):
        pad = -len(self.buf) % n
        if pad:
            self.buf += b"\0" * pad

    def write(self, t, v):
        c = t[0]
        fixed = _FIXED.get(c)
        buf = self.buf
        if fixed is not None:
            code, size = fixed
            self.align(size)
            if c == "b":
                if v not in (True, False, 0, 1) or (not isinstance(v, (bool, int))):
                    raise MarshalError(f"boolean expected, not {v!r}")
                v = 1 if v else 0
            elif c == "d":
                if not isinstance(v, (int, float)) or isinstance(v, bool):
                    raise MarshalError(f"number expected for 'd', not {v!r}")
                v = float(v)
            elif not isinstance(v, int) or isinstance(v, bool):
                raise MarshalError(f"integer expected for {c!r}, not {v!r}")
            try:
                buf += _struct.pack("<" + code, v)
            except _struct.error:
                raise MarshalError(f"{v!r} out of range for {c!r}") from None
        elif c == "s" or c == "o":
            if not isinstance(v, str):
                raise MarshalError(f"string expected for {c!r}, not {v!r}")
            if c == "o" and not valid_object_path(v):
                raise MarshalError(f"invalid object path {v!r}")
            data = v.encode("utf-8")
            if b"\0" in data:
                raise MarshalError(f"string with a NUL byte: {v!r}")
            self.align(4)
            buf += _struct.pack("<I", len(data))
            buf += data
            buf += b"\0"
        elif c == "g":
            if not isinstance(v, str):
                raise MarshalError(f"signature expected, not {v!r}")
            split_signature(v)
            data = v.encode("ascii")
            buf.append(len(data))
            buf += data
            buf += b"\0"
        elif c == "v":
            if not isinstance(v, Variant):
                raise MarshalError(f"Variant expected, not {v!r}")
            if len(split_signature(v.signature)) != 1:
                raise MarshalError(f"a variant holds one complete type, not {v.signature!r}")
            self.write("g", v.signature)
            self.write(v.signature, v.value)
        elif c == "a":
            elem = t[1:]
            self.align(4)
            at = len(buf)
            buf += b"\0\0\0\0"
            self.align(_ALIGN[elem[0]])
            start = len(buf)
            if elem[0] == "{":
                kt, vt = split_signature(elem[1:-1])
                items = v.items() if isinstance(v, dict) else v
                for item in items:
                    k, val = item
                    self.align(8)
                    self.write(kt, k)
                    self.write(vt, val)
            elif elem == "y" and isinstance(v, (bytes, bytearray)):
                buf += v
            else:
                if isinstance(v, (str, bytes, dict)) or not hasattr(v, "__iter__"):
                    raise MarshalError(f"sequence expected for {t!r}, not {v!r}")
                for item in v:
                    self.write(elem, item)
            n = len(buf) - start
            if n > MAX_ARRAY:
                raise MarshalError(f"array of {n} bytes is larger than 64 MiB")
            buf[at:at + 4] = _struct.pack("<I", n)
        elif c == "(":
            fields = _struct_fields(t)
            if not isinstance(v, (tuple, list)) or len(v) != len(fields):
                raise MarshalError(f"{len(fields)}-tuple expected for {t!r}, not {v!r}")
            self.align(8)
            for ft, fv in zip(fields, v):
                self.write(ft, fv)
        else:
            raise MarshalError(f"cannot marshal type {t!r}")


def marshal(signature, values):
    """The body bytes for `values` (a sequence, one per complete type), little-endian,
    aligned as if it started at an 8-aligned offset (as a message body does)."""
    types = split_signature(signature)
    if len(types) != len(values):
        raise MarshalError(f"signature {signature!r} needs {len(types)} values, got {len(values)}")
    w = _Writer()
    for t, v in zip(types, values):
        w.write(t, v)
    return bytes(w.buf)


class _Reader:
    __slots__ = ("data", "pos", "end", "order")

    def __init__(self, data, pos=0, order="<", end=None):
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end
        self.order = order

    def align(self, n, base=0):
        pad = -(self.pos - base) % n
        if pad:
            if self.pos + pad > self.end:
                raise MarshalError("truncated message (padding)")
            if any(self.data[self.pos:self.pos + pad]):
                raise MarshalError("non-zero padding")
            self.pos += pad

    def take(self, n):
        p = self.pos
        if p + n > self.end:
            raise MarshalError("truncated message")
        self.pos = p + n
        return self.data[p:p + n]

    def read(self, t, base=0):
        c = t[0]
        fixed = _FIXED.get(c)
        if fixed is not None:
            code, size = fixed
            self.align(size, base)
            v = _struct.unpack(self.order + code, self.take(size))[0]
            if c == "b":
                if v > 1:
                    raise MarshalError(f"invalid boolean value {v}")
                return bool(v)
            return v
        if c == "s" or c == "o":
            self.align(4, base)
            n = _struct.unpack(self.order + "I", self.take(4))[0]
            raw = self.take(n + 1)
            if raw[-1] != 0:
                raise MarshalError("string not NUL-terminated")
            try:
                s = bytes(raw[:-1]).decode("utf-8")
            except UnicodeDecodeError:
                raise MarshalError("string is not valid UTF-8") from None
            if "\0" in s:
                raise MarshalError("string with an embedded NUL byte")
            return ObjectPath(s) if c == "o" else s
        if c == "g":
            n = self.take(1)[0]
            raw = self.take(n + 1)
            if raw[-1] != 0:
                raise MarshalError("signature not NUL-terminated")
            s = bytes(raw[:-1]).decode("ascii", "replace")
            split_signature(s)
            return Signature(s)
        if c == "v":
            sig = self.read("g", base)
            if len(split_signature(sig)) != 1:
                raise MarshalError(f"variant signature {sig!r} is not one complete type")
            return Variant(str(sig), self.read(sig, base))
        if c == "a":
            self.align(4, base)
            n = _struct.unpack(self.order + "I", self.take(4))[0]
            if n > MAX_ARRAY:
                raise MarshalError(f"array length {n} exceeds 64 MiB")
            elem = t[1:]
            self.align(_ALIGN[elem[0]], base)
            stop = self.pos + n
            if stop > self.end:
                raise MarshalError("truncated message (array)")
            if elem == "y":
                return bytes(self.take(n))
            if elem[0] == "{":
                kt, vt = split_signature(elem[1:-1])
                out = {}
                while self.pos < stop:
                    self.align(8, base)
                    k = self.read(kt, base)
                    out[k] = self.read(vt, base)
            else:
                out = []
                while self.pos < stop:
                    out.append(self.read(elem, base))
            if self.pos != stop:
                raise MarshalError("array elements overrun the array length")
            return out
        if c == "(":
            self.align(8, base)
            return tuple(self.read(ft, base) for ft in _struct_fields(t))
        raise MarshalError(f"cannot unmarshal type {t!r}")


def unmarshal(signature, data, order="<"):
    """The values of a body (see marshal); the whole of `data` must be used."""
    r = _Reader(data, 0, order)
    out = [r.read(t) for t in split_signature(signature)]
    if r.pos != len(data):
        raise MarshalError(f"{len(data) - r.pos} bytes left after the body of signature {signature!r}")
    return out


def valid_object_path(p):
    if not p.startswith("/"):
        return False
    if p == "/":
        return True
    if p.endswith("/"):
        return False
    for elem in p[1:].split("/"):
        if not elem or not all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in elem):
            return False
    return True


# --- messages -------------------------------------------------------------------

class Message:
    __slots__ = ("type", "flags", "serial", "path", "interface", "member", "error_name",
                 "reply_serial", "destination", "sender", "signature", "unix_fds", "body")

    def __init__(self, type, path=None, interface=None, member=None, signature="", body=(),
                 destination=None, error_name=None, reply_serial=None, sender=None, flags=0, serial=0):
        self.type = type
        self.flags = flags
        self.serial = serial
        self.path = path
        self.interface = interface
        self.member = member
        self.error_name = error_name
        self.reply_serial = reply_serial
        self.destination = destination
        self.sender = sender
        self.signature = signature or ""
        self.unix_fds = None
        self.body = list(body)

    def __repr__(self):
        what = ".".join(x for x in (self.interface, self.member) if x) or self.error_name or ""
        return (f"<{TYPE_NAMES.get(self.type, self.type)} #{self.serial} {what} path={self.path} "
                f"sig={self.signature!r} body={self.body!r}>")

    def encode(self, serial=None):
        """The wire bytes (little-endian); `serial` overrides self.serial."""
        if serial is not None:
            self.serial = serial
        if not self.serial:
            raise MarshalError("a message needs a non-zero serial")
        need = {METHOD_CALL: ("path", "member"), SIGNAL: ("path", "interface", "member"),
                ERROR: ("error_name", "reply_serial"), METHOD_RETURN: ("reply_serial",)}.get(self.type)
        if need is None:
            raise MarshalError(f"invalid message type {self.type}")
        for attr in need:
            if getattr(self, attr) is None:
                raise MarshalError(f"a {TYPE_NAMES[self.type]} needs a {attr} header field")
        body = marshal(self.signature, self.body) if self.signature else b""
        if self.body and not self.signature:
            raise MarshalError("a body without a signature")
        fields = []
        for code, (attr, sig) in FIELDS.items():
            v = getattr(self, attr) if attr != "signature" else (self.signature or None)
            if v is not None:
                fields.append((code, Variant(sig, v)))
        w = _Writer()
        w.buf += b"l" + bytes((self.type, self.flags, 1))
        w.buf += _struct.pack("<II", len(body), self.serial)
        w.write("a(yv)", fields)
        w.align(8)
        w.buf += body
        if len(w.buf) > MAX_MESSAGE:
            raise MarshalError("message larger than 128 MiB")
        return bytes(w.buf)


def message_size(head):
    """Total size of the message whose first 16 bytes are `head`."""
    order = _order(head[0])
    body_len, _serial, fields_len = _struct.unpack(order + "III", bytes(head[4:16]))
    size = 16 + fields_len + (-(16 + fields_len) % 8) + body_len
    if size > MAX_MESSAGE:
        raise MarshalError(f"message of {size} bytes exceeds 128 MiB")
    return size


def _order(b):
    if b == 0x6C:  # 'l'
        return "<"
    if b == 0x42:  # 'B'
        return ">"
    raise MarshalError(f"invalid endianness byte {b!r}")


def decode(data):
    """A Message from its complete wire bytes."""
    if len(data) < 16:
        raise MarshalError("truncated message header")
    order = _order(data[0])
    mtype, flags, version = data[1], data[2], data[3]
    if version != 1:
        raise MarshalError(f"unsupported protocol version {version}")
    body_len, serial = _struct.unpack(order + "II", bytes(data[4:12]))
    r = _Reader(data, 12, order)
    fields = r.read("a(yv)")
    r.align(8)
    if r.pos + body_len != len(data):
        raise MarshalError("message length does not match its header")
    m = Message(mtype, flags=flags, serial=serial)
    for code, var in fields:
        known = FIELDS.get(code)
        if known is None:
            continue  # unknown fields must be ignored
        attr, sig = known
        if var.signature != sig:
            raise MarshalError(f"header field {attr} has type {var.signature!r}, not {sig!r}")
        setattr(m, attr, var.value)
    m.signature = str(m.signature or "")
    if serial == 0:
        raise MarshalError("message with serial 0")
    if m.signature:
        body = _Reader(data, r.pos, order)
        base = r.pos
        m.body = [body.read(t, base) for t in split_signature(m.signature)]
        if body.pos != len(data):
            raise MarshalError("body longer than its signature")
    elif body_len:
        raise MarshalError("a body without a signature")
    return m


# --- addresses ------------------------------------------------------------------

def _unescape(v):
    out, i = bytearray(), 0
    b = v.encode()
    while i < len(b):
        if b[i] == 0x25 and i + 3 <= len(b):  # %XX
            out.append(int(b[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return out.decode()


def parse_address(address):
    """[(transport, {key: value})] of a D-Bus address list ("a;b")."""
    out = []
    for entry in address.split(";"):
        if not entry:
            continue
        transport, colon, rest = entry.partition(":")
        if not colon:
            raise DBusError("org.freedesktop.DBus.Error.BadAddress", f"no transport in {entry!r}")
        kv = {}
        for pair in rest.split(",") if rest else ():
            k, eq, v = pair.partition("=")
            if not eq:
                raise DBusError("org.freedesktop.DBus.Error.BadAddress", f"bad key=value {pair!r}")
            kv[k] = _unescape(v)
        out.append((transport, kv))
    return out


def system_bus_address():
    return posix.environ.get(b"DBUS_SYSTEM_BUS_ADDRESS", b"").decode() or SYSTEM_BUS_DEFAULT


# --- connections ----------------------------------------------------------------

class Connection:
    """One authenticated connection. `bus` True: a message bus (Hello sent,
    unique_name set); False: a direct peer such as systemd's private socket."""

    def __init__(self, sock, bus):
        self.sock = sock
        self.bus = bus
        self.unique_name = None
        self.guid = None
        self._serial = 0
        self._buf = bytearray()
        self._replies = {}  # reply_serial -> Message read while waiting for another
        self.signals = []  # signals read and not yet taken, oldest first

    # -- setup --

    @classmethod
    def open(cls, address, bus=True, timeout=10.0):
        """Connect to the first usable entry of `address`, authenticate and,
        on a bus, say Hello."""
        err = None
        for transport, kv in parse_address(address):
            if transport != "unix":
                err = err or DBusError("org.freedesktop.DBus.Error.BadAddress",
                                       f"unsupported transport {transport!r} in {address!r}")
                continue
            if "path" in kv:
                target = kv["path"]
            elif "abstract" in kv:
                target = "\0" + kv["abstract"]
            else:
                err = err or DBusError("org.freedesktop.DBus.Error.BadAddress",
                                       f"no path in {address!r}")
                continue
            sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
            try:
                sock.settimeout(timeout)
                sock.connect(target)
                conn = cls(sock, bus)
                conn._auth(timeout)
                if bus:
                    conn.unique_name = conn.call(BUS_DEST, BUS_PATH, BUS_IFACE, "Hello", timeout=timeout)[0]
                return conn
            except OSError as e:
                sock.close()
                err = DBusError("org.freedesktop.DBus.Error.NoServer",
                                f"connect to {target.lstrip(chr(0))}: {e.strerror or e}")
            except DBusError as e:
                sock.close()
                err = e
        raise err or DBusError("org.freedesktop.DBus.Error.BadAddress", f"empty address {address!r}")

    def _auth(self, timeout):
        uid = str(posix.geteuid()).encode().hex().encode()
        # the NUL byte first (credentials), then the pipelined AUTH and BEGIN
        self.sock.sendall(b"\0AUTH EXTERNAL " + uid + b"\r\nBEGIN\r\n", _socket.MSG_NOSIGNAL)
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self._buf:
            self._fill(deadline)
            if len(self._buf) > 16384:
                raise DBusError("org.freedesktop.DBus.Error.AuthFailed", "overlong reply to AUTH")
        line, _, rest = bytes(self._buf).partition(b"\r\n")
        self._buf = bytearray(rest)
        if not line.startswith(b"OK "):
            raise DBusError("org.freedesktop.DBus.Error.AuthFailed",
                            f"server refused AUTH EXTERNAL for uid {posix.geteuid()}: "
                            f"{line.decode(errors='replace')}")
        self.guid = line[3:].decode(errors="replace").strip()

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- I/O --

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise DBusError("org.freedesktop.DBus.Error.Timeout", "timed out waiting for the peer")
        if self.sock is None:
            raise DBusError("org.freedesktop.DBus.Error.Disconnected", "connection closed")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise DBusError("org.freedesktop.DBus.Error.Timeout", "timed out waiting for the peer") from None
        except OSError as e:
            self.close()
            raise DBusError("org.freedesktop.DBus.Error.Disconnected", f"read: {e.strerror or e}") from None
        if not data:
            self.close()
            raise DBusError("org.freedesktop.DBus.Error.Disconnected", "connection closed by the peer")
        self._buf += data

    def read_message(self, deadline):
        """The next message from the peer (blocking until `deadline`, a monotonic time)."""
        while len(self._buf) < 16:
            self._fill(deadline)
        size = message_size(self._buf)
        while len(self._buf) < size:
            self._fill(deadline)
        data = bytes(self._buf[:size])
        del self._buf[:size]
        return decode(data)

    def send(self, msg):
        """Send a message; returns its serial."""
        if self.sock is None:
            raise DBusError("org.freedesktop.DBus.Error.Disconnected", "connection closed")
        self._serial += 1
        data = msg.encode(self._serial)
        try:
            self.sock.settimeout(30)
            self.sock.sendall(data, _socket.MSG_NOSIGNAL)  # EPIPE, never SIGPIPE
        except OSError as e:
            self.close()
            raise DBusError("org.freedesktop.DBus.Error.Disconnected", f"write: {e.strerror or e}") from None
        return self._serial

    def send_call(self, destination, path, interface, member, signature="", args=(), flags=0):
        return self.send(Message(METHOD_CALL, path=path, interface=interface, member=member,
                                 signature=signature, body=args, destination=destination, flags=flags))

    def _dispatch(self, m):
        if m.type in (METHOD_RETURN, ERROR) and m.reply_serial is not None:
            self._replies[m.reply_serial] = m
        elif m.type == SIGNAL:
            self.signals.append(m)
        elif m.type == METHOD_CALL and not m.flags & NO_REPLY_EXPECTED and self.sock is not None:
            # nobody is served here
            try:
                self.send(Message(ERROR, error_name="org.freedesktop.DBus.Error.UnknownMethod",
                                  reply_serial=m.serial, destination=m.sender, signature="s",
                                  body=[f"no method {m.interface}.{m.member} here"]))
            except DBusError:
                pass

    def reply(self, serial, timeout=30.0):
        """The body of the reply to `serial` (a list); DBusError for an error reply."""
        deadline = time.monotonic() + timeout
        while serial not in self._replies:
            self._dispatch(self.read_message(deadline))
        m = self._replies.pop(serial)
        if m.type == ERROR:
            text = m.body[0] if m.body and isinstance(m.body[0], str) else ""
            raise DBusError(m.error_name, text)
        return m.body

    def call(self, destination, path, interface, member, signature="", args=(), timeout=30.0):
        return self.reply(self.send_call(destination, path, interface, member, signature, args), timeout)

    def wait_signal(self, match, timeout=30.0):
        """The first signal (kept or yet to come) for which match(msg) is true; it
        is taken off the queue. DBusError(Timeout) when none comes in time."""
        deadline = time.monotonic() + timeout
        i = 0
        while True:
            while i < len(self.signals):
                m = self.signals[i]
                if match(m):
                    del self.signals[i]
                    return m
                i += 1
            self._dispatch(self.read_message(deadline))

    # -- bus helpers --

    def add_match(self, rule):
        """org.freedesktop.DBus.AddMatch, pipelined: returns the serial to check."""
        if not self.bus:
            return None
        return self.send_call(BUS_DEST, BUS_PATH, BUS_IFACE, "AddMatch", "s", [rule])

    def get_property(self, destination, path, interface, name, timeout=30.0):
        v = self.call(destination, path, "org.freedesktop.DBus.Properties", "Get", "ss",
                      [interface, name], timeout)[0]
        return v.value if isinstance(v, Variant) else v


def connect(address=None, bus=True, timeout=10.0):
    """A connection to `address` (default: the system bus)."""
    return Connection.open(address or system_bus_address(), bus=bus, timeout=timeout)


def connect_systemd(timeout=10.0):
    """As go-systemd's NewWithContext (what runc uses): the system bus, and
    for root, systemd's private socket when the bus is not there."""
    try:
        return connect(None, True, timeout)
    except DBusError as e:
        if posix.geteuid() != 0:
            raise
        try:
            return connect(SYSTEMD_PRIVATE, False, timeout)
        except DBusError:
            raise e from None
