"""A small, fast JSON Schema draft-04 validator for pyrunc's own schemas.

`create`/`run`/`exec` check config.json / process.json against the project's
schema (schema/config-schema.json, schema/state-schema.json) on every call, so
this module is on the hot path: `import jsonschema` alone costs ~80 ms and
`import re` ~4 ms, while the whole command has a budget of a few ms.

How it stays fast:
  * Module level imports only pyrunc's own modules that import
    nothing expensive (fastjson uses the C `_json` scanner; errors is plain).
  * Each schema is read once per process and compiled into a tree of closures
    (each `$ref`erenced definition compiled once, when first reached); a closure
    returns None when the instance is valid, or, on the first violation, a list
    [message, key_n, ..., key_1] to which each enclosing level appends its key
    while unwinding, so a valid document costs no path bookkeeping at all.
  * The `pattern`s the schemas use are matched by hand-written predicates that
    reproduce Python `re.search` semantics exactly (what jsonschema uses); only
    an unknown pattern makes this module `import re` (lazily, compiled once).

Draft-04 semantics followed (as jsonschema's Draft4Validator): "integer" is an
int but not a bool (JSON 1.0 is a number, not an integer); "array" is a list;
keywords other than "type" only apply to instances of their own type; `$ref`
makes sibling keywords ignored; `pattern` is a search, not an anchored match.
`format` is an annotation in draft-04; the only format enforced is "semver"
(SemVer 2.0.0, config.md's rule for ociVersion), which other validators ignore.
"""

from pyrunc import fastjson
from pyrunc import hostpath
from pyrunc.errors import ConfigError

# name -> (file, JSON pointer inside it)
_SCHEMAS = {
    "config": ("config-schema.json", ""),
    "state": ("state-schema.json", ""),
    "process": ("config-schema.json", "/definitions/Process"),
}

_docs = {}  # file name -> parsed schema document
_compiled = {}  # (file, pointer) -> validator closure
_validators = {}  # schema name -> validator closure
_regex = {}  # pattern -> compiled re (only for patterns without a fast predicate)

# Keywords that carry no assertion in draft-04.
_ANNOTATIONS = frozenset(
    ("$schema", "id", "title", "description", "definitions", "default", "examples", "$comment")
)


def schema_dir():
    """Directory holding the schema files: <pkg>/schema when installed, else <checkout>/schema."""
    here = hostpath.dirname(hostpath.abspath(__file__))
    installed = hostpath.join(here, "schema")
    if hostpath.isfile(hostpath.join(installed, "config-schema.json")):
        return installed
    return hostpath.join(hostpath.dirname(here), "schema")


def validate(instance, schema="config", where="config.json"):
    """Raise ConfigError("<where>: <path>: <message>") on the first violation.

    schema: "config", "state", "process" (the process object of config.json,
    also the format of `exec --process` files), or "<file>.json#<pointer>".
    """
    fn = _validators.get(schema)
    if fn is None:
        fn = _validator(schema)
    err = fn(instance)
    if err is not None:
        raise ConfigError(_format(where, err))


def check(instance, schema="config"):
    """The first violation as "<path>: <message>" (path "(root)" for the root), or None."""
    fn = _validators.get(schema)
    if fn is None:
        fn = _validator(schema)
    err = fn(instance)
    if err is None:
        return None
    return (_path(err) or "(root)") + ": " + err[0]


def is_valid(instance, schema="config"):
    fn = _validators.get(schema)
    if fn is None:
        fn = _validator(schema)
    return fn(instance) is None


# ---------------------------------------------------------------- loading


def _validator(name):
    if name in _SCHEMAS:
        fname, pointer = _SCHEMAS[name]
    elif "#" in name or name.endswith(".json"):
        fname, _, pointer = name.partition("#")
    else:
        raise ValueError(f"unknown schema {name!r}")
    fn = _compile_ref(fname, pointer)
    _validators[name] = fn
    return fn


