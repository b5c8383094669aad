"""A line-oriented JSON bridge to the CRI gRPC API, run by the CRI client's venv python
(/opt/clients/cri/venv/bin/python, made by ../shared/tools/clients/cri-setup.sh), so that the pytest
interpreter needs no grpc. It reuses the generated stubs that tools/clients/cri.py loads.

    cri_bridge.py TOOLS_CLIENTS_DIR CONTAINERD_SOCKET
stdin, one JSON object a line:  {"method": "RunPodSandbox", "params": {...}, "timeout": 60}
stdout, one JSON object a line: {"ok": true, "result": {...}}  or  {"ok": false, "code": "NOT_FOUND",
"details": "..."}. Requests and results use the proto field names (json_format), enums by name,
int64 as strings. Bytes fields take plain text in requests (KeyValue.value is bytes in some api.proto
versions, string in others) and come back base64-encoded. Results include fields with default values
(a READY state is enum 0).
"""
import base64
import json
import sys

sys.path.insert(0, sys.argv[1])
import cri  # noqa: E402  (tools/clients/cri.py: puts the generated stubs on sys.path, imports grpc)
from google.protobuf import json_format  # noqa: E402

pb, pbg, grpc = cri.pb, cri.pbg, cri.grpc
FD = json_format.descriptor.FieldDescriptor


def encode_bytes(d, desc):
    """Base64-encode plain-text values given for bytes fields of message `desc`, recursively."""
    for k, v in list(d.items()):
        f = desc.fields_by_name.get(k)
        if f is None:
            continue
        vals = v if isinstance(v, list) else [v]
        if f.type == FD.TYPE_BYTES:
            vals = [base64.b64encode(x.encode()).decode() if isinstance(x, str) else x for x in vals]
            d[k] = vals if isinstance(v, list) else vals[0]
        elif f.type == FD.TYPE_MESSAGE and not f.message_type.GetOptions().map_entry:
            for x in vals:
                if isinstance(x, dict):
                    encode_bytes(x, f.message_type)
    return d


def to_dict(msg):
    try:
        return json_format.MessageToDict(msg, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)
    except TypeError:  # protobuf < 5
        return json_format.MessageToDict(msg, preserving_proto_field_name=True,
                                         including_default_value_fields=True)


def main():
    ch = grpc.insecure_channel("unix://" + sys.argv[2])
    runtime, images = pbg.RuntimeServiceStub(ch), pbg.ImageServiceStub(ch)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            method = req["method"]
            stub = runtime if hasattr(runtime, method) else images
            cls = getattr(pb, method + "Request")
            msg = json_format.ParseDict(encode_bytes(req.get("params", {}), cls.DESCRIPTOR), cls())
            resp = getattr(stub, method)(msg, timeout=req.get("timeout", 60))
            out = {"ok": True, "result": to_dict(resp)}
        except grpc.RpcError as e:
            out = {"ok": False, "code": e.code().name, "details": e.details()}
        except Exception as e:  # noqa: BLE001 -- report, keep serving
            out = {"ok": False, "code": "BRIDGE", "details": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
