"""Errors on the wire as gRPC's standard rich error model: a ``google.rpc.Status``
in the ``grpc-status-details-bin`` trailer (grpcio-status) whose details hold

- ``google.rpc.ErrorInfo``: ``reason``, the stable machine-readable code the
  gateway answers with (``validation_failed``, ``not_found``, ...), and
  ``metadata`` (``error_id`` of a logged failure);
- ``google.rpc.BadRequest``: one field violation per problem, when the error's
  details map fields to messages;
- ``google.protobuf.Struct`` ``{"value": details}``: any other details (the
  figures of a refused budget, a dataset's status).

:func:`rich_status` writes it, :func:`error_details` reads it back.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, struct_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from services.common.structs import struct_to_json

DOMAIN = "brightrun"


def _field_problems(details: object) -> bool:
    return (
        isinstance(details, dict)
        and bool(details)
        and all(isinstance(msgs, list) and all(isinstance(m, str) for m in msgs) for msgs in details.values())
    )


def _packed(message) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def rich_status(
    code: grpc.StatusCode, message: str, reason: str, details: object = None, metadata: dict[str, str] | None = None
) -> grpc.Status:
    """The grpc.Status to abort with (``context.abort(s.code, s.details, s.trailing_metadata)``)."""
    parts = [_packed(error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata or {}))]
    if _field_problems(details):
        violations = [
            error_details_pb2.BadRequest.FieldViolation(field=field, description=text)
            for field, texts in details.items()
            for text in texts
        ]
        parts.append(_packed(error_details_pb2.BadRequest(field_violations=violations)))
    elif details is not None:
        value = struct_pb2.Struct()
        value.update({"value": details})
        parts.append(_packed(value))
    status = status_pb2.Status(code=code.value[0], message=message, details=parts)
    return rpc_status.to_status(status)


def error_details(exc: grpc.aio.AioRpcError) -> dict:
    """``{reason, details, metadata}`` of a failed call's rich status; {} when it carries none."""
    try:
        status = rpc_status.from_call(exc)
    except ValueError:
        return {}
    if status is None or status.code == code_pb2.OK:
        return {}
    found: dict = {"reason": None, "details": None, "metadata": {}}
    for part in status.details:
        if part.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            part.Unpack(info)
            found["reason"], found["metadata"] = info.reason, dict(info.metadata)
        elif part.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            part.Unpack(request)
            problems: dict[str, list[str]] = {}
            for violation in request.field_violations:
                problems.setdefault(violation.field, []).append(violation.description)
            found["details"] = problems
        elif part.Is(struct_pb2.Struct.DESCRIPTOR):
            value = struct_pb2.Struct()
            part.Unpack(value)
            found["details"] = struct_to_json(value)["value"]
    return found