def _doc(fname):
    doc = _docs.get(fname)
    if doc is None:
        if "/" in fname or fname.startswith("."):
            raise ValueError(f"schema reference outside the schema directory: {fname!r}")
        doc = fastjson.load_file(hostpath.join(schema_dir(), fname))
        _docs[fname] = doc
    return doc


def _pointer(doc, pointer, fname):
    node = doc
    if pointer in ("", "/"):
        return node
    if not pointer.startswith("/"):
        raise ValueError(f"{fname}#{pointer}: only JSON-pointer fragments are supported")
    for part in pointer[1:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, list):
            node = node[int(part)]
        else:
            node = node[part]
    return node


def _compile_ref(fname, pointer):
    key = (fname, pointer)
    fn = _compiled.get(key)
    if fn is not None:
        return fn
    # Compiled on first use: a config reaches a small part of the schema (no
    # windows, solaris, vm or zos; a few resources), and compiling all of it
    # cost ~2.5 ms of every create. Also how recursive schemas terminate.
    cell = []

    def lazy(x):
        if not cell:
            cell.append(_compile(_pointer(_doc(fname), pointer, fname), fname))
            _compiled[key] = cell[0]
        return cell[0](x)

    _compiled[key] = lazy
    return lazy


def _resolve(node, fname):
    """Follow $refs until a node with assertions; returns (node, its file)."""
    seen = 0
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        f, _, pointer = ref.partition("#")
        fname = f or fname
        node = _pointer(_doc(fname), pointer, fname)
        seen += 1
        if seen > 100:
            raise ValueError(f"$ref loop at {ref}")
    return node, fname


# ---------------------------------------------------------------- compiling

_INT_MSG = "expected integer, got "


def _tn(x):
    """JSON type name of a Python value, for messages."""
    if x is None:
        return "null"
    if x is True or x is False:
        return "boolean"
    if isinstance(x, int):
        return "integer"
    if isinstance(x, float):
        return "number"
    if isinstance(x, str):
        return "string"
    if isinstance(x, list):
        return "array"
    if isinstance(x, dict):
        return "object"
    return type(x).__name__


def _is_type(x, t):
    if t == "string":
        return isinstance(x, str)
    if t == "object":
        return isinstance(x, dict)
    if t == "array":
        return isinstance(x, list)
    if t == "integer":
        return isinstance(x, int) and not isinstance(x, bool)
    if t == "boolean":
        return isinstance(x, bool)
    if t == "number":
        return isinstance(x, (int, float)) and not isinstance(x, bool)
    if t == "null":
        return x is None
    if t == "any":
        return True
    raise ValueError(f"unknown type {t!r}")


_PYTYPE = {"string": str, "object": dict, "array": list, "boolean": bool}


def _type_pred(types):
    """A predicate x -> bool for a draft-04 "type" value (string or list)."""
    if isinstance(types, str):
        types = [types]
    types = tuple(types)
    if len(types) == 1:
        t = types[0]
        py = _PYTYPE.get(t)
        if py is not None:
            return lambda x: isinstance(x, py)
        if t == "integer":
            return lambda x: isinstance(x, int) and x.__class__ is not bool
        if t == "number":
            return lambda x: isinstance(x, (int, float)) and x.__class__ is not bool
        if t == "null":
            return lambda x: x is None
    for t in types:
        _is_type(None, t)  # reject unknown type names at compile time
    return lambda x: any(_is_type(x, t) for t in types)


def _type_desc(types):
    return types if isinstance(types, str) else " or ".join(types)


def _show(v):
    """A short JSON rendering of a value for messages."""
    try:
        s = fastjson.dumps(v)
    except (TypeError, ValueError):
        s = repr(v)
    if len(s) > 80:
        s = s[:77] + "..."
    return s


def _equal(a, b):
    """jsonschema's notion of JSON equality: 1 == 1.0, but True != 1."""
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (list, dict)) or isinstance(b, (list, dict)):
        return False
    return a == b


