"""List paging shared by every service (AIP-158): ``page_size`` and an opaque
``page_token``, and canonical ids. Pure: no I/O.

A token is one of two kinds, both opaque to callers:

- a decimal row offset, which the gateway sends for the spec's ``?page=N``
  (page N of ``limit`` rows starts at row ``(N-1)*limit``);
- a keyset cursor (``k`` + base64url of the last returned row's sort key),
  which every service returns as ``next_page_token``. The next page is then
  ``WHERE (sort key) < (cursor) ORDER BY sort key LIMIT n``: an index range
  scan that costs the same on page 1,000 as on page 1 and neither skips nor
  repeats a row when rows are inserted between two calls (an offset shifts by
  every row inserted before it).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.common.errors import field_errors

MAX_PAGE_SIZE = 100
# Longer than any cursor a sort key of a few timestamps, ids and numbers encodes to.
MAX_TOKEN_LENGTH = 512
_CURSOR = "k"
_BAD_TOKEN = "is not a token this service returned; pass next_page_token unchanged"


def _timestamp(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("a cursor's timestamp carries its offset")
    return parsed


def _bigint(value: str) -> int:
    number = int(value)
    if not -(2**63) <= number < 2**63:
        raise ValueError("out of bigint's range")
    return number


# A sort column's SQL type -> how a cursor's text becomes a value of it (raising ValueError when it cannot):
# checked here, so a forged cursor is INVALID_ARGUMENT, never a database error.
_PARSERS: dict[str, Callable[[str], object]] = {
    "timestamptz": _timestamp,
    "uuid": lambda value: uuid.UUID(value),
    "bigint": _bigint,
}


@dataclass(frozen=True)
class Page:
    """``limit`` rows from row ``offset``, or, with ``after``, those whose sort key comes after it."""

    limit: int
    offset: int = 0
    after: tuple[str, ...] | None = None

    @property
    def first(self) -> bool:
        return not self.offset and self.after is None


@dataclass(frozen=True)
class Keyset:
    """A list's order: ``columns`` (name, SQL type), the last unique so the order is total, all descending
    (newest first) or all ascending. An index on the list's filter columns followed by these, in this
    direction, serves every page as one range scan."""

    columns: tuple[tuple[str, str], ...]
    descending: bool = True

    @property
    def order_by(self) -> str:
        direction = " DESC" if self.descending else ""
        return ", ".join(name + direction for name, _ in self.columns)

    def after(self, page: Page) -> str:
        """`` AND (key) < (cursor)`` (``>`` ascending) for a cursor page, else nothing; its values are the
        ``params``."""
        if page.after is None:
            return ""
        names = ", ".join(name for name, _ in self.columns)
        values = ", ".join(f"CAST(:after_{i} AS {kind})" for i, (_, kind) in enumerate(self.columns))
        return f" AND ({names}) {'<' if self.descending else '>'} ({values})"

    def window(self, page: Page) -> str:
        """`` ORDER BY ... LIMIT :limit`` and, for an offset page, `` OFFSET :offset``."""
        return f" ORDER BY {self.order_by} LIMIT :limit" + (" OFFSET :offset" if page.offset else "")

    def params(self, page: Page) -> dict:
        """The parameters ``after`` and ``window`` name; the limit is one row more than the page, which tells
        whether another page follows (see ``next_token``)."""
        values = {"limit": page.limit + 1, "offset": page.offset}
        for i, ((_, kind), value) in enumerate(zip(self.columns, page.after or ())):
            values[f"after_{i}"] = _PARSERS[kind](value)
        return values

    def parse(self, page: Page) -> Page:
        """``page`` with its cursor checked against this order; raises InvalidArgument naming page_token."""
        if page.after is None:
            return page
        try:
            if len(page.after) != len(self.columns):
                raise ValueError("a cursor of another list")
            for (_, kind), value in zip(self.columns, page.after):
                _PARSERS[kind](value)
        except ValueError:
            field_errors({"page_token": [_BAD_TOKEN]})
        return page

    def token(self, row: object) -> str:
        """The cursor that continues after ``row`` (a result row with the order's columns)."""
        key = [_text(getattr(row, name)) for name, _ in self.columns]
        return _CURSOR + base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")

    def next_token(self, rows: Sequence, page: Page) -> str:
        """The next page's token from rows read with ``params``: the cursor after the page's last row, or ""
        when no row follows it."""
        return self.token(rows[page.limit - 1]) if len(rows) > page.limit else ""


def _text(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


def parse_page(page_size: int, page_token: str, *, default: int, keyset: Keyset | None = None) -> Page:
    """The page asked for; raises InvalidArgument naming every bad field.

    0 means ``default``; a size above the maximum is lowered to it. A cursor token is taken only for a list
    with a ``keyset``, and checked to be one of that order's; a list without one pages by offset alone.
    """
    problems: dict[str, list[str]] = {}
    if page_size < 0:
        problems["page_size"] = [f"must be between 1 and {MAX_PAGE_SIZE}; 0 or absent means {default}"]
    offset, after = 0, None
    if page_token.startswith(_CURSOR) and keyset is not None:
        after = _decode_cursor(page_token)
        if after is None:
            problems["page_token"] = [_BAD_TOKEN]
    # An offset token fits PostgreSQL's bigint OFFSET.
    elif page_token and not (page_token.isascii() and page_token.isdigit() and len(page_token) <= 18):
        problems["page_token"] = [_BAD_TOKEN]
    else:
        offset = int(page_token or 0)
    field_errors(problems)
    page = Page(min(page_size or default, MAX_PAGE_SIZE), offset, after)
    return keyset.parse(page) if keyset is not None else page


def next_offset_token(rows: Sequence, page: Page) -> str:
    """The next page's offset token from a page read with one row more than its limit; "" at the end. For a
    list whose order no keyset expresses."""
    return str(page.offset + page.limit) if len(rows) > page.limit else ""


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _decode_cursor(token: str) -> tuple[str, ...] | None:
    body = token.removeprefix(_CURSOR)
    if len(token) > MAX_TOKEN_LENGTH or not body.isascii():
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(key, list) or not key or not all(isinstance(v, str) for v in key):
        return None
    return tuple(key)


def canonical_uuid(value: str) -> str | None:
    """The canonical UUID, or None when ``value`` is not one."""
    if _CANONICAL_UUID.fullmatch(value):  # as nearly every id comes: no parse (ingestion checks three an event)
        return value
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None
