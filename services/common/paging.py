"""List paging shared by every service (AIP-158): ``page_size`` and an opaque
``page_token`` (here the offset of the page's first row), and canonical ids.
Pure: no I/O.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from services.common.errors import field_errors

MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def parse_page(page_size: int, page_token: str, *, default: int) -> Page:
    """The page asked for; raises InvalidArgument naming every bad field.

    0 means ``default``; a size above the maximum is lowered to it.
    """
    problems: dict[str, list[str]] = {}
    if page_size < 0:
        problems["page_size"] = [f"must be between 1 and {MAX_PAGE_SIZE}; 0 or absent means {default}"]
    # A token this service returned is an offset that fits PostgreSQL's bigint OFFSET.
    if page_token and not (page_token.isascii() and page_token.isdigit() and len(page_token) <= 18):
        problems["page_token"] = ["is not a token this service returned; pass next_page_token unchanged"]
    field_errors(problems)
    return Page(min(page_size or default, MAX_PAGE_SIZE), int(page_token or 0))


def next_page_token(page: Page, returned: int, has_more: bool) -> str:
    return str(page.offset + returned) if has_more else ""


def canonical_uuid(value: str) -> str | None:
    """The canonical UUID, or None when ``value`` is not one."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None