def _compile(node, fname):
    if not isinstance(node, dict):
        raise ValueError(f"{fname}: a schema must be an object, got {_tn(node)}")
    if "$ref" in node:
        ref = node["$ref"]
        f, _, pointer = ref.partition("#")
        return _compile_ref(f or fname, pointer)

    for k in node:
        if k not in _KEYWORDS and k not in _ANNOTATIONS:
            raise ValueError(f"{fname}: unsupported schema keyword {k!r}")

    checks = []
    types = node.get("type")
    if isinstance(types, str) and types in _FAMILY_OF_TYPE:
        # One closure does the type check and that type's keywords; keywords
        # of other types can never apply (the type check fails first).
        checks.append(_FAMILY_OF_TYPE[types](node, fname, types))
    else:
        if types is not None:
            typed = _type_pred(types)
            desc = _type_desc(types)

            def type_check(x):
                if typed(x):
                    return None
                return [f"expected {desc}, got {_tn(x)}"]

            checks.append(type_check)
        # Keywords apply to instances of their own type only.
        for kws, comp in _FAMILIES:
            if _has_any(node, kws):
                checks.append(comp(node, fname, None))

    if "enum" in node:
        checks.append(_compile_enum(node["enum"]))
    if "allOf" in node:
        checks.append(_compile_allof([_compile(s, fname) for s in node["allOf"]]))
    if "anyOf" in node:
        checks.append(_compile_anyof([_compile(s, fname) for s in node["anyOf"]]))
    if "oneOf" in node:
        checks.append(_compile_oneof([_compile(s, fname) for s in node["oneOf"]]))
    if "not" in node:
        checks.append(_compile_not(_compile(node["not"], fname)))

    if not checks:
        return _accept
    if len(checks) == 1:
        return checks[0]
    checks = tuple(checks)

    def all_checks(x):
        for c in checks:
            e = c(x)
            if e is not None:
                return e
        return None

    return all_checks


def _accept(x):
    return None


def _has_any(node, kws):
    for k in kws:
        if k in node:
            return True
    return False


_OBJ_KW = (
    "properties",
    "patternProperties",
    "additionalProperties",
    "required",
    "minProperties",
    "maxProperties",
    "dependencies",
)
_ARR_KW = ("items", "additionalItems", "minItems", "maxItems", "uniqueItems")
_STR_KW = ("pattern", "minLength", "maxLength", "format")
_NUM_KW = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
_KEYWORDS = frozenset(
    _OBJ_KW + _ARR_KW + _STR_KW + _NUM_KW + ("type", "enum", "allOf", "anyOf", "oneOf", "not", "$ref")
)


def _families():
    return (
        (_OBJ_KW, lambda n, f, t: _compile_object(n, f, t == "object")),
        (_ARR_KW, lambda n, f, t: _compile_array(n, f, t == "array")),
        (_STR_KW, lambda n, f, t: _compile_string(n, f, t == "string")),
        (_NUM_KW, lambda n, f, t: _compile_number(n, t)),
    )


_FAMILIES = _families()
_FAMILY_OF_TYPE = {
    "object": _FAMILIES[0][1],
    "array": _FAMILIES[1][1],
    "string": _FAMILIES[2][1],
    "integer": _FAMILIES[3][1],
    "number": _FAMILIES[3][1],
}


def _compile_object(node, fname, typed):
    # Property schemas compile on first use (a config exercises a fraction of
    # the schema: one platform, some of linux); the stub replaces itself in the
    # table, so later calls go straight to the compiled closure.
    props = {}
    for k, s in node.get("properties", {}).items():
        props[k] = _lazy(props, k, s, fname)
    pats = tuple((_matcher(p), _compile(s, fname)) for p, s in node.get("patternProperties", {}).items())
    addl = node.get("additionalProperties", True)
    if addl is True or addl == {}:
        addl_fn = None
        forbid = False
    elif addl is False:
        addl_fn = None
        forbid = True
    else:
        addl_fn = _compile(addl, fname)
        forbid = False
    required = tuple(node.get("required", ()))
    minp = node.get("minProperties", 0)
    maxp = node.get("maxProperties")
    deps = tuple(
        (k, tuple(v) if isinstance(v, list) else _compile(v, fname)) for k, v in node.get("dependencies", {}).items()
    )
    rest = pats or addl_fn is not None or forbid
    extra = minp or maxp is not None or deps
    props_get = props.get

    def obj(x):
        if not isinstance(x, dict):
            if typed:
                return ["expected object, got " + _tn(x)]
            return None
        for k in required:
            if k not in x:
                return [f'missing required property "{k}"']
        if extra:
            e = _object_extra(x, minp, maxp, deps)
            if e is not None:
                return e
        for k, v in x.items():
            c = props_get(k)
            if c is not None:
                e = c(v)
                if e is not None:
                    e.append(k)
                    return e
                if not pats:
                    continue
            elif not rest:
                continue
            matched = c is not None
            for pred, pc in pats:
                if pred(k):
                    matched = True
                    e = pc(v)
                    if e is not None:
                        e.append(k)
                        return e
            if not matched:
                if forbid:
                    return [f"unexpected property {_show(k)}"]
                if addl_fn is not None:
                    e = addl_fn(v)
                    if e is not None:
                        e.append(k)
                        return e
        return None

    return obj


