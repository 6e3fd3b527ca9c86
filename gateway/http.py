"""What every route shares: the authenticated caller with the service stubs,
``{success, data}`` answers (which name a local base model, never show the
server's path to it), and query-parameter parsing."""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import grpc
import orjson
from google.protobuf.message import Message
from starlette.requests import Request
from starlette.responses import Response

from brightrun.artifact.v1.artifact_pb2_grpc import ArtifactServiceStub
from brightrun.billing.v1.billing_pb2_grpc import BillingServiceStub
from brightrun.dataset.v1.dataset_pb2_grpc import DatasetServiceStub
from brightrun.job.v1.job_pb2_grpc import JobServiceStub
from gateway.auth import authenticated_user
from gateway.errors import validation_error
from services.common.base_models import shown_in_json, shown_to_callers
from services.common.grpc import as_user
from services.common.idempotency import MAX_REQUEST_ID_LENGTH
from services.common.status import error_details
from services.common.text import has_control_characters

# The services' largest page; a bigger limit would make page/totalPages lie.
MAX_LIMIT = 100
# Keeps the page's row offset well inside the services' int64 (and PostgreSQL's OFFSET).
MAX_PAGE = 1_000_000_000
# The largest value of the services' int64 fields; a bigger one cannot reach them.
INT64_MAX = 2**63 - 1
_DIGITS = re.compile(r"-?[0-9]+")
# Every unary call gets a deadline so that a stuck service becomes a 503, not a hung request.
RPC_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Stubs:
    datasets: DatasetServiceStub
    jobs: JobServiceStub
    artifacts: ArtifactServiceStub
    billing: BillingServiceStub


@dataclass(frozen=True)
class Caller:
    """The authenticated user, the stubs to call on their behalf, and the model directories whose paths
    answers show as model names."""

    user_id: str
    stubs: Stubs
    model_dirs: tuple[Path, ...] = ()

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return as_user(self.user_id)

    async def __call__(self, method, request: Message, timeout: float = RPC_TIMEOUT_S) -> Message:
        """One unary call as this user, answered within ``timeout`` seconds; a failure raises
        grpc.aio.AioRpcError (rendered by the app)."""
        return await method(request, metadata=self.metadata, timeout=timeout)


    def ok(self, data: object, status: int = 200, warnings: list[str] | None = None) -> Response:
        """The spec's success body; ``warnings`` (sentences about a request that succeeded anyway) beside
        ``data``. A local base model's absolute path anywhere in ``data`` is shown as its model name."""
        body = {"success": True, "data": data}
        if warnings is not None:
            body["warnings"] = warnings
        # Rendered compact in UTF-8 by orjson (a tenth of json.dumps's time on a page of datasets), then the
        # paths replaced in the text: one pass, not a walk of every value. A number JSON cannot carry is null.
        text = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS).decode()
        return Response(shown_in_json(text, self.model_dirs), status_code=status, media_type="application/json")

    def shown(self, value: object) -> object:
        return shown_to_callers(value, self.model_dirs)


def caller(request: Request) -> Caller:
    """The request's caller; raises HttpError 401 without a valid bearer token."""
    return Caller(authenticated_user(request), request.app.state.stubs, request.app.state.settings.model_dirs)


def path_id(request: Request, name: str = "id") -> str:
    """The path's id as a canonical UUID string; raises HttpError 400 saying it must be a UUID."""
    raw = request.path_params[name]
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        problem = f"Must be a UUID such as 6f1c1a2e-0000-4000-8000-000000000001, got {raw[:40]!r}"
        raise validation_error({name: [problem]}) from None


def int_param(request: Request, name: str, default: int, minimum: int = 1, maximum: int = INT64_MAX) -> int:
    """A whole-number query parameter; raises HttpError 400 when it is not one or is out of range."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    return parse_int(raw, name, minimum, maximum)


def parse_int(raw: str, name: str, minimum: int, maximum: int) -> int:
    """``raw`` as an int within [minimum, maximum]; raises HttpError 400 naming ``name`` otherwise."""
    # int() would take " 7", "7_0" and "٧", and refuses past 4300 digits with a ValueError of its own.
    if not _DIGITS.fullmatch(raw):
        raise validation_error({name: [f"Expected an integer, got {raw[:40]!r}"]})
    # Far more digits than any bound: out of range without converting it.
    value = int(raw) if len(raw) <= 40 else (minimum - 1 if raw.startswith("-") else maximum + 1)
    if value < minimum:
        raise validation_error({name: [f"Must be at least {minimum}"]})
    if value > maximum:
        raise validation_error({name: [f"Must be at most {maximum}"]})
    return value


def idempotency_key(request: Request, request_id: str) -> str:
    """The ``Idempotency-Key`` header, else the body's request_id; raises HttpError 400 naming whichever was sent."""
    header = request.headers.get("idempotency-key")
    key, field = (request_id, "request_id") if header is None else (header, "Idempotency-Key")
    if len(key) > MAX_REQUEST_ID_LENGTH or has_control_characters(key):
        problem = f"Must be at most {MAX_REQUEST_ID_LENGTH} characters and hold no control characters; use a UUID"
        raise validation_error({field: [problem]})
    return key


@dataclass(frozen=True)
class Page:
    """The spec's ``page``/``limit`` pagination, mapped onto the services' page_size/page_token, and an
    opaque ``cursor`` (a previous answer's ``pagination.next_cursor``) for deep pages: the services page by
    keyset from it, as cheap on page 10,000 as on page 1 and exact while rows are added (see
    services.common.paging). With a cursor, ``page`` is not read and the answer's ``page`` is 1."""

    page: int
    limit: int
    cursor: str = ""

    @classmethod
    def from_query(cls, request: Request, default_limit: int) -> "Page":
        cursor = request.query_params.get("cursor", "")
        page = 1 if cursor else int_param(request, "page", 1, maximum=MAX_PAGE)
        return cls(page, int_param(request, "limit", default_limit, maximum=MAX_LIMIT), cursor)

    def request_fields(self) -> dict:
        # An offset page is a decimal page token, the first page the empty one.
        offset = (self.page - 1) * self.limit
        return {"page_size": self.limit, "page_token": self.cursor or (str(offset) if offset else "")}

    async def fetch(self, api: Caller, method, message: Message) -> Message:
        """The list call for this page; raises HttpError 400 naming ``cursor`` when the service refuses it."""
        try:
            return await api(method, message)
        except grpc.aio.AioRpcError as exc:
            refused = error_details(exc).get("details") or {}
            if self.cursor and exc.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in refused:
                problem = "Is not a cursor of this list; pass a previous answer's pagination.next_cursor unchanged"
                raise validation_error({"cursor": [problem]}) from None
            raise

    def total_pages(self, total: int) -> int:
        return math.ceil(total / self.limit)

    def pagination(self, total: int, next_page_token: str) -> dict:
        """The spec's ``{page, limit, total, totalPages}`` and ``next_cursor``, null on the last page."""
        return {"page": self.page, "limit": self.limit, "total": total, "totalPages": self.total_pages(total),
                "next_cursor": next_page_token or None}
