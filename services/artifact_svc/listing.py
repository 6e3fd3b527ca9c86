"""Validation of list and download requests: ordering, page size and token,
requested file names. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

from services.common.errors import NotFound, field_errors
from services.common.paging import canonical_uuid

ORDERS = ("created", "quality")
DEFAULT_PAGE_SIZE = 20


def parse_order(order_by: str) -> str:
    """The list order; raises InvalidArgument for an unknown one."""
    order_by = order_by or "created"
    if order_by not in ORDERS:
        field_errors({"order_by": [f"must be one of {', '.join(ORDERS)}, not {order_by!r}"]})
    return order_by


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
    canonical = canonical_uuid(artifact_id)
    if canonical is None:
        raise NotFound(f"model {artifact_id!r} not found")
    return canonical