def _lazy(table, key, sub, fname):
    def stub(x):
        fn = _compile(sub, fname)
        table[key] = fn
        return fn(x)

    return stub


def _object_extra(x, minp, maxp, deps):
    if len(x) < minp:
        return [f"expected at least {minp} properties, got {len(x)}"]
    if maxp is not None and len(x) > maxp:
        return [f"expected at most {maxp} properties, got {len(x)}"]
    for k, dep in deps:
        if k not in x:
            continue
        if isinstance(dep, tuple):
            for d in dep:
                if d not in x:
                    return [f'property "{k}" requires property "{d}"']
        else:
            e = dep(x)
            if e is not None:
                return e
    return None


def _simple_items(node, fname):
    """If an items schema is only {"type": <one type>}, its Python type test."""
    node, fname = _resolve(node, fname)
    if not isinstance(node, dict):
        return None
    keys = [k for k in node if k not in _ANNOTATIONS]
    if keys != ["type"] or not isinstance(node["type"], str):
        return None
    return node["type"]


def _compile_array(node, fname, typed):
    items = node.get("items")
    tuple_fns = None
    item_fn = None
    simple = None
    if isinstance(items, list):
        tuple_fns = tuple(_compile(s, fname) for s in items)
        addl = node.get("additionalItems", True)
        if addl is True or addl == {}:
            addl_fn, forbid = None, False
        elif addl is False:
            addl_fn, forbid = None, True
        else:
            addl_fn, forbid = _compile(addl, fname), False
    elif items is not None and items != {}:
        simple = _simple_items(items, fname)
        if simple is not None:
            simple_pred = _type_pred(simple)
        item_fn = _compile(items, fname)
    mn = node.get("minItems", 0)
    mx = node.get("maxItems")
    unique = node.get("uniqueItems", False)

    def arr(x):
        if not isinstance(x, list):
            if typed:
                return ["expected array, got " + _tn(x)]
            return None
        n = len(x)
        if n < mn:
            return [f"expected at least {mn} items, got {n}"]
        if mx is not None and n > mx:
            return [f"expected at most {mx} items, got {n}"]
        if simple is not None:
            if simple == "string":
                for v in x:
                    if not isinstance(v, str):
                        break
                else:
                    return None
            else:
                for v in x:
                    if not simple_pred(v):
                        break
                else:
                    return None
            # slow path: locate and report the bad item
        if item_fn is not None:
            i = 0
            for v in x:
                e = item_fn(v)
                if e is not None:
                    e.append(i)
                    return e
                i += 1
        elif tuple_fns is not None:
            i = 0
            for v in x:
                if i < len(tuple_fns):
                    e = tuple_fns[i](v)
                elif forbid:
                    return [f"expected at most {len(tuple_fns)} items, got {n}"]
                elif addl_fn is not None:
                    e = addl_fn(v)
                else:
                    break
                if e is not None:
                    e.append(i)
                    return e
                i += 1
        if unique:
            for i in range(n):
                for j in range(i + 1, n):
                    if _equal(x[i], x[j]):
                        return [f"items {i} and {j} are equal; items must be unique"]
        return None

    return arr


