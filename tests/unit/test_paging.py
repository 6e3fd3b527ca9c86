import base64
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from services.common.errors import InvalidArgument
from services.common.paging import Keyset, Page, canonical_uuid, next_offset_token, parse_page

NEWEST_FIRST = Keyset((("created_at", "timestamptz"), ("id", "uuid")))
ROW = SimpleNamespace(created_at=datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc),
                      id="6f1c1a2e-0000-4000-8000-000000000001")


def test_defaults_and_clamping():
    assert parse_page(0, "", default=20) == Page(20, 0)
    assert parse_page(500, "40", default=20) == Page(100, 40)


def test_every_bad_field_is_named():
    with pytest.raises(InvalidArgument) as caught:
        parse_page(-1, "abc", default=20)
    assert set(caught.value.details) == {"page_size", "page_token"}


def test_next_offset_token_until_the_end():
    page = Page(2, 2)
    assert next_offset_token([1, 2, 3], page) == "4"
    assert next_offset_token([1, 2], page) == ""


def test_canonical_uuid():
    assert canonical_uuid("nope") is None
    assert canonical_uuid("11111111-1111-1111-1111-111111111111".upper()) == "11111111-1111-1111-1111-111111111111"


@pytest.mark.parametrize("token", ["9" * 19, "9" * 5000, "\u00b2", "\u0663"])
def test_a_token_no_offset_could_be_is_invalid_not_a_database_error(token):
    with pytest.raises(InvalidArgument) as info:
        parse_page(10, token, default=10)
    assert list(info.value.details) == ["page_token"]


def test_a_cursor_round_trips_the_last_rows_sort_key():
    token = NEWEST_FIRST.next_token([ROW, ROW], Page(1))
    page = parse_page(1, token, default=10, keyset=NEWEST_FIRST)
    assert page.after == ("2026-05-01T12:00:00.123456+00:00", ROW.id)
    params = NEWEST_FIRST.params(page)
    assert params["after_0"] == ROW.created_at and str(params["after_1"]) == ROW.id and params["limit"] == 2
    assert NEWEST_FIRST.after(page) == (
        " AND (created_at, id) < (CAST(:after_0 AS timestamptz), CAST(:after_1 AS uuid))"
    )
    assert NEWEST_FIRST.window(page) == " ORDER BY created_at DESC, id DESC LIMIT :limit"


def test_the_last_page_has_no_next_cursor_and_an_ascending_keyset_pages_forward():
    assert NEWEST_FIRST.next_token([ROW], Page(1)) == ""
    steps = Keyset((("step", "bigint"),), descending=False)
    page = parse_page(5, steps.token(SimpleNamespace(step=42)), default=10, keyset=steps)
    assert steps.after(page) == " AND (step) > (CAST(:after_0 AS bigint))" and steps.params(page)["after_0"] == 42


def _cursor(*values: str) -> str:
    import json

    return "k" + base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode()


@pytest.mark.parametrize("token", [
    "k", "k!!!", "k" + "A" * 600, _cursor("not a time", ROW.id), _cursor("2026-05-01T12:00:00", ROW.id),
    _cursor(ROW.created_at.isoformat()), _cursor(ROW.created_at.isoformat(), "nope"),
    "k" + base64.b64encode(b"{}").decode(),
])
def test_a_forged_or_foreign_cursor_is_invalid_argument_naming_page_token(token):
    with pytest.raises(InvalidArgument) as info:
        parse_page(10, token, default=10, keyset=NEWEST_FIRST)
    assert list(info.value.details) == ["page_token"]


def test_a_list_without_a_keyset_refuses_a_cursor():
    with pytest.raises(InvalidArgument) as info:
        parse_page(10, NEWEST_FIRST.token(ROW), default=10)
    assert list(info.value.details) == ["page_token"]
