"""Every element of the contract a client developer reads has a doc comment.

protoc compiles the .protos with their source info; each service, RPC,
message (nested ones too), field, enum and enum value must have a leading
``//`` comment in the source.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from grpc_tools import protoc

PROTOS = Path(__file__).resolve().parents[2] / "protos"

# Field numbers of FileDescriptorProto, DescriptorProto, EnumDescriptorProto and
# ServiceDescriptorProto: the path components of source_code_info locations.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_ENUM_VALUE = 2
_SERVICE_METHOD = 2


def _descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    include = Path(protoc.__file__).parent / "_proto"
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "descriptors.pb"
        args = [
            "grpc_tools.protoc",
            f"-I{PROTOS}",
            f"-I{include}",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *sources,
        ]
        assert protoc.main(args) == 0, "protoc failed; see the messages above"
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _enum_elements(enum, path, name):
    yield path, f"enum {name}"
    for i, value in enumerate(enum.value):
        yield path + (_ENUM_VALUE, i), f"enum value {name}.{value.name}"


def _message_elements(message, path, name):
    yield path, f"message {name}"
    for i, field in enumerate(message.field):
        yield path + (_MESSAGE_FIELD, i), f"field {name}.{field.name}"
    for i, nested in enumerate(message.nested_type):
        if nested.options.map_entry:  # synthesized for a map<> field, not written in the source
            continue
        yield from _message_elements(nested, path + (_MESSAGE_NESTED, i), f"{name}.{nested.name}")
    for i, enum in enumerate(message.enum_type):
        yield from _enum_elements(enum, path + (_MESSAGE_ENUM, i), f"{name}.{enum.name}")


def _elements(file):
    """(source path, description) of every element that needs a comment."""
    for i, service in enumerate(file.service):
        yield (_FILE_SERVICE, i), f"service {service.name}"
        for j, method in enumerate(service.method):
            yield (_FILE_SERVICE, i, _SERVICE_METHOD, j), f"rpc {service.name}.{method.name}"
    for i, message in enumerate(file.message_type):
        yield from _message_elements(message, (_FILE_MESSAGE, i), message.name)
    for i, enum in enumerate(file.enum_type):
        yield from _enum_elements(enum, (_FILE_ENUM, i), enum.name)


def _undocumented(file) -> list[str]:
    comments = {tuple(loc.path): loc.leading_comments for loc in file.source_code_info.location}
    return [f"{file.name}: {what}" for path, what in _elements(file) if not comments.get(path, "").strip()]


def test_every_contract_element_has_a_leading_comment():
    files = [f for f in _descriptor_set().file if f.name.startswith("brightrun/")]
    assert {f.name for f in files} >= {
        "brightrun/artifact/v1/artifact.proto",
        "brightrun/billing/v1/billing.proto",
        "brightrun/dataset/v1/dataset.proto",
        "brightrun/events/v1/events.proto",
        "brightrun/job/v1/job.proto",
    }
    missing = [line for f in files for line in _undocumented(f)]
    assert not missing, f"{len(missing)} elements have no leading // comment:\n  " + "\n  ".join(missing)