def _compile_string(node, fname, typed):
    pat = node.get("pattern")
    pred = _matcher(pat) if pat is not None else None
    mn = node.get("minLength", 0)
    mx = node.get("maxLength")
    fmt = _FORMATS.get(node.get("format"))
    if pat is not None:
        pat_msg = " does not match " + _show(pat)

    def string(x):
        if not isinstance(x, str):
            if typed:
                return ["expected string, got " + _tn(x)]
            return None
        if mn and len(x) < mn:
            return [f"{_show(x)} is shorter than {mn} characters"]
        if mx is not None and len(x) > mx:
            return [f"{_show(x)} is longer than {mx} characters"]
        if pred is not None and not pred(x):
            return [_show(x) + pat_msg]
        if fmt is not None and not fmt[0](x):
            return [_show(x) + fmt[1]]
        return None

    if pred is None and fmt is None and not mn and mx is None:
        if not typed:
            return _accept

        def plain(x):
            if isinstance(x, str):
                return None
            return ["expected string, got " + _tn(x)]

        return plain
    return string


def _compile_number(node, types):
    lo = node.get("minimum")
    hi = node.get("maximum")
    xlo = node.get("exclusiveMinimum", False)
    xhi = node.get("exclusiveMaximum", False)
    mult = node.get("multipleOf")
    integer = types == "integer"
    number = types == "number"

    if integer and lo is not None and hi is not None and not xlo and not xhi and mult is None:
        # The common case (defs.json's int8 ... uint64): one closure, no calls.
        def int_range(x):
            if isinstance(x, int) and x.__class__ is not bool:
                if lo <= x <= hi:
                    return None
                if x < lo:
                    return [f"{x} is less than the minimum of {lo}"]
                return [f"{x} is greater than the maximum of {hi}"]
            return [_INT_MSG + _tn(x)]

        return int_range

    def num(x):
        if not isinstance(x, (int, float)) or isinstance(x, bool):
            if integer or number:
                return [f"expected {types}, got {_tn(x)}"]
            return None
        if integer and not isinstance(x, int):
            return [_INT_MSG + _tn(x)]
        if lo is not None:
            if xlo:
                if x <= lo:
                    return [f"{_show(x)} is less than or equal to the exclusive minimum of {lo}"]
            elif x < lo:
                return [f"{_show(x)} is less than the minimum of {lo}"]
        if hi is not None:
            if xhi:
                if x >= hi:
                    return [f"{_show(x)} is greater than or equal to the exclusive maximum of {hi}"]
            elif x > hi:
                return [f"{_show(x)} is greater than the maximum of {hi}"]
        if mult is not None:
            if isinstance(mult, float):
                q = x / mult
                try:
                    failed = int(q) != q
                except OverflowError:
                    failed = True
            else:
                failed = x % mult
            if failed:
                return [f"{_show(x)} is not a multiple of {mult}"]
        return None

    return num


def _compile_enum(values):
    values = list(values)
    shown = "[" + ", ".join(_show(v) for v in values) + "]"
    if all(isinstance(v, str) for v in values):
        strings = frozenset(values)

        def str_enum(x):
            if isinstance(x, str) and x in strings:
                return None
            return [f"{_show(x)} is not one of {shown}"]

        return str_enum

    def enum(x):
        for v in values:
            if _equal(x, v):
                return None
        return [f"{_show(x)} is not one of {shown}"]

    return enum


def _compile_allof(fns):
    def all_of(x):
        for f in fns:
            e = f(x)
            if e is not None:
                return e
        return None

    return all_of


def _compile_anyof(fns):
    if len(fns) == 1:
        return fns[0]

    def any_of(x):
        for f in fns:
            if f(x) is None:
                return None
        return ["does not match any of the allowed schemas (anyOf)"]

    return any_of


def _compile_oneof(fns):
    def one_of(x):
        n = 0
        for f in fns:
            if f(x) is None:
                n += 1
        if n == 1:
            return None
        if n == 0:
            return ["does not match any of the allowed schemas (oneOf)"]
        return ["matches more than one of the schemas (oneOf)"]

    return one_of


