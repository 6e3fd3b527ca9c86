"""Validation of list and download requests: ordering, page size and token,
requested file names. Pure: no I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from services.common.errors import NotFound, field_errors

ORDERS = ("created", "quality")
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Page:
    order_by: str
    limit: int
    offset: int


def parse_page(order_by: str, page_size: int, page_token: str) -> Page:
    """The page asked for; raises InvalidArgument naming every bad field.

    A page size above the maximum is lowered to it (AIP-158); the token is the
    offset of the page's first row.
    """
    order_by = order_by or "created"
    problems: dict[str, list[str]] = {}
    if order_by not in ORDERS:
        problems["order_by"] = [f"must be one of {', '.join(ORDERS)}, not {order_by!r}"]
    if page_size < 0:
        problems["page_size"] = [f"must be between 1 and {MAX_PAGE_SIZE}; 0 or absent means {DEFAULT_PAGE_SIZE}"]
    if page_token and not page_token.isdigit():
        problems["page_token"] = ["is not a token this service returned; pass next_page_token unchanged"]
    field_errors(problems)
    return Page(order_by, min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE), int(page_token or 0))


def next_page_token(page: Page, returned: int, total: int) -> str:
    end = page.offset + returned
    return str(end) if end < total else ""


def select_files(available: Iterable[str], requested: Iterable[str]) -> list[str]:
    """The files to sign: all when none are requested; raises InvalidArgument listing the valid names."""
    available = sorted(available)
    requested = list(dict.fromkeys(requested))
    unknown = [name for name in requested if name not in available]
    if unknown:
        field_errors({"files": [f"no file named {', '.join(map(repr, unknown))}; valid: {', '.join(available)}"]})
    return requested or available


def artifact_uuid(artifact_id: str) -> str:
    """The id as a canonical UUID; raises NotFound for anything else, as for an unknown id."""
    try:
        return str(uuid.UUID(artifact_id))
    except ValueError:
        raise NotFound(f"model {artifact_id!r} not found") from None
