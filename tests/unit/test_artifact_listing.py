"""Paging, ordering and file selection of artifact requests."""

import pytest

from services.artifact_svc.listing import artifact_uuid, parse_order, select_files
from services.common.errors import InvalidArgument, NotFound


def test_the_order_defaults_to_newest_first():
    assert parse_order("") == "created"
    assert parse_order("quality") == "quality"
    with pytest.raises(InvalidArgument) as caught:
        parse_order("size")
    assert set(caught.value.details) == {"order_by"}


def test_select_files():
    available = ["b.json", "a.safetensors"]
    assert select_files(available, []) == ["a.safetensors", "b.json"]
    assert select_files(available, ["b.json", "b.json"]) == ["b.json"]
    with pytest.raises(InvalidArgument) as caught:
        select_files(available, ["b.json", "nope.bin"])
    message = caught.value.details["files"][0]
    assert "'nope.bin'" in message and "a.safetensors, b.json" in message


def test_a_malformed_id_is_not_found():
    with pytest.raises(NotFound):
        artifact_uuid("not-a-uuid")
    assert artifact_uuid("11111111-1111-1111-1111-111111111111".upper()) == "11111111-1111-1111-1111-111111111111"
