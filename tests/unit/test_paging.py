import pytest

from services.common.errors import InvalidArgument
from services.common.paging import Page, canonical_uuid, next_page_token, parse_page


def test_defaults_and_clamping():
    assert parse_page(0, "", default=20) == Page(20, 0)
    assert parse_page(500, "40", default=20) == Page(100, 40)


def test_every_bad_field_is_named():
    with pytest.raises(InvalidArgument) as caught:
        parse_page(-1, "abc", default=20)
    assert set(caught.value.details) == {"page_size", "page_token"}


def test_next_page_token_until_the_end():
    page = Page(2, 2)
    assert next_page_token(page, 2, has_more=True) == "4"
    assert next_page_token(page, 2, has_more=False) == ""


def test_canonical_uuid():
    assert canonical_uuid("nope") is None
    assert canonical_uuid("11111111-1111-1111-1111-111111111111".upper()) == "11111111-1111-1111-1111-111111111111"


@pytest.mark.parametrize("token", ["9" * 19, "9" * 5000, "\u00b2", "\u0663"])
def test_a_token_no_offset_could_be_is_invalid_not_a_database_error(token):
    with pytest.raises(InvalidArgument) as info:
        parse_page(10, token, default=10)
    assert list(info.value.details) == ["page_token"]
