"""pyrunc's schema (schema/*.json) and its fast validator (pyrunc.schemacheck).

Three judges are compared on every document:
  * official  - jsonschema Draft4Validator + the runtime-spec v1.3.0 schema files
                (../shared/oci-runtime-spec/schema, multi-file, relative $refs);
  * project   - jsonschema Draft4Validator + the project's schema/ files;
  * fast      - pyrunc.schemacheck.
official and project must always agree. fast must agree with project, except
for the one rule the project adds on top of the official schema: a config's
ociVersion must be SemVer 2.0.0 (config.md says MUST; the official schema only
says "string"). It is written as draft-04 `"format": "semver"`, which
jsonschema ignores and schemacheck enforces.
"""

import copy
import json
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pyrunc import schemacheck  # noqa: E402
from pyrunc.errors import ConfigError, PyruncError  # noqa: E402

SHARED = ROOT.parent / "shared"
OFFICIAL = SHARED / "oci-runtime-spec" / "schema"
CLIENTS = SHARED / "client-configs"
PROJECT = ROOT / "schema"

needs_shared = pytest.mark.skipif(not OFFICIAL.is_dir(), reason="../shared/oci-runtime-spec not available")

SETTINGS = settings(
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# ------------------------------------------------------------------ judges

_cache = {}


def _validator(kind, directory, entry):
    key = (kind, directory)
    if key in _cache:
        return _cache[key]
    from jsonschema import Draft4Validator
    from referencing import Registry
    from referencing.jsonschema import DRAFT4

    registry = Registry().with_resources(
        (p.name, DRAFT4.create_resource(json.loads(p.read_text()))) for p in sorted(directory.glob("*.json"))
    )
    v = Draft4Validator({"$ref": entry[kind]}, registry=registry)
    _cache[key] = v
    return v


OFFICIAL_ENTRY = {
    "config": "config-schema.json",
    "state": "state-schema.json",
    "process": "config-schema.json#/properties/process",
}
PROJECT_ENTRY = {
    "config": "config-schema.json",
    "state": "state-schema.json",
    "process": "config-schema.json#/definitions/Process",
}


class Unresolvable(Exception):
    """The official schema cannot be applied (see test_vm_irqs_upstream_ref_typo)."""


def official_ok(doc, kind="config"):
    from referencing.exceptions import Unresolvable as RefUnresolvable

    try:
        return _validator(kind, OFFICIAL, OFFICIAL_ENTRY).is_valid(doc)
    except RefUnresolvable as e:  # jsonschema wraps it, keeping the type
        raise Unresolvable(str(e)) from e


def project_ok(doc, kind="config"):
    return _validator(kind, PROJECT, PROJECT_ENTRY).is_valid(doc)


def fast_ok(doc, kind="config"):
    ok = schemacheck.is_valid(doc, kind)
    try:
        schemacheck.validate(doc, kind, f"{kind}.json")
    except ConfigError as e:
        assert not ok
        assert str(e).startswith(f"{kind}.json: ")
        assert schemacheck.check(doc, kind) is not None
    else:
        assert ok
        assert schemacheck.check(doc, kind) is None
    return ok


# semver.org's regex, ASCII-only, anchored with fullmatch.
_NUM = r"(?:0|[1-9][0-9]*)"
_PRE_ID = r"(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)"
SEMVER_RE = re.compile(
    rf"{_NUM}\.{_NUM}\.{_NUM}(?:-{_PRE_ID}(?:\.{_PRE_ID})*)?(?:\+[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*)?"
)


def extra_ok(doc, kind):
    """The project's one addition: config ociVersion is SemVer 2.0.0."""
    if kind != "config" or not isinstance(doc, dict):
        return True
    v = doc.get("ociVersion")
    return not isinstance(v, str) or SEMVER_RE.fullmatch(v) is not None


def assert_agree(doc, kind="config"):
    """All three judges agree (modulo the SemVer rule); returns the verdict."""
    proj = project_ok(doc, kind)
    try:
        off = official_ok(doc, kind)
    except Unresolvable:
        off = None  # upstream's broken "#definitions/uint32" ref (vm.hwConfig.irqs)
    if off is not None:
        assert off == proj, f"official={off} project={proj}: {json.dumps(doc)[:400]}"
    fast = fast_ok(doc, kind)
    expected = proj and extra_ok(doc, kind)
    assert fast == expected, (
        f"schemacheck={fast} expected={expected} ({schemacheck.check(doc, kind)}): {json.dumps(doc)[:400]}"
    )
    return proj


# ------------------------------------------------------------------ documents


def _load(path):
    try:
        return True, json.loads(path.read_text())
    except ValueError:
        return False, None


def official_cases():
    if not OFFICIAL.is_dir():
        return []
    out = []
    for kind in ("config", "state"):
        for verdict in ("good", "bad"):
            for p in sorted((OFFICIAL / "test" / kind / verdict).glob("*.json")):
                out.append(pytest.param(kind, verdict == "good", p, id=f"{kind}/{verdict}/{p.name}"))
    return out


def client_cases():
    if not CLIENTS.is_dir():
        return []
    out = []
    for p in sorted(CLIENTS.glob("*.json")):
        kind = "process" if p.name.endswith(".process.json") else "config"
        out.append(pytest.param(kind, p, id=p.name))
    return out


def good_configs():
    docs = []
    if OFFICIAL.is_dir():
        for p in sorted((OFFICIAL / "test" / "config" / "good").glob("*.json")):
            docs.append(json.loads(p.read_text()))
    if CLIENTS.is_dir():
        for p in sorted(CLIENTS.glob("*.config.json")):
            docs.append(json.loads(p.read_text()))
    return docs


def good_processes():
    docs = [d["process"] for d in good_configs() if "process" in d]
    if CLIENTS.is_dir():
        for p in sorted(CLIENTS.glob("*.process.json")):
            docs.append(json.loads(p.read_text()))
    return docs


def good_states():
    docs = [
        {"ociVersion": "1.3.0", "id": "c1", "status": "created", "pid": 4422, "bundle": "/b", "annotations": {"a": "b"}},
        {"ociVersion": "1.3.0", "id": "c1", "status": "stopped", "bundle": "/b"},
    ]
    if OFFICIAL.is_dir():
        for p in sorted((OFFICIAL / "test" / "state" / "good").glob("*.json")):
            docs.append(json.loads(p.read_text()))
    return docs


# ------------------------------------------------------------------ the schema files


def test_project_schemas_are_valid_draft4_with_local_refs():
    from jsonschema import Draft4Validator

    files = sorted(PROJECT.glob("*.json"))
    assert {p.name for p in files} >= {"config-schema.json", "state-schema.json"}
    for p in files:
        doc = json.loads(p.read_text())
        Draft4Validator.check_schema(doc)
        assert doc.get("$schema") == "http://json-schema.org/draft-04/schema#"
        refs = []

        def walk(n):
            if isinstance(n, dict):
                if isinstance(n.get("$ref"), str):
                    refs.append(n["$ref"])
                for v in n.values():
                    walk(v)
            elif isinstance(n, list):
                for v in n:
                    walk(v)

        walk(doc)
        for ref in refs:
            f, _, pointer = ref.partition("#")
            target = json.loads((PROJECT / f).read_text()) if f else doc
            assert "/" not in f and pointer.startswith("/"), ref
            for part in pointer[1:].split("/"):
                target = target[part]  # KeyError = dangling ref


_NOT_ASSERTIONS = {"description", "title", "$schema", "id", "definitions"}


def normalized(directory, fname, node=None, _depth=0):
    """A schema with every $ref inlined and annotations dropped, for comparison.

    Draft-04 ignores the siblings of "$ref", and {"anyOf": [X]} is X. Known,
    deliberate differences are normalised away: upstream's "#definitions/uint32"
    typo (read as the JSON pointer it means) and the project's "format".
    """
    assert _depth < 50
    if node is None:
        node = json.loads((directory / fname).read_text())
    if isinstance(node, list):
        return [normalized(directory, fname, n, _depth + 1) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"].replace("#definitions/", "#/definitions/")
        f, _, pointer = ref.partition("#")
        f = f or fname
        target = json.loads((directory / f).read_text())
        for part in pointer.strip("/").split("/"):
            if part:
                target = target[part]
        return normalized(directory, f, target, _depth + 1)
    if list(node) == ["anyOf"] and len(node["anyOf"]) == 1:
        return normalized(directory, fname, node["anyOf"][0], _depth + 1)
    out = {}
    for k, v in node.items():
        if k in _NOT_ASSERTIONS or k == "format":
            continue
        if k in ("properties", "patternProperties"):
            out[k] = {kk: normalized(directory, fname, vv, _depth + 1) for kk, vv in v.items()}
        else:
            out[k] = normalized(directory, fname, v, _depth + 1)
    return out


@needs_shared
@pytest.mark.parametrize("fname", ["config-schema.json", "state-schema.json"])
def test_project_schema_is_the_official_schema_restructured(fname):
    """Structural proof of agreement: with $refs inlined the two are identical."""
    assert normalized(PROJECT, fname) == normalized(OFFICIAL, fname)


def test_project_schema_adds_only_the_semver_format():
    formats = []

    def walk(n, path):
        if isinstance(n, dict):
            if isinstance(n.get("format"), str) and not path.endswith("/properties"):
                formats.append((path, n["format"]))
            for k, v in n.items():
                walk(v, path + "/" + k)
        elif isinstance(n, list):
            for i, v in enumerate(n):
                walk(v, path + "/" + str(i))

    for p in sorted(PROJECT.glob("*.json")):
        walk(json.loads(p.read_text()), p.name + "#")
    assert formats == [("config-schema.json#/definitions/ociVersion", "semver")]


def test_schema_dir_and_unknown_schema():
    assert pathlib.Path(schemacheck.schema_dir()) in (PROJECT, ROOT / "pyrunc" / "schema")
    with pytest.raises(ValueError):
        schemacheck.validate({}, "nonsense")


@pytest.mark.parametrize("fname", ["config-schema.json", "state-schema.json"])
def test_every_definition_compiles(fname):
    """Definitions are compiled when an instance first reaches them; each one
    still compiles (no unsupported keyword waits in a corner no test reaches)."""
    doc = json.loads((PROJECT / fname).read_text())
    for name in doc.get("definitions", {}):
        schemacheck.is_valid(None, f"{fname}#/definitions/{name}")
        schemacheck._compile(doc["definitions"][name], fname)


def test_every_pattern_has_a_fast_predicate():
    """The hot path never imports re: all schema patterns have hand-written matchers."""
    patterns = set()

    def walk(n):
        if isinstance(n, dict):
            if isinstance(n.get("pattern"), str):
                patterns.add(n["pattern"])
            patterns.update(n.get("patternProperties", {}))
            for v in n.values():
                walk(v)
        elif isinstance(n, list):
            for v in n:
                walk(v)

    for p in PROJECT.glob("*.json"):
        walk(json.loads(p.read_text()))
    assert patterns and patterns <= set(schemacheck._FAST_PATTERNS)


_PATTERN_ALPHABET = "RLIMT_AZaz019,- \nMBKGcbupx:.\r\u00e9\u0661"


@pytest.mark.parametrize("pattern", sorted(schemacheck._FAST_PATTERNS))
@SETTINGS
@given(data=st.data())
def test_fast_pattern_equals_re_search(pattern, data):
    samples = {
        ".{1,}": ["", "\n", "\n\n", "a", "\na", "a\n", "\r"],
        "^RLIMIT_[A-Z]+$": ["RLIMIT_NOFILE", "RLIMIT_NOFILE\n", "RLIMIT_\n", "RLIMIT_A\n\n", "xRLIMIT_A", "RLIMIT_É"],
        "^[0-9, -]*$": ["", "\n", "0-3,7", "0-3\n", "0-3\n\n", "a", "١"],
        "^[1-9][0-9]*[KMG]B$": ["2MB", "64kB", "1GB\n", "10KB", "0MB", "1MB\n\n", "MB", "1١MB"],
        "^MB:[^\\n]*$": ["MB:", "MB:0=20;1=70", "MB:x\n", "MB:x\ny", "MB:\n\n", "mb:"],
        "^[cbup]$": ["c", "b\n", "u\n\n", "cc", "", "p"],
    }[pattern]
    s = data.draw(st.one_of(st.sampled_from(samples), st.text(_PATTERN_ALPHABET, max_size=12)))
    pfx = data.draw(st.sampled_from(["", "RLIMIT_", "MB:", "1", "2M"]))
    s = pfx + s if data.draw(st.booleans()) else s
    assert schemacheck._FAST_PATTERNS[pattern](s) == (re.search(pattern, s) is not None), repr(s)


@SETTINGS
@given(
    st.one_of(
        st.sampled_from(["1.0.0", "1.3.0", "0.5.0-dev", "1.0.2-dev", "1.0.0-rc.1+build.5", "01.0.0", "1.0", "invalid",
                         "1.0.0-", "1.0.0+", "1.0.0-01", "1.0.0-0a", "1.0.0+01", "1.0.0-a..b", "", "1.0.0\n", "١.0.0"]),
        st.text("0123456789.-+aZ\u0661", max_size=14),
    )
)
def test_semver_matches_reference_regex(s):
    assert schemacheck.is_semver(s) == (SEMVER_RE.fullmatch(s) is not None), repr(s)


# ------------------------------------------------------------------ official tests and client configs


@needs_shared
@pytest.mark.parametrize("kind,good,path", official_cases())
def test_official_test_documents(kind, good, path):
    parsed, doc = _load(path)
    if not parsed:
        assert not good  # unparsable JSON is bad for every judge
        with pytest.raises(ValueError):
            from pyrunc import fastjson

            fastjson.loads(path.read_text())
        return
    assert official_ok(doc, kind) is good
    assert assert_agree(doc, kind) is good


@needs_shared
@pytest.mark.parametrize("kind,path", client_cases())
def test_client_configs(kind, path):
    doc = json.loads(path.read_text())
    assert official_ok(doc, kind)
    assert assert_agree(doc, kind)


# ------------------------------------------------------------------ explicit cases

MIN = {"ociVersion": "1.3.0", "root": {"path": "rootfs"}, "process": {"cwd": "/", "args": ["sh"]}}


def with_(base=None, **changes):
    doc = copy.deepcopy(MIN if base is None else base)
    for dotted, value in changes.items():
        node = doc
        keys = dotted.split("__")
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        if value is DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value
    return doc


DELETE = object()


def message(doc, kind="config", where="config.json"):
    with pytest.raises(ConfigError) as ei:
        schemacheck.validate(doc, kind, where)
    assert isinstance(ei.value, PyruncError)
    return str(ei.value)


@needs_shared
def test_oci_version_invalid_rejected_although_official_schema_accepts_it():
    doc = with_(ociVersion="invalid")
    assert official_ok(doc) and project_ok(doc)  # upstream: {"type": "string"} only
    assert message(doc) == 'config.json: ociVersion: "invalid" does not match the version pattern (SemVer 2.0.0, e.g. "1.3.0")'
    assert_agree(doc)
    assert_agree(with_(ociVersion="1.0.2-dev"))
    assert "expected string, got integer" in message(with_(ociVersion=1))
    assert message(with_(ociVersion=DELETE)) == 'config.json: missing required property "ociVersion"'


@needs_shared
def test_unknown_properties_and_annotations_accepted():
    doc = with_(
        fooBar={"anything": [1, None]},
        annotations={"org.example.key": "v", "com.vendor/x": "", "": 5, "\n": 7},
        process__unknownField=3,
        linux={"unknownLinux": True, "resources": {"unknownRes": "x"}},
    )
    assert assert_agree(doc)
    assert message(with_(annotations={"org.example.key": 1})) == (
        'config.json: annotations["org.example.key"]: expected string, got integer'
    )
    assert not assert_agree(with_(annotations={"org.example.key": 1}))


@needs_shared
def test_process_args_optional_and_may_be_empty_per_official_schema():
    # config.md wants at least one args entry on POSIX, but the schema does not
    # say so (args is optional, "commandLine" replaces it on Windows); the
    # runtime checks that when it starts a process, not here.
    assert assert_agree(with_(process={"cwd": "/"}))
    assert assert_agree(with_(process__args=[]))
    assert assert_agree({"cwd": "/"}, "process")
    assert message(with_(process__args="sh")) == "config.json: process.args: expected array, got string"
    assert message({"args": ["sh"]}, "process", "process.json") == 'process.json: missing required property "cwd"'
    assert message(with_(process__args=["sh", 1])) == "config.json: process.args[1]: expected string, got integer"
    assert not assert_agree(with_(process__cwd=DELETE))


@needs_shared
def test_namespaces():
    ns = [{"type": t} for t in ("mount", "pid", "network", "uts", "ipc", "user", "cgroup", "time")]
    assert assert_agree(with_(linux={"namespaces": ns}))
    bad = with_(linux={"namespaces": [{"type": "pid"}, {"type": "foo", "path": "/x"}]})
    assert not assert_agree(bad)
    assert message(bad) == (
        'config.json: linux.namespaces[1].type: "foo" is not one of '
        '["mount", "pid", "network", "uts", "ipc", "user", "cgroup", "time"]'
    )
    assert not assert_agree(with_(linux={"namespaces": [{"path": "/proc/1/ns/pid"}]}))
    # z/OS has its own, smaller list
    assert not assert_agree(with_(zos={"namespaces": [{"type": "user"}]}))
    assert assert_agree(with_(zos={"namespaces": [{"type": "uts"}]}))


@needs_shared
def test_integer_semantics():
    assert assert_agree(with_(process__user={"uid": 0, "gid": 4294967295}))
    for bad in (1.0, True, -1, 4294967296, "0", None):
        assert not assert_agree(with_(process__user={"uid": bad})), bad
    assert message(with_(process__user={"uid": 1.0})) == "config.json: process.user.uid: expected integer, got number"
    assert message(with_(process__user={"uid": -1})) == "config.json: process.user.uid: -1 is less than the minimum of 0"
    assert assert_agree(with_(linux={"resources": {"memory": {"limit": -1, "swap": 9223372036854775807}}}))
    assert not assert_agree(with_(linux={"resources": {"memory": {"limit": 9223372036854775808}}}))
    assert assert_agree(with_(process__rlimits=[{"type": "RLIMIT_NOFILE", "soft": 0, "hard": 18446744073709551615}]))
    assert not assert_agree(with_(process__rlimits=[{"type": "RLIMIT_NOFILE", "soft": 0, "hard": 18446744073709551616}]))
    assert not assert_agree(with_(process__rlimits=[{"type": "RLIMIT_nofile", "soft": 0, "hard": 1}]))
    assert assert_agree(with_(hooks={"prestart": [{"path": "/bin/true", "timeout": 1}]}))
    assert not assert_agree(with_(hooks={"prestart": [{"path": "/bin/true", "timeout": 0}]}))


@needs_shared
def test_other_platforms():
    assert assert_agree(with_(windows={"layerFolders": ["C:\\l"]}))
    assert not assert_agree(with_(windows={"layerFolders": []}))
    assert not assert_agree(with_(windows={}))
    assert not assert_agree(with_(vm={}))
    assert assert_agree(with_(vm={"kernel": {"path": "/k"}, "image": {"path": "/i", "format": "qcow2"}}))
    # hwConfig.iomems is a one-element tuple form: only the first item is checked
    iomem = {"firstMFN": 1, "nrMFNs": 2}
    assert assert_agree(with_(vm={"kernel": {"path": "/k"}, "hwConfig": {"iomems": [iomem, "anything"]}}))
    assert not assert_agree(with_(vm={"kernel": {"path": "/k"}, "hwConfig": {"iomems": ["x", iomem]}}))
    assert assert_agree(with_(solaris={"anet": [{"linkname": "net0"}]}))
    assert not assert_agree(with_(freebsd={"jail": {"host": "disable"}}))
    assert assert_agree(with_(freebsd={"jail": {"ip4": "disable"}}))


@needs_shared
def test_vm_irqs_upstream_ref_typo():
    # defs.json's ArrayOfUint32 items are {"$ref": "#definitions/uint32"}: not a
    # JSON pointer, so jsonschema cannot resolve it once irqs has an item. The
    # project schema uses the evident intent, uint32.
    doc = with_(vm={"kernel": {"path": "/k"}, "hwConfig": {"irqs": [1, 2]}})
    with pytest.raises(Unresolvable):
        official_ok(doc)
    assert official_ok(with_(vm={"kernel": {"path": "/k"}, "hwConfig": {"irqs": []}}))
    assert assert_agree(doc)
    assert not assert_agree(with_(vm={"kernel": {"path": "/k"}, "hwConfig": {"irqs": [-1]}}))


@needs_shared
def test_state():
    for doc in good_states():
        assert assert_agree(doc, "state")
    bad = dict(good_states()[0], status="paused")
    assert not assert_agree(bad, "state")
    assert message(bad, "state", "state.json") == (
        'state.json: status: "paused" is not one of ["creating", "created", "running", "stopped"]'
    )
    # the SemVer rule is for config.json only
    assert assert_agree(dict(good_states()[0], ociVersion="whatever"), "state")


def test_no_expensive_imports_on_the_hot_path():
    cfg = CLIENTS / "podman-run-memory-cpus-pids.config.json"
    if not cfg.exists():
        cfg = None
    code = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from pyrunc import fastjson, schemacheck
doc = fastjson.load_file({str(cfg)!r}) if {cfg is not None} else {json.dumps(MIN)!r}
if isinstance(doc, str): doc = fastjson.loads(doc)
doc["ociVersion"] = "1.0.2-dev"
doc.setdefault("annotations", {{}})["a.b"] = "c"
doc.setdefault("process", {{}}).setdefault("rlimits", []).append({{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}})
schemacheck.validate(doc)
schemacheck.validate(doc["process"], "process", "process.json")
bad = [m for m in ("json", "re", "typing", "enum", "functools", "dataclasses", "collections", "jsonschema") if m in sys.modules]
print(",".join(bad))
"""
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", out.stdout


# ------------------------------------------------------------------ generated mutations

JUNK = [None, True, False, 0, -1, 1, 1.0, 0.5, -0.0, 2**31, 2**32, 2**63, 2**64, -(2**63) - 1, 2**70, "", "x",
        "invalid", "RLIMIT_NOFILE", "2MB", [], [""], [1], {}, {"x": 1}, {"unknown": {"deep": [None]}}]


def all_paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from all_paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from all_paths(v, prefix + (i,))


def get(doc, path):
    for k in path:
        doc = doc[k]
    return doc


def tweaks(v):
    """Type-preserving near misses for a value."""
    if isinstance(v, bool):
        return [not v, int(v), str(v).lower()]
    if isinstance(v, int):
        return [v + 1, -v - 1, v * 2**32, float(v), 2**64 - 1, 2**64, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, str(v)]
    if isinstance(v, float):
        return [int(v), -v, v + 0.5]
    if isinstance(v, str):
        return ["", v + "x", v.lower(), v.upper(), v + "\n", "x" + v, v[:-1], 0]
    if isinstance(v, list):
        return [[], v + v[:1], v[:-1], v + [None], v + [1], [v], {}]
    if isinstance(v, dict):
        return [{}, [], dict(v, zzUnknown=1), dict(v, zzUnknown={"x": [1]})]
    return []


@st.composite
def mutated(draw, bases):
    doc = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 3))):
        paths = list(all_paths(doc))
        path = draw(st.sampled_from(paths))
        target = get(doc, path)
        op = draw(st.sampled_from(["delete", "junk", "tweak", "tweak", "add"]))
        if op == "delete" and path:
            parent = get(doc, path[:-1])
            del parent[path[-1]]
            continue
        if op == "add" and isinstance(target, dict):
            key = draw(st.sampled_from(["zzUnknown", "type", "path", "limit", "args", "x.y/z", "", "\n"]))
            target[key] = draw(st.sampled_from(JUNK))
            continue
        choices = tweaks(target) if op == "tweak" else []
        value = draw(st.sampled_from(choices or JUNK))
        if not path:
            doc = value
            break
        get(doc, path[:-1])[path[-1]] = copy.deepcopy(value)
    return doc


# Schema-directed mutations: walk the project schema to reach every property
# (including platforms absent from the base documents) and put there boundary
# values, enum members and near misses, wrong types and minimal objects.

def _project_schema():
    return json.loads((PROJECT / "config-schema.json").read_text())


def deref(node, root):
    while isinstance(node, dict) and "$ref" in node:
        target = root
        for part in node["$ref"].partition("#")[2].strip("/").split("/"):
            target = target[part]
        node = target
    return node


def schema_sites(root, start, max_depth=7):
    """(path, schema node) for every location reachable from start."""
    out = []

    def walk(node, path, depth):
        node = deref(node, root)
        out.append((path, node))
        if depth >= max_depth or not isinstance(node, dict):
            return
        subs = [node] + [deref(s, root) for s in node.get("allOf", []) + node.get("anyOf", [])]
        for sub in subs:
            for k, s in sub.get("properties", {}).items():
                walk(s, path + (k,), depth + 1)
            for i, (pat, s) in enumerate(sub.get("patternProperties", {}).items()):
                walk(s, path + ("key.%d" % i,), depth + 1)
            if isinstance(sub.get("additionalProperties"), dict):
                walk(sub["additionalProperties"], path + ("dev0",), depth + 1)
            items = sub.get("items")
            if isinstance(items, dict):
                walk(items, path + (0,), depth + 1)
            elif isinstance(items, list):
                for i, s in enumerate(items):
                    walk(s, path + (i,), depth + 1)

    walk(start, (), 0)
    return out


PATTERN_SAMPLES = {
    "^RLIMIT_[A-Z]+$": ["RLIMIT_CORE", "RLIMIT_", "rlimit_core", "RLIMIT_CORE\n"],
    "^[0-9, -]*$": ["0-3,7", "", "a", "1\n"],
    "^[1-9][0-9]*[KMG]B$": ["2MB", "1GB", "64kB", "0MB"],
    "^MB:[^\\n]*$": ["MB:0=20", "MB:", "L3:0=f", "MB:\nx"],
    "^[cbup]$": ["c", "b", "u", "p", "x", "cb"],
}


def good_value(node, root, depth=0):
    node = deref(node, root)
    if "allOf" in node:
        out = {}
        for s in node["allOf"]:
            v = good_value(s, root, depth + 1)
            if isinstance(v, dict):
                out.update(v)
        return out
    if "enum" in node:
        return node["enum"][0]
    t = node.get("type")
    if t == "integer":
        return node.get("minimum", 0) if node.get("minimum", 0) > 0 else 0
    if t == "string":
        return PATTERN_SAMPLES.get(node.get("pattern"), ["x"])[0] if node.get("format") != "semver" else "1.3.0"
    if t == "boolean":
        return True
    if t == "array":
        n = node.get("minItems", 0)
        items = node.get("items", {})
        if isinstance(items, list):
            items = items[0] if items else {}
        return [good_value(items, root, depth + 1) for _ in range(n)]
    if t == "object" or "properties" in node:
        return {k: good_value(node["properties"][k], root, depth + 1) for k in node.get("required", ()) if depth < 8}
    return "x"


def candidate_values(node, root):
    node = deref(node, root)
    vals = [good_value(node, root)]
    t = node.get("type")
    for e in node.get("enum", []):
        vals += [e, e.lower() + "x", e.upper()]
    if t == "integer":
        lo, hi = node.get("minimum"), node.get("maximum")
        for b in (lo, hi):
            if b is not None:
                vals += [b, b - 1, b + 1, float(b)]
        vals += [0, -1, 1.5, True, "1"]
    if t == "string":
        vals += PATTERN_SAMPLES.get(node.get("pattern"), []) + ["", "x", 1, None]
    if t == "array":
        vals += [[], [None], [1], ["x"], [{}], "x", {}]
        g = good_value(node, root)
        vals += [g + g[:1]] if g else []
    if t == "object" or "properties" in node:
        g = good_value(node, root)
        vals += [{}, [], "x", dict(g, zzUnknown=[1])]
        for k in list(g):
            vals.append({kk: vv for kk, vv in g.items() if kk != k})
    if t == "boolean":
        vals += [False, 0, "true", None]
    return vals


def put(doc, path, value):
    """Set doc at path, creating (or replacing wrong-typed) containers on the way."""
    if not path:
        return value
    node = doc
    for i, k in enumerate(path):
        last = i == len(path) - 1
        if isinstance(k, int):
            if not isinstance(node, list):
                raise AssertionError("parent must be a list")
            while len(node) <= k:
                node.append({})
            if last:
                node[k] = value
            else:
                nxt = path[i + 1]
                if not isinstance(node[k], list if isinstance(nxt, int) else dict):
                    node[k] = [] if isinstance(nxt, int) else {}
                node = node[k]
        else:
            if last:
                node[k] = value
            else:
                nxt = path[i + 1]
                if not isinstance(node.get(k), list if isinstance(nxt, int) else dict):
                    node[k] = [] if isinstance(nxt, int) else {}
                node = node[k]
    return doc


_SITES = {}


def sites(kind):
    if kind not in _SITES:
        root = _project_schema()
        start = root if kind == "config" else root["definitions"]["Process"]
        _SITES[kind] = [(p, n) for p, n in schema_sites(root, start) if p]
    return _SITES[kind]


@st.composite
def schema_directed(draw, bases, kind):
    root = _project_schema()
    doc = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 2))):
        path, node = draw(st.sampled_from(sites(kind)))
        value = copy.deepcopy(draw(st.sampled_from(candidate_values(node, root))))
        doc = put(doc, path, value)
    return doc


@needs_shared
@pytest.mark.parametrize("kind", ["config", "process"])
def test_every_schema_site_with_every_candidate_value(kind):
    """Deterministic sweep: each reachable property x boundary/near-miss values."""
    root = _project_schema()
    base = MIN if kind == "config" else MIN["process"]
    n = 0
    verdicts = set()
    for path, node in sites(kind):
        for value in candidate_values(node, root):
            doc = put(copy.deepcopy(base), path, copy.deepcopy(value))
            verdicts.add(assert_agree(doc, kind))
            n += 1
    assert n > (2500 if kind == "config" else 200) and verdicts == {True, False}


_GOOD = good_configs() if OFFICIAL.is_dir() else []
_PROCS = good_processes() if OFFICIAL.is_dir() else []
_STATES = good_states()


@needs_shared
@settings(SETTINGS, max_examples=300)
@given(data=st.data())
def test_mutated_configs_agree(data):
    assert_agree(data.draw(mutated(_GOOD)), "config")


@needs_shared
@settings(SETTINGS, max_examples=400)
@given(data=st.data())
def test_schema_directed_configs_agree(data):
    assert_agree(data.draw(schema_directed(_GOOD, "config")), "config")


@needs_shared
@settings(SETTINGS, max_examples=150)
@given(data=st.data())
def test_mutated_processes_agree(data):
    doc = data.draw(st.one_of(mutated(_PROCS), schema_directed(_PROCS, "process")))
    assert_agree(doc, "process")


@needs_shared
@settings(SETTINGS, max_examples=80)
@given(data=st.data())
def test_mutated_states_agree(data):
    assert_agree(data.draw(mutated(_STATES)), "state")


@needs_shared
def test_generated_cases_cover_both_verdicts():
    """Guard against a generator that only ever makes valid (or invalid) documents."""
    verdicts = {True: 0, False: 0}

    @settings(SETTINGS, max_examples=120)
    @given(data=st.data())
    def run(data):
        doc = data.draw(schema_directed(_GOOD, "config"))
        verdicts[schemacheck.is_valid(doc)] += 1

    run()
    assert verdicts[True] > 15 and verdicts[False] > 15, verdicts


# ------------------------------------------------------------------ every keyword, on a synthetic schema

SYNTHETIC = {
    "$schema": "http://json-schema.org/draft-04/schema#",
    "definitions": {
        "pos": {"type": "integer", "minimum": 0, "exclusiveMinimum": True},
        "node": {
            "type": "object",
            "properties": {"next": {"$ref": "#/definitions/node"}, "v": {"type": ["integer", "null"]}},
            "additionalProperties": False,
        },
    },
    "type": "object",
    "properties": {
        "a": {"type": "array", "items": [{"type": "string"}, {"type": "number"}], "additionalItems": False},
        "b": {"type": "array", "items": [{"type": "string"}], "additionalItems": {"type": "boolean"}},
        "c": {"type": "array", "uniqueItems": True, "maxItems": 3},
        "d": {"oneOf": [{"type": "integer"}, {"type": "number", "multipleOf": 0.5}]},
        "e": {"not": {"type": "string"}},
        "f": {"anyOf": [{"type": "string", "minLength": 2, "maxLength": 3}, {"type": "null"}]},
        "g": {"$ref": "#/definitions/pos"},
        "h": {"type": "number", "maximum": 10, "exclusiveMaximum": True, "minimum": -5},
        "i": {"enum": [1, "1", True, None, [1], {"a": 1}]},
        "j": {"type": "object", "minProperties": 1, "maxProperties": 2,
              "dependencies": {"x": ["y"], "z": {"required": ["w"]}}},
        "k": {"$ref": "#/definitions/node"},
        "l": {"pattern": "^a.c$", "minimum": 3, "minItems": 1},
        "m": {"type": "integer", "multipleOf": 3},
        "n": {"allOf": [{"minimum": 2}, {"maximum": 5}]},
        "o": {"patternProperties": {"^x": {"type": "string"}, "y$": {"type": "integer"}},
              "additionalProperties": {"type": "boolean"}},
        "p": {"type": ["boolean", "array"], "items": {"type": "integer"}, "maxLength": 1},
        "q": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9}},
    },
    "required": ["a"],
    "additionalProperties": {"type": ["string", "array"]},
}

_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-20, 20), st.sampled_from([2**64, -(2**63), 0.5, 1.0, 2.0, 4.5, 9.99, 10.0, -5.0]),
    st.floats(-20, 20, allow_nan=False), st.text("abcxy1", max_size=4),
)
_json_values = st.recursive(
    _scalar,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.sampled_from(["x", "y", "z", "w", "v", "next", "a", "xy"]), c, max_size=3),
    max_leaves=8,
)


_TARGETED = {
    "a": [["s"], ["s", 1], ["s", 1.5, None], [1], []],
    "b": [["s", True, False], ["s", True, 1], [1]],
    "c": [[1, 1.0], [1, True], [[1], [True]], [{"a": 1}, {"a": 1}], [1, 2, 3, 4], ["a", "b"], [None, None]],
    "d": [1, 1.5, 2.0, 0.25, "1", True],
    "f": ["ab", "abcd", "a", None, 1],
    "g": [0, 1, -1, 1.0],
    "h": [10, 9.99, 10.0, -5, -5.5, True],
    "i": [1, 1.0, True, False, "1", None, [1], [1.0], [True], {"a": 1}, {"a": True}],
    "j": [{}, {"x": 1}, {"x": 1, "y": 2}, {"z": 1}, {"z": 1, "w": 2}, {"a": 1, "b": 2, "c": 3}],
    "k": [{}, {"next": {"v": 1}}, {"next": {"next": {"v": "x"}}}, {"next": {"u": 1}}],
    "l": ["abc", "a\nc", "xabc", "abc\n", "ac", 2, 3, [], [1]],
    "m": [3, 4, 0, -3, 3.0, 6.0],
    "n": [1, 2, 5, 6, 2.5, "x"],
    "o": [{"xa": "s"}, {"xa": 1}, {"ay": 1}, {"xy": "s"}, {"xy": 1}, {"q": True}, {"q": 1}],
    "p": [True, [], [1], [1.0], "ab", None],
    "q": [[0, 9], [10], [-1], [1.0]],
    "r": ["s", [], 1, None],
}


@settings(SETTINGS, max_examples=500)
@given(st.data())
def test_every_keyword_agrees_with_jsonschema(data):
    """Each property of SYNTHETIC exercises some keywords; one property per document."""
    from jsonschema import Draft4Validator

    key = data.draw(st.sampled_from(sorted(_TARGETED) + ["e"]))
    value = data.draw(st.one_of(st.sampled_from(_TARGETED.get(key, [None])), _json_values))
    doc = {"a": ["s", 1], key: value} if key != "a" else {"a": value}
    schemacheck._docs["synthetic.json"] = SYNTHETIC
    expected = Draft4Validator(SYNTHETIC).is_valid(doc)
    assert schemacheck.is_valid(doc, "synthetic.json#") == expected, (doc, schemacheck.check(doc, "synthetic.json#"))
