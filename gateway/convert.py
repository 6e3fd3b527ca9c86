"""Protos to the spec's JSON and JSON request bodies to protos. Pure: no I/O.

Responses keep the proto field names (snake_case, as the spec's columns),
enums become the spec's lower-case strings, unset timestamps, messages and
``optional`` scalars become null, int64 stays a JSON number, and NaN or
infinite floats become null.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.errors import HttpError, validation_error
from services.common.structs import struct_to_json

_WELL_KNOWN_JSON = {"google.protobuf.Struct", "google.protobuf.ListValue", "google.protobuf.Value"}
_INT_RANGES = {
    FieldDescriptor.CPPTYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.CPPTYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.CPPTYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.CPPTYPE_UINT64: (0, 2**64 - 1),
}
_FLOATS = (FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT)


def _enum_prefix(enum: EnumDescriptor) -> str:
    # JobStatus -> "JOB_STATUS_", the buf-style prefix every value carries.
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"


def enum_to_json(enum: EnumDescriptor, number: int) -> str | None:
    """``JOB_STATUS_RUNNING`` -> ``"running"``; the zero (UNSPECIFIED) value and unknown numbers -> None."""
    value = enum.values_by_number.get(number)
    if value is None or number == 0:
        return None
    return value.name.removeprefix(_enum_prefix(enum)).lower()


def enum_from_json(enum: EnumDescriptor, text: str, field: str) -> int:
    """``"running"`` -> the JOB_STATUS_RUNNING number; raises HttpError 400 naming the allowed values."""
    allowed = [enum_to_json(enum, v.number) for v in enum.values if v.number != 0]
    value = enum.values_by_name.get(_enum_prefix(enum) + text.upper())
    if value is None or value.number == 0:
        raise validation_error({field: [f"Must be one of: {', '.join(allowed)}"]})
    return value.number


def message_to_json(message: Message) -> dict:
    """Every field of ``message`` as JSON-ready Python values (see the module docstring)."""
    return {name: read(message) for name, read in _readers(message.DESCRIPTOR)}


@functools.cache
def _readers(descriptor: Descriptor) -> tuple[tuple[str, Callable[[Message], object]], ...]:
    """Each field's name and the function that reads it as JSON, worked out once per message type: asking the
    descriptor field by field, answer after answer, was the gateway's largest cost after the JSON itself."""
    return tuple((field.name, _reader(field)) for field in descriptor.fields)


def _reader(field: FieldDescriptor) -> Callable[[Message], object]:
    name = field.name
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        item = _converter(field.message_type.fields_by_name["value"])
        return lambda message: {key: item(value) for key, value in getattr(message, name).items()}
    convert = _converter(field)
    if field.is_repeated:
        return lambda message: [convert(value) for value in getattr(message, name)]
    if field.has_presence:
        return lambda message: convert(getattr(message, name)) if message.HasField(name) else None
    return lambda message: convert(getattr(message, name))


def _converter(field: FieldDescriptor) -> Callable[[object], object]:
    """How one value of ``field`` (one item of a repeated field) becomes JSON."""
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        name = field.message_type.full_name
        if name == "google.protobuf.Timestamp":
            return lambda value: value.ToJsonString()
        if name in _WELL_KNOWN_JSON:
            return struct_to_json
        return message_to_json
    if field.type == FieldDescriptor.TYPE_ENUM:
        names = {value.number: enum_to_json(field.enum_type, value.number) for value in field.enum_type.values}
        return names.get
    if field.type == FieldDescriptor.TYPE_BYTES:
        return lambda value: base64.b64encode(value).decode("ascii")
    if field.cpp_type in _FLOATS:
        # A diverged loss is NaN or inf, which JSON cannot carry; null keeps the answer valid.
        return lambda value: value if math.isfinite(value) else None
    return lambda value: value


# Deeper than any request body (hyperparameters inside the body is 2).
MAX_DEPTH = 8
# Longer than any field's range (uint64 has 20 digits); Python would refuse past 4300 anyway.
_MAX_INT_DIGITS = 30


def _reject_constant(name: str) -> None:
    # Python's json reads NaN and Infinity, which are not JSON and which no field accepts.
    raise ValueError(f"{name} is not a JSON number; send a finite number")


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise ValueError(f"a number has more than {_MAX_INT_DIGITS} digits; no field takes one that large")
    return int(text)


def _invalid_json(details: str) -> HttpError:
    return HttpError(400, "Invalid JSON", details, code="invalid_json")


