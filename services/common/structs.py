"""``google.protobuf.Struct``/``Value``/``ListValue`` as plain JSON values.

A Struct stores every number as a double, so ``json_format`` reads a line
number 1 back as ``1.0``; here a whole number comes back as an int.
"""

from __future__ import annotations

from google.protobuf import json_format
from google.protobuf.message import Message


def _whole(value: object) -> object:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {key: _whole(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole(item) for item in value]
    return value


def struct_to_json(message: Message) -> object:
    """A Struct, Value or ListValue as dicts, lists and scalars, whole numbers as ints."""
    return _whole(json_format.MessageToDict(message))
