"""The request id of a creating call (the HTTP ``Idempotency-Key``: CreateJob,
CreateDataset, CreateWebhook): its checks and the fingerprint of the request it
was first sent with. Pure: no I/O. A request message carries it in ``request_id``."""

from __future__ import annotations

import hashlib

from google.protobuf import json_format
from google.protobuf.message import Message

from services.common.errors import IdempotencyKeyReused, field_errors
from services.common.text import has_control_characters

MAX_REQUEST_ID_LENGTH = 255


def check_request_id(request_id: str) -> None:
    """Raises InvalidArgument naming request_id when it is too long or holds control characters."""
    problems = []
    if len(request_id) > MAX_REQUEST_ID_LENGTH:
        problems.append(f"must be at most {MAX_REQUEST_ID_LENGTH} characters, e.g. a UUID")
    if has_control_characters(request_id):
        problems.append("must not contain control characters such as NUL")
    field_errors({"request_id": problems})


def fingerprint(request: Message) -> str:
    """sha256 of the request without its request id, in a canonical form.

    Canonical JSON rather than the wire bytes: it omits fields left at their
    default, so ``estimated_cost: 0`` and no estimated_cost are the same request.
    """
    body = type(request)()
    body.CopyFrom(request)
    body.ClearField("request_id")
    text = json_format.MessageToJson(body, preserving_proto_field_name=True, sort_keys=True, indent=None)
    return hashlib.sha256(text.encode()).hexdigest()


def check_replay(stored_fingerprint: str | None, request: Message, created: str) -> None:
    """Raises IdempotencyKeyReused when what was ``created`` under this request id came from another request.

    One stored without a fingerprint (created before they were kept) replays.
    """
    if stored_fingerprint is not None and stored_fingerprint != fingerprint(request):
        raise IdempotencyKeyReused(
            "Idempotency-Key already used with a different request",
            {
                "Idempotency-Key": [
                    f"This key (request_id) created a {created} from a different body. Send a new key to create "
                    f"another {created}, or resend the first body unchanged to get the {created} it created."
                ]
            },
        )