def parse_json_object(raw: bytes, *, optional: bool = False) -> dict:
    """A request body as a dict; raises HttpError 400 for invalid JSON or a non-object.

    An empty body is ``{}`` when ``optional``, else an error.
    """
    if not raw.strip():
        if optional:
            return {}
        raise _invalid_json("Request body is empty; send a JSON object")
    try:
        data = json.loads(raw, parse_constant=_reject_constant, parse_int=_parse_int)
    except RecursionError:
        raise _invalid_json("Request body nests arrays or objects too deeply") from None
    except ValueError as exc:
        # JSONDecodeError and UnicodeDecodeError are ValueErrors, and so are the two checks above.
        raise _invalid_json(f"Request body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(data, dict):
        raise _invalid_json(f"Request body must be a JSON object, not {type(data).__name__}")
    if _depth(data) > MAX_DEPTH:
        raise _invalid_json(f"Request body nests objects or arrays more than {MAX_DEPTH} deep; no field needs that")
    return data


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def json_to_message(
    data: Mapping,
    message_cls: type[Message],
    *,
    required: Iterable[str] = (),
    uuids: Iterable[str] = (),
    hidden: Iterable[str] = (),
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> Message:
    """Build ``message_cls`` from a JSON object whose keys are its field names.

    ``required``, ``uuids``, ``hidden`` (fields a caller may not send) and the
    keys of ``ranges`` (a field's real range, stated when a number does not
    even fit its wire type) are dotted field paths (``gpu_config.type``).
    Raises HttpError 400 "Validation error" whose details name every bad field,
    an unknown one among them.
    """
    problems: dict[str, list[str]] = {}
    message = message_cls()
    _fill(message, data, "", problems, _Rules(frozenset(hidden), ranges or {}))
    for path in required:
        parent, _, leaf = path.rpartition(".")
        container = _lookup(data, parent) if parent else data
        if isinstance(container, Mapping) and container.get(leaf) is None:
            problems.setdefault(path, []).append("Required")
    for path in uuids:
        value = _lookup(data, path)
        if isinstance(value, str) and not _is_uuid(value):
            problems.setdefault(path, []).append("Must be a UUID")
    if problems:
        raise validation_error(problems)
    return message


def _lookup(data: Mapping, path: str) -> object:
    value: object = data
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class _Rules:
    hidden: frozenset[str]
    ranges: Mapping[str, tuple[float, float]]


def settable_fields(descriptor: Descriptor, prefix: str, hidden: Iterable[str]) -> list[FieldDescriptor]:
    """The fields of ``descriptor`` (at dotted ``prefix``) a request may set: all but the ``hidden`` ones."""
    return [field for field in descriptor.fields if prefix + field.name not in hidden]


def _fill(message: Message, data: Mapping, prefix: str, problems: dict[str, list[str]], rules: _Rules) -> None:
    fields = {field.name: field for field in settable_fields(message.DESCRIPTOR, prefix, rules.hidden)}
    for key, value in data.items():
        path = prefix + key
        field = fields.get(key)
        if field is None:
            problems.setdefault(path[:100], []).append(f"Unknown field; the fields here are: {', '.join(fields)}")
            continue
        if value is None:
            continue
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            if not isinstance(value, Mapping):
                problems.setdefault(path, []).append("Expected an object")
                continue
            nested = getattr(message, key)
            nested.SetInParent()
            _fill(nested, value, path + ".", problems, rules)
        elif field.is_repeated:
            if not isinstance(value, list):
                problems.setdefault(path, []).append("Expected an array")
                continue
            items = [_scalar(field, item, f"{path}[{i}]", problems, None) for i, item in enumerate(value)]
            getattr(message, key).extend(item for item in items if item is not None)
        else:
            converted = _scalar(field, value, path, problems, rules.ranges.get(path))
            if converted is not None:
                setattr(message, key, converted)


def _is_utf8(text: str) -> bool:
    # JSON may escape a lone surrogate ("\ud800"), which protobuf cannot encode.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _scalar(
    field: FieldDescriptor, value: object, path: str, problems: dict[str, list[str]], real: tuple | None
) -> object:
    """The value converted for ``field``, or None after recording why it is wrong; ``real`` is its real range."""
    if field.type == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            problem = "Expected a string"
        elif "\x00" in value:
            # PostgreSQL cannot store NUL in text or JSONB.
            problem = "Must not contain NUL characters"
        elif not _is_utf8(value):
            problem = "Must be valid Unicode text: a \\ud800-\\udfff escape must be half of a surrogate pair"
        else:
            return value
    elif field.type == FieldDescriptor.TYPE_BOOL:
        if isinstance(value, bool):
            return value
        problem = "Expected a boolean"
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        problem = "Expected a number"
    elif field.cpp_type in _FLOATS:
        # A float overflows to infinity (1e999) and a huge integer raises here.
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
        if math.isfinite(number):
            return number
        problem = "Must be a finite number"
    elif field.cpp_type in _INT_RANGES:
        low, high = _INT_RANGES[field.cpp_type]
        if isinstance(value, float) and not value.is_integer():
            problem = "Expected an integer"
        elif not low <= value <= high:
            low, high = real or (low, high)
            problem = f"Must be between {low} and {high}"
        else:
            return int(value)
    else:
        problem = "This field cannot be set through the API"
    problems.setdefault(path, []).append(problem)
    return None
