import json

import grpc
import pytest

from gateway.errors import error_response, from_rpc_error
from services.common.status import rich_status


def _rpc_error(code, message, details=None, reason="r", metadata=None):
    status = rich_status(code, message, reason, details, metadata)
    trailers = grpc.aio.Metadata(*status.trailing_metadata)
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailers, details=message)


def _bare_rpc_error(code, message):
    # What grpc itself answers, without a rich status (an unhandled exception is UNKNOWN).
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=message)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, 400),
        (grpc.StatusCode.FAILED_PRECONDITION, 400),
        (grpc.StatusCode.NOT_FOUND, 404),
        (grpc.StatusCode.ABORTED, 409),
        (grpc.StatusCode.ALREADY_EXISTS, 409),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
        (grpc.StatusCode.UNAUTHENTICATED, 401),
    ],
)
def test_status_codes_map_to_http_with_the_services_message_field_violations_and_reason(code, status):
    exc = _rpc_error(code, "Dataset not ready for training", {"status": ["is uploading", "wait"]}, "not_ready")
    error = from_rpc_error(exc)
    assert error.status == status
    assert error.body() == {
        "success": False,
        "error": "Dataset not ready for training",
        "details": {"status": ["is uploading", "wait"]},
        "code": "not_ready",
    }


def test_details_that_are_not_field_problems_travel_whole_with_whole_numbers_as_integers():
    details = {"estimated_cost": 12.5, "remaining": 3.25, "month": "2026-12", "jobs": 2}
    error = from_rpc_error(_rpc_error(grpc.StatusCode.ABORTED, "Over budget", details, "budget_exceeded"))
    assert error.body()["details"] == details and isinstance(error.body()["details"]["jobs"], int)
    assert error.body()["code"] == "budget_exceeded"


def test_an_error_without_a_rich_status_has_null_details_and_the_statuss_code():
    assert from_rpc_error(_bare_rpc_error(grpc.StatusCode.NOT_FOUND, "Job not found")).body() == {
        "success": False,
        "error": "Job not found",
        "details": None,
        "code": "not_found",
    }


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
def test_an_unreachable_service_is_503(code):
    error = from_rpc_error(_bare_rpc_error(code, "failed to connect to all addresses"))
    assert error.status == 503 and error.error == "Service unavailable" and error.code == "unavailable"


def test_anything_unexpected_is_a_generic_500_without_internals_but_with_the_logged_id(caplog):
    error = from_rpc_error(_bare_rpc_error(grpc.StatusCode.UNKNOWN, "relation job.jobs does not exist"))
    assert error.status == 500 and error.code == "internal"
    assert "relation" not in json.dumps(error.body())
    assert "relation job.jobs does not exist" in caplog.text
    error_id = error.details.rstrip(".").rsplit(" ", 1)[-1]
    assert error_id in caplog.text


def test_a_services_internal_error_is_answered_with_the_id_the_service_logged():
    exc = _rpc_error(grpc.StatusCode.INTERNAL, "failed", reason="internal", metadata={"error_id": "abc123"})
    assert "abc123" in from_rpc_error(exc).details


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
def test_a_503_tells_the_client_when_to_retry(code):
    response = error_response(from_rpc_error(_bare_rpc_error(code, "connection refused")))
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert json.loads(response.body)["details"]


def test_an_idempotency_key_reused_with_another_body_is_422_naming_the_key():
    details = {"Idempotency-Key": ["used with a different body"]}
    exc = _rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "reused", details, "idempotency_key_reused")
    error = from_rpc_error(exc)
    assert error.status == 422
    assert error.body() == {"success": False, "error": "reused", "details": details, "code": "idempotency_key_reused"}


def test_no_agent_to_generate_is_a_503_naming_it_and_too_many_generations_a_429():
    # RESOURCE_EXHAUSTED on the wire (UNAVAILABLE would be retried by the channel); the reason decides.
    silent = _rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "No trainer agent is available to generate; try again",
                        reason="no_agent_available")
    error = from_rpc_error(silent)
    assert (error.status, error.code, error.headers["Retry-After"]) == (503, "no_agent_available", "5")
    assert "No trainer agent is available" in error.error
    busy = from_rpc_error(_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED, "wait", reason="too_many_generations"))
    assert (busy.status, busy.code) == (429, "too_many_generations")
