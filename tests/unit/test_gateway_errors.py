import json

import grpc
import pytest

from gateway.errors import error_response, from_rpc_error
from services.common.grpc import ERROR_DETAILS_KEY


def _rpc_error(code, message, details=None):
    trailers = grpc.aio.Metadata()
    if details is not None:
        trailers.add(ERROR_DETAILS_KEY, json.dumps({"reason": "r", "details": details}))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailers, details=message)


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
def test_status_codes_map_to_http_with_the_services_message_and_details(code, status):
    error = from_rpc_error(_rpc_error(code, "Dataset not ready for training", {"status": ["is uploading"]}))
    assert error.status == status
    assert error.body() == {"error": "Dataset not ready for training", "details": {"status": ["is uploading"]}}


def test_an_error_without_the_details_trailer_has_null_details():
    assert from_rpc_error(_rpc_error(grpc.StatusCode.NOT_FOUND, "Job not found")).body() == {
        "error": "Job not found",
        "details": None,
    }


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
def test_an_unreachable_service_is_503(code):
    error = from_rpc_error(_rpc_error(code, "failed to connect to all addresses"))
    assert error.status == 503 and error.error == "Service unavailable"


def test_anything_unexpected_is_a_generic_500_without_internals(caplog):
    error = from_rpc_error(_rpc_error(grpc.StatusCode.INTERNAL, "relation job.jobs does not exist"))
    assert error.status == 500
    assert "relation" not in json.dumps(error.body())
    assert "relation job.jobs does not exist" in caplog.text


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED])
def test_a_503_tells_the_client_when_to_retry(code):
    response = error_response(from_rpc_error(_rpc_error(code, "connection refused")))
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert json.loads(response.body)["details"]


def test_an_idempotency_key_reused_with_another_body_is_422_naming_the_key():
    trailers = grpc.aio.Metadata()
    details = {"Idempotency-Key": ["used with a different body"]}
    trailers.add(ERROR_DETAILS_KEY, json.dumps({"reason": "idempotency_key_reused", "details": details}))
    exc = grpc.aio.AioRpcError(grpc.StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(), trailers, details="reused")
    error = from_rpc_error(exc)
    assert (error.status, error.body()) == (422, {"error": "reused", "details": details})
