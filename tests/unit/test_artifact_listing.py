"""Paging, ordering and file selection of artifact requests."""

import pytest

from services.artifact_svc.listing import Page, artifact_uuid, next_page_token, parse_page, select_files
from services.common.errors import InvalidArgument, NotFound


def test_defaults_and_clamping():
    assert parse_page("", 0, "") == Page("created", 20, 0)
    assert parse_page("quality", 500, "40") == Page("quality", 100, 40)


def test_every_bad_field_is_named():
    with pytest.raises(InvalidArgument) as caught:
        parse_page("size", -1, "abc")
    assert set(caught.value.details) == {"order_by", "page_size", "page_token"}


def test_next_page_token_until_the_end():
    page = Page("created", 2, 2)
    assert next_page_token(page, 2, 5) == "4"
    assert next_page_token(page, 2, 4) == ""


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