def _compile_not(fn):
    def not_(x):
        if fn(x) is None:
            return ["must not match the schema (not)"]
        return None

    return not_


# ---------------------------------------------------------------- patterns
#
# Exact equivalents of re.search(pattern, s) for the patterns in the schemas.
# Python's `$` (no MULTILINE) matches at the end or before a final "\n", and
# `.` matches anything but "\n"; tests/test_schema.py checks each predicate
# against re.search on generated strings.


def _chomp(s):
    return s[:-1] if s.endswith("\n") else s


def _p_nonempty_key(s):  # .{1,}
    return s.strip("\n") != ""


def _p_rlimit(s):  # ^RLIMIT_[A-Z]+$
    t = _chomp(s)
    rest = t[7:]
    return t.startswith("RLIMIT_") and rest != "" and rest.isascii() and rest.isalpha() and rest.isupper()


def _p_cpu_list(s):  # ^[0-9, -]*$
    return _chomp(s).strip("0123456789, -") == ""


def _p_hugepage(s):  # ^[1-9][0-9]*[KMG]B$
    t = _chomp(s)
    return (
        len(t) >= 3
        and t[0] in "123456789"
        and t[-2] in "KMG"
        and t[-1] == "B"
        and t[1:-2].strip("0123456789") == ""
    )


def _p_membw(s):  # ^MB:[^\n]*$
    t = _chomp(s)
    return t.startswith("MB:") and "\n" not in t


def _p_filetype(s):  # ^[cbup]$
    return _chomp(s) in ("c", "b", "u", "p")


_FAST_PATTERNS = {
    ".{1,}": _p_nonempty_key,
    "^RLIMIT_[A-Z]+$": _p_rlimit,
    "^[0-9, -]*$": _p_cpu_list,
    "^[1-9][0-9]*[KMG]B$": _p_hugepage,
    "^MB:[^\\n]*$": _p_membw,
    "^[cbup]$": _p_filetype,
}


def _matcher(pattern):
    fast = _FAST_PATTERNS.get(pattern)
    if fast is not None:
        return fast

    def search(s):
        rx = _regex.get(pattern)
        if rx is None:
            import re  # only when a string meets a pattern without a fast predicate

            rx = _regex[pattern] = re.compile(pattern)
        return rx.search(s) is not None

    return search


# ---------------------------------------------------------------- formats


def _semver_ident(part, numeric_no_leading_zero):
    if not part:
        return False
    for ch in part:
        if not (ch.isascii() and (ch.isalnum() or ch == "-")):
            return False
    if numeric_no_leading_zero and part.isdigit() and len(part) > 1 and part[0] == "0":
        return False
    return True


def is_semver(s):
    """SemVer 2.0.0: MAJOR.MINOR.PATCH[-prerelease][+build], no leading zeros."""
    main, plus, build = s.partition("+")
    if plus and not all(_semver_ident(p, False) for p in build.split(".")):
        return False
    core, dash, pre = main.partition("-")
    if dash and not all(_semver_ident(p, True) for p in pre.split(".")):
        return False
    nums = core.split(".")
    if len(nums) != 3:
        return False
    for n in nums:
        if not (n.isascii() and n.isdigit()) or (len(n) > 1 and n[0] == "0"):
            return False
    return True


_FORMATS = {"semver": (is_semver, " does not match the version pattern (SemVer 2.0.0, e.g. \"1.3.0\")")}


# ---------------------------------------------------------------- messages


def _path(err):
    out = []
    for i in range(len(err) - 1, 0, -1):
        k = err[i]
        if isinstance(k, int):
            out.append(f"[{k}]")
        elif k and (k.replace("_", "a").isalnum() and k.isascii()) and not k[0].isdigit():
            out.append("." + k if out else k)
        else:
            out.append("[" + _show(k) + "]")
    return "".join(out)


def _format(where, err):
    path = _path(err)
    if path:
        return f"{where}: {path}: {err[0]}"
    return f"{where}: {err[0]}"
