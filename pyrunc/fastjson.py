"""JSON through the C accelerator only.

`import json` costs ~6 ms here because json.decoder/scanner import `re`;
`pyrunc state` in total is budgeted at ~10 ms. `_json` (the C half of the
json package) has a complete scanner and encoder that need no regex, so the
hot path reads and writes JSON through it directly. Output matches
json.dumps byte for byte for the options used here.
"""

import _json

_WS = " \t\n\r"


def _parse_constant(name):
    # json.loads accepts NaN/Infinity; the OCI documents never contain them
    # and runc (Go) rejects them, so do we.
    raise ValueError(f"invalid JSON literal {name}")


class _Context:
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_parse_constant)
    memo = None

    def __init__(self):
        self.memo = {}


_scanner = _json.make_scanner(_Context())


def loads(text):
    """Parse one JSON document; ValueError (with a position) if it is not one."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    n = len(text)
    i = 0
    while i < n and text[i] in _WS:
        i += 1
    try:
        obj, end = _scanner(text, i)
    except StopIteration as e:
        raise ValueError(f"invalid JSON at offset {e.value}") from None
    except (ValueError, SystemError):
        # The C scanner reports syntax errors through json.decoder, and fails
        # with a bare SystemError when that module is not loaded (it never is
        # on the hot path). Errors are rare: let the full decoder explain.
        import json
        try:
            json.loads(text)
        except ValueError as e:
            raise ValueError(str(e)) from None
        raise ValueError("invalid JSON") from None
    while end < n and text[end] in _WS:
        end += 1
    if end != n:
        raise ValueError(f"invalid JSON: extra data at offset {end}")
    return obj


def load_file(path):
    with open(path, "rb") as f:
        return loads(f.read())


def _encoder(indent):
    return _json.make_encoder(
        {},  # markers: detect cycles
        _default,
        _json.encode_basestring,  # ensure_ascii=False, as Go's encoding/json
        indent,
        ": " if indent is not None else ":",
        "," if indent is None else ",",
        False,  # sort_keys
        False,  # skipkeys
        False,  # allow_nan
    )


def _default(obj):
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def dumps(obj, indent=None):
    """Compact JSON (Go's json.Marshal layout), or indented by `indent` (spaces, or a string).

    The C encoder only supports indent=None; indented output is built by a
    small recursive writer that reuses the C string encoder.
    """
    if indent is None:
        return "".join(_encoder(None)(obj, 0))
    out = []
    _write_indented(obj, out, indent if isinstance(indent, str) else " " * indent, "\n")
    return "".join(out)


_enc_str = _json.encode_basestring
_compact = None


def _write_indented(obj, out, step, nl):
    global _compact
    if isinstance(obj, dict):
        if not obj:
            out.append("{}")
            return
        inner = nl + step
        out.append("{")
        first = True
        for k, v in obj.items():
            if not first:
                out.append(",")
            first = False
            out.append(inner)
            out.append(_enc_str(str(k)))
            out.append(": ")
            _write_indented(v, out, step, inner)
        out.append(nl)
        out.append("}")
    elif isinstance(obj, (list, tuple)):
        if not obj:
            out.append("[]")
            return
        inner = nl + step
        out.append("[")
        first = True
        for v in obj:
            if not first:
                out.append(",")
            first = False
            out.append(inner)
            _write_indented(v, out, step, inner)
        out.append(nl)
        out.append("]")
    else:
        if _compact is None:
            _compact = _encoder(None)
        out.append("".join(_compact(obj, 0)))
