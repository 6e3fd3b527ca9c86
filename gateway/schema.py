"""JSON Schemas of what the gateway reads and writes, from the protos'
descriptors and the rules of ``gateway.convert``: a request body as
``json_to_message`` accepts it, an answer as ``message_to_json`` writes it.

Responses name every field (convert writes all of them); a field with
presence, a nested message, an enum or a float may be null.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from gateway.convert import enum_to_json, settable_fields

_ANY = {}
_TIMESTAMP = "google.protobuf.Timestamp"
_INTEGERS = (
    FieldDescriptor.CPPTYPE_INT32,
    FieldDescriptor.CPPTYPE_INT64,
    FieldDescriptor.CPPTYPE_UINT32,
    FieldDescriptor.CPPTYPE_UINT64,
)
_FLOATS = (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT)


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(**properties: dict) -> dict:
    """An object with exactly these properties, all present."""
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def array(items: dict) -> dict:
    return {"type": "array", "items": items}


def _enum_values(field: FieldDescriptor) -> list[str]:
    return [enum_to_json(field.enum_type, v.number) for v in field.enum_type.values if v.number != 0]


def _scalar(field: FieldDescriptor, *, response: bool) -> dict:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        name = field.message_type.full_name
        if name == _TIMESTAMP:
            return {"type": "string", "format": "date-time"}
        if name.startswith("google.protobuf."):
            return _ANY
        return message_schema(field.message_type) if response else _ANY
    if field.type == FieldDescriptor.TYPE_ENUM:
        return {"type": "string", "enum": _enum_values(field)}
    if field.type in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
        return {"type": "string"}
    if field.type == FieldDescriptor.TYPE_BOOL:
        return {"type": "boolean"}
    if field.cpp_type in _INTEGERS:
        return {"type": "integer"}
    return {"type": "number"}


def _response_field(field: FieldDescriptor) -> dict:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        value = field.message_type.fields_by_name["value"]
        return {"type": "object", "additionalProperties": _response_value(value)}
    if field.is_repeated:
        return array(_response_value(field))
    schema = _response_value(field)
    if field.has_presence and schema is not _ANY and "anyOf" not in schema:
        return nullable(schema)
    return schema


def _response_value(field: FieldDescriptor) -> dict:
    schema = _scalar(field, response=True)
    # An UNSPECIFIED enum and a NaN or infinite float are written as null.
    if field.type == FieldDescriptor.TYPE_ENUM or field.cpp_type in _FLOATS:
        return nullable(schema)
    return schema


def message_schema(descriptor: Descriptor) -> dict:
    """A message as ``message_to_json`` writes it."""
    return obj(**{field.name: _response_field(field) for field in descriptor.fields})


def request_schema(
    descriptor: Descriptor,
    *,
    required: Iterable[str] = (),
    uuids: Iterable[str] = (),
    hidden: Iterable[str] = (),
    ranges: Mapping[str, tuple[float, float]] | None = None,
    descriptions: Mapping[str, str] | None = None,
    prefix: str = "",
) -> dict:
    """A request body as ``json_to_message`` accepts it with the same arguments."""
    required, uuids, hidden = tuple(required), tuple(uuids), tuple(hidden)
    ranges, descriptions = ranges or {}, descriptions or {}
    properties = {}
    for field in settable_fields(descriptor, prefix, hidden):
        path = prefix + field.name
        if field.type == FieldDescriptor.TYPE_MESSAGE and not field.message_type.full_name.startswith("google."):
            schema = request_schema(
                field.message_type, required=required, uuids=uuids, hidden=hidden, ranges=ranges,
                descriptions=descriptions, prefix=path + ".",
            )
        else:
            schema = dict(_scalar(field, response=False))
            if path in uuids:
                schema["format"] = "uuid"
            if path in ranges:
                schema["minimum"], schema["maximum"] = ranges[path]
            if field.type == FieldDescriptor.TYPE_STRING:
                schema["pattern"] = "^[^\\u0000]*$"
        if field.is_repeated:
            schema = array(schema)
        if path in descriptions:
            schema["description"] = descriptions[path]
        properties[field.name] = schema
    names = [p.removeprefix(prefix) for p in required if p.startswith(prefix) and "." not in p.removeprefix(prefix)]
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if names:
        schema["required"] = names
    return schema
