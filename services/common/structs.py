"""``google.protobuf.Struct``/``Value``/``ListValue`` as plain JSON values.

A Struct stores every number as a double, so ``json_format`` reads a line
number 1 back as ``1.0``; here a whole number comes back as an int. The walk
reads each Value's ``kind`` itself: ``json_format.MessageToDict`` and a second
pass for the ints cost the gateway a fifth of its CPU on a page of datasets
(their statistics and samples are Structs). A number JSON cannot carry (NaN,
infinity) is null, as the gateway answers a non-finite float field.
"""

from __future__ import annotations

import math

from google.protobuf.message import Message

_LARGEST_EXACT = 2**53


def _value(value: Message) -> object:
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            return None
        return int(number) if number.is_integer() and abs(number) < _LARGEST_EXACT else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return _struct(value.struct_value)
    if kind == "list_value":
        return [_value(item) for item in value.list_value.values]
    return None  # null_value, or no kind set


def _struct(struct: Message) -> dict:
    return {key: _value(item) for key, item in struct.fields.items()}


_READERS = {
    "google.protobuf.Struct": _struct,
    "google.protobuf.ListValue": lambda message: [_value(item) for item in message.values],
    "google.protobuf.Value": _value,
}


def struct_to_json(message: Message) -> object:
    """A Struct, Value or ListValue as dicts, lists and scalars, whole numbers as ints."""
    return _READERS[message.DESCRIPTOR.full_name](message)
