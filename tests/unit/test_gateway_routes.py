"""Routes against a tiny in-test gRPC server: status mapping, user id
propagation, request building, SSE framing. No database, no other services."""

import asyncio
import itertools
import json
import os
import uuid

import grpc
import httpx
import pytest
import pytest_asyncio
import sqlalchemy.exc
import uvicorn

from gateway_kit import gateway_settings
from brightrun.billing.v1 import billing_pb2
from brightrun.dataset.v1 import dataset_pb2, dataset_pb2_grpc
from brightrun.job.v1 import job_pb2, job_pb2_grpc
from google.protobuf.descriptor import FieldDescriptor
from gateway.app import create_app
from gateway.auth import mint_token
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, field_errors
from services.common.grpc import as_user, rpc, stream_rpc, user_id

SECRET = "route-test-secret-that-is-long-enough"
KNOWN_DATASET = str(uuid.uuid4())
MISSING_JOB = str(uuid.uuid4())
# CreateJob queues a job on this dataset and answers with a warning.
QUEUED_WITH_WARNING = str(uuid.uuid4())
# CreateJob refuses a job on this dataset quoting a resolved local base model.
QUOTES_A_MODEL_PATH = str(uuid.uuid4())


class FakeDatasets(dataset_pb2_grpc.DatasetServiceServicer):
    def __init__(self):
        self.seen: list[tuple[str, object]] = []

    @rpc
    async def GetDataset(self, request, context):
        owner = user_id(context)
        if request.dataset_id != KNOWN_DATASET:
            raise NotFound("Dataset not found")
        dataset = dataset_pb2.Dataset(id=request.dataset_id, user_id=owner, status=dataset_pb2.DATASET_STATUS_READY)
        return dataset_pb2.GetDatasetResponse(dataset=dataset)

    @rpc
    async def ListDatasets(self, request, context):
        self.seen.append((user_id(context), request))
        if request.page_token == "kforged":
            field_errors({"page_token": ["is not a token this service returned"]})
        return dataset_pb2.ListDatasetsResponse(datasets=[dataset_pb2.Dataset(name="a")], total_size=51,
                                                next_page_token="knext")

    @rpc
    async def DeleteDataset(self, request, context):
        # What the store raises while PostgreSQL is down.
        refused = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
        raise sqlalchemy.exc.OperationalError("SELECT 1", {}, refused) from refused

    @rpc
    async def ConfirmUpload(self, request, context):
        raise KeyError("a bug, not an outage")


class FakeJobs(job_pb2_grpc.JobServiceServicer):
    def __init__(self):
        self.seen: list[tuple[str, object]] = []

    @rpc
    async def CreateJob(self, request, context):
        self.seen.append((user_id(context), request))
        if request.dataset_id == QUEUED_WITH_WARNING:
            job = job_pb2.Job(id=str(uuid.uuid4()), dataset_id=request.dataset_id, status=job_pb2.JOB_STATUS_QUEUED)
            return job_pb2.CreateJobResponse(job=job, warnings=["No trainer agent for 1 x CPU has been seen."])
        if request.dataset_id == QUOTES_A_MODEL_PATH:
            path = os.path.realpath(_settings().model_dirs[0]) + "/tiny-llama"
            raise InvalidArgument("Validation error", {"hyperparameters.base_model": [f"{path!r} has no config.json"]})
        raise FailedPrecondition("Dataset not ready for training", "status='uploading'")

    @stream_rpc
    async def WatchJob(self, request, context):
        self.seen.append((user_id(context), request))
        if request.job_id == MISSING_JOB:
            raise NotFound("Job not found")
        yield job_pb2.WatchJobResponse(job=job_pb2.Job(id=request.job_id, status=job_pb2.JOB_STATUS_RUNNING))
        for step in (request.after_step + 1, request.after_step + 2):
            yield job_pb2.WatchJobResponse(metric_point=job_pb2.MetricPoint(job_id=request.job_id, step=step))


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def services():
    server = grpc.aio.server()
    fakes = {"datasets": FakeDatasets(), "jobs": FakeJobs()}
    dataset_pb2_grpc.add_DatasetServiceServicer_to_server(fakes["datasets"], server)
    job_pb2_grpc.add_JobServiceServicer_to_server(fakes["jobs"], server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", fakes
    await server.stop(None)


def _settings():
    return gateway_settings(BRIGHTRUN_JWT_SECRET=SECRET)


@pytest_asyncio.fixture(loop_scope="session")
async def client(services):
    address, _ = services
    # Billing points at a closed port: calls to it must come back as 503.
    app = create_app(
        _settings(), dataset_addr=address, job_addr=address, artifact_addr=address, billing_addr="127.0.0.1:1"
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            yield http


def _auth(user: str) -> dict:
    return {"Authorization": f"Bearer {mint_token(user, SECRET)}"}


def _json(user: str) -> dict:
    """Headers of a raw JSON body sent as ``content=``."""
    return {**_auth(user), "Content-Type": "application/json"}


async def test_healthz_needs_no_token(client):
    reply = await client.get("/healthz")
    assert reply.status_code == 200


async def test_api_routes_need_a_token(client):
    reply = await client.get(f"/api/datasets/{KNOWN_DATASET}")
    assert reply.status_code == 401
    assert reply.json()["error"] == "Unauthorized"


async def test_the_callers_user_id_reaches_the_service(client):
    user = str(uuid.uuid4())
    reply = await client.get(f"/api/datasets/{KNOWN_DATASET}", headers=_auth(user))
    assert reply.status_code == 200
    assert reply.json()["success"] is True
    assert reply.json()["data"]["dataset"]["user_id"] == user
    assert reply.json()["data"]["dataset"]["status"] == "ready"


async def test_not_found_from_the_service_is_404_with_the_specs_body(client):
    reply = await client.get(f"/api/datasets/{uuid.uuid4()}", headers=_auth(str(uuid.uuid4())))
    assert reply.status_code == 404
    assert reply.json() == {"success": False, "error": "Dataset not found", "details": None, "code": "not_found"}


async def test_a_malformed_id_is_400_saying_it_must_be_a_uuid_without_a_service_call(client, services):
    calls = len(services[1]["datasets"].seen)
    reply = await client.get("/api/datasets/not-a-uuid", headers=_auth(str(uuid.uuid4())))
    assert reply.status_code == 400 and "Must be a UUID" in reply.json()["details"]["id"][0]
    assert len(services[1]["datasets"].seen) == calls


async def test_failed_precondition_is_400_with_the_details_trailer(client, services):
    user = str(uuid.uuid4())
    body = {
        "dataset_id": KNOWN_DATASET,
        "preset_id": "custom",
        "gpu_config": {"type": "CPU", "count": 1},
        "hyperparameters": {"learning_rate": 0.001, "batch_size": 8, "epochs": 2, "rank": 8},
    }
    reply = await client.post("/api/jobs", json=body, headers={**_auth(user), "Idempotency-Key": "k-1"})
    assert reply.status_code == 400
    assert reply.json() == {
        "success": False, "error": "Dataset not ready for training", "details": "status='uploading'",
        "code": "failed_precondition",
    }
    seen_user, request = services[1]["jobs"].seen[-1]
    assert seen_user == user
    assert request.request_id == "k-1" and request.hyperparameters.batch_size == 8


async def test_bad_bodies_are_400_before_any_service_call(client, services):
    calls = len(services[1]["jobs"].seen)
    headers = _auth(str(uuid.uuid4()))
    invalid = await client.post("/api/jobs", content=b"{oops", headers={**headers, "Content-Type": "application/json"})
    assert invalid.status_code == 400 and invalid.json()["error"] == "Invalid JSON"
    wrong = await client.post("/api/jobs", json={"dataset_id": KNOWN_DATASET, "gpu_config": "big"}, headers=headers)
    assert wrong.status_code == 400
    assert wrong.json()["details"]["gpu_config"] == ["Expected an object"]
    assert wrong.json()["details"]["preset_id"] == ["Required"]
    assert len(services[1]["jobs"].seen) == calls


async def test_page_and_limit_map_onto_page_size_and_an_offset_token(client, services):
    user = str(uuid.uuid4())
    reply = await client.get("/api/datasets?page=3&limit=10&status=ready&search=rev", headers=_auth(user))
    assert reply.status_code == 200
    data = reply.json()["data"]
    assert data["pagination"] == {"page": 3, "limit": 10, "total": 51, "totalPages": 6, "next_cursor": "knext"}
    seen_user, request = services[1]["datasets"].seen[-1]
    assert seen_user == user
    assert (request.page_size, request.page_token, request.search) == (10, "20", "rev")
    assert request.status == dataset_pb2.DATASET_STATUS_READY


async def test_a_cursor_is_passed_on_as_the_page_token_and_a_refused_one_is_400_naming_cursor(client, services):
    headers = _auth(str(uuid.uuid4()))
    reply = await client.get("/api/datasets?cursor=knext&page=7&limit=5", headers=headers)
    assert reply.json()["data"]["pagination"]["page"] == 1
    seen = services[1]["datasets"].seen[-1][1]
    assert (seen.page_token, seen.page_size) == ("knext", 5)
    refused = await client.get("/api/datasets?cursor=kforged", headers=headers)
    assert _assert_spec_4xx(refused)["details"] == {
        "cursor": ["Is not a cursor of this list; pass a previous answer's pagination.next_cursor unchanged"]
    }


async def test_bad_query_parameters_are_400(client):
    headers = _auth(str(uuid.uuid4()))
    assert (await client.get("/api/datasets?page=zero", headers=headers)).json()["details"] == {
        "page": ["Expected an integer, got 'zero'"]
    }
    assert (await client.get("/api/datasets?status=done", headers=headers)).status_code == 400
    too_many = await client.get("/api/datasets?limit=101", headers=headers)
    assert too_many.json()["details"] == {"limit": ["Must be at most 100"]}


async def test_an_unreachable_service_is_503(client):
    reply = await client.get("/api/notifications", headers=_auth(str(uuid.uuid4())))
    assert reply.status_code == 503
    assert reply.json()["error"] == "Service unavailable"


async def test_job_events_stream_status_and_metrics_resuming_after_last_event_id(client, services):
    user, job_id = str(uuid.uuid4()), str(uuid.uuid4())
    headers = {**_auth(user), "Last-Event-ID": "7"}
    reply = await client.get(f"/api/jobs/{job_id}/events", headers=headers)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in reply.text.split("\n\n") if f]
    assert frames[0].startswith("event: status\ndata: ")
    assert json.loads(frames[0].split("data: ", 1)[1])["status"] == "running"
    assert frames[1].startswith("event: metric\nid: 8\ndata: ")
    assert [json.loads(f.split("data: ", 1)[1])["step"] for f in frames[1:]] == [8, 9]
    seen_user, request = services[1]["jobs"].seen[-1]
    assert (seen_user, request.job_id, request.after_step) == (user, job_id, 7)


async def test_events_of_an_unknown_job_are_a_plain_404(client):
    reply = await client.get(f"/api/jobs/{MISSING_JOB}/events", headers=_auth(str(uuid.uuid4())))
    assert reply.status_code == 404
    assert reply.json() == {"success": False, "error": "Job not found", "details": None, "code": "not_found"}


class EndlessJobs(job_pb2_grpc.JobServiceServicer):
    def __init__(self):
        self.ended = asyncio.Event()

    @stream_rpc
    async def WatchJob(self, request, context):
        try:
            yield job_pb2.WatchJobResponse(job=job_pb2.Job(id=request.job_id))
            for step in itertools.count(1):
                await asyncio.sleep(0.02)
                yield job_pb2.WatchJobResponse(metric_point=job_pb2.MetricPoint(step=step))
        finally:
            self.ended.set()


async def test_a_client_leaving_the_event_stream_cancels_the_watch():
    # Served by uvicorn for real: only a real connection can go away mid-stream.
    jobs = EndlessJobs()
    server = grpc.aio.server()
    job_pb2_grpc.add_JobServiceServicer_to_server(jobs, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    app = create_app(_settings(), job_addr=f"127.0.0.1:{port}")
    http = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    serving = asyncio.create_task(http.serve())
    try:
        while not http.started:
            await asyncio.sleep(0.01)
        http_port = http.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{http_port}/api/jobs/{uuid.uuid4()}/events"
        async with httpx.AsyncClient() as client:
            async with client.stream("GET", url, headers=_auth(str(uuid.uuid4()))) as reply:
                metrics = 0
                async for line in reply.aiter_lines():
                    metrics += line == "event: metric"
                    if metrics == 3:
                        break
        await asyncio.wait_for(jobs.ended.wait(), 5)
    finally:
        http.should_exit = True
        await serving
        await server.stop(None)


async def test_a_service_whose_database_is_down_answers_503_with_retry_after(client):
    reply = await client.delete(f"/api/datasets/{KNOWN_DATASET}", headers=_auth(str(uuid.uuid4())))
    assert reply.status_code == 503
    assert reply.json()["error"] == "Service unavailable" and reply.json()["details"]
    assert reply.json()["code"] == "unavailable" and "5432" not in reply.text
    assert int(reply.headers["Retry-After"]) > 0


async def test_a_bug_in_a_service_is_still_a_500_that_hides_its_cause_but_names_its_logged_id(client, caplog):
    reply = await client.post(f"/api/datasets/{KNOWN_DATASET}/confirm", headers=_auth(str(uuid.uuid4())))
    assert reply.status_code == 500 and reply.json()["code"] == "internal"
    assert "bug" not in reply.text and "KeyError" not in reply.text and "Retry-After" not in reply.headers
    error_id = reply.json()["details"].rstrip(".").rsplit(" ", 1)[-1]
    # The service logged the cause under the id the caller was given.
    assert any(error_id in r.getMessage() and r.exc_info for r in caplog.records)


# Hostile input: every answer is a 4xx with the spec's {error, details} body,
# decided by the gateway before any service call.

JOB = {
    "dataset_id": KNOWN_DATASET,
    "preset_id": "custom",
    "gpu_config": {"type": "CPU", "count": 1},
    "hyperparameters": {"learning_rate": 0.001, "batch_size": 8, "epochs": 2, "rank": 8},
}
VALID_BODIES = {
    "/api/jobs": (JOB, job_pb2.CreateJobRequest),
    "/api/jobs/estimate": ({k: v for k, v in JOB.items() if k != "preset_id"}, job_pb2.EstimateJobRequest),
    "/api/datasets": ({"name": "chats", "file_name": "c.jsonl", "file_size": 10}, dataset_pb2.CreateDatasetRequest),
}
_NUMBERS = (FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_DOUBLE)


def _wrong_values(field: FieldDescriptor) -> list:
    """JSON values no field of this kind accepts: wrong types, NUL, numbers beyond any range."""
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return ["x", 5, [1], True]
    if field.type == FieldDescriptor.TYPE_STRING:
        return [5, 1.5, True, {}, [], "a\x00b", "lone \ud800 surrogate"]
    if field.cpp_type in _NUMBERS:
        huge = [10**25] if field.cpp_type != FieldDescriptor.CPPTYPE_DOUBLE else []
        return ["5", True, {}, [], *huge]
    return ["true", 1, {}]


def _hostile_bodies():
    for route, (valid, message_cls) in VALID_BODIES.items():
        fields = [(f.name, f, valid) for f in message_cls.DESCRIPTOR.fields]
        while fields:
            path, field, container = fields.pop()
            leaf = path.rsplit(".", 1)[-1]
            for value in _wrong_values(field):
                yield route, path, _with(valid, path, value)
            if field.type == FieldDescriptor.TYPE_MESSAGE and isinstance(container.get(leaf), dict):
                fields += [(f"{path}.{f.name}", f, container[leaf]) for f in field.message_type.fields]


def _with(body: dict, path: str, value) -> dict:
    copy = json.loads(json.dumps(body))
    *parents, leaf = path.split(".")
    target = copy
    for part in parents:
        target = target[part]
    target[leaf] = value
    return copy


def _assert_spec_4xx(reply: httpx.Response, status: int = 400) -> dict:
    assert reply.status_code == status, (reply.status_code, reply.text[:300])
    body = reply.json()
    assert set(body) == {"success", "error", "details", "code"} and body["error"] and body["details"], body
    return body


async def test_every_field_of_every_create_body_rejects_wrong_types_naming_the_field(client, services):
    calls = len(services[1]["jobs"].seen)
    headers = _auth(str(uuid.uuid4()))
    cases = list(_hostile_bodies())
    assert len(cases) > 100  # the walk really went through the nested fields
    for route, path, body in cases:
        # json.dumps escapes a lone surrogate as \ud800, which httpx's own encoding would refuse.
        raw = json.dumps(body).encode()
        reply = await client.post(route, content=raw, headers={**headers, "Content-Type": "application/json"})
        details = _assert_spec_4xx(reply)["details"]
        assert path in details, (route, path, body, details)
    assert len(services[1]["jobs"].seen) == calls


DEEP = b"[" * 5000 + b"]" * 5000
HOSTILE_BODIES = [
    (DEEP, "nests"),
    (b'{"name": ' + DEEP + b"}", "nests"),
    (b'{"file_size": ' + b"9" * 5000 + b"}", "digits"),
    (b'{"hyperparameters": {"learning_rate": NaN}}', "NaN"),
    (b'{"hyperparameters": {"learning_rate": -Infinity}}', "Infinity"),
    (b"\xff\xfe\x00garbage", "not valid JSON"),
    (b"name=chats&file_size=10", "not valid JSON"),
    (b'"just a string"', "JSON object"),
    (b"", "empty"),
]


@pytest.mark.parametrize("route", list(VALID_BODIES))
@pytest.mark.parametrize(("raw", "fragment"), HOSTILE_BODIES, ids=lambda v: repr(v)[:20])
async def test_hostile_bodies_are_400_invalid_json(client, route, raw, fragment):
    reply = await client.post(route, content=raw, headers=_json(str(uuid.uuid4())))
    assert fragment in _assert_spec_4xx(reply)["details"]


async def test_infinite_and_huge_numbers_are_400_naming_the_field(client):
    headers = _json(str(uuid.uuid4()))
    raw = json.dumps(JOB).replace('"learning_rate": 0.001', '"learning_rate": 1e999').encode()
    reply = await client.post("/api/jobs", content=raw, headers=headers)
    assert _assert_spec_4xx(reply)["details"] == {"hyperparameters.learning_rate": ["Must be a finite number"]}


async def test_a_body_over_the_limit_is_413_before_it_is_read(client):
    headers = _auth(str(uuid.uuid4()))
    declared = await client.post("/api/jobs", content=b"x" * (2 << 20), headers=headers)
    assert "at most 1048576 bytes" in _assert_spec_4xx(declared, 413)["details"]

    async def chunks():
        # No Content-Length: the size is only known as the body streams in.
        for _ in range(40):
            yield b" " * 65536

    streamed = await client.post("/api/datasets", content=chunks(), headers={**headers, "Content-Type": "application/json"})
    _assert_spec_4xx(streamed, 413)


async def test_headers_over_64_kib_in_all_are_431_before_any_route(client, services):
    calls = len(services[1]["jobs"].seen)
    headers = {**_json(str(uuid.uuid4())), "X-Padding": "a" * (64 * 1024)}
    body = _assert_spec_4xx(await client.post("/api/jobs", json=JOB, headers=headers), 431)
    assert body["code"] == "headers_too_large" and "65536 bytes" in body["details"]
    assert len(services[1]["jobs"].seen) == calls
    # Just under the bound, the request goes on to the route (which answers as it would without the padding).
    headers["X-Padding"] = "a" * (60 * 1024)
    padded = await client.post("/api/jobs", json=JOB, headers=headers)
    del headers["X-Padding"]
    plain = await client.post("/api/jobs", json=JOB, headers=headers)
    assert (padded.status_code, padded.json().get("code")) == (plain.status_code, plain.json().get("code"))
    assert padded.status_code != 431


@pytest.mark.parametrize(
    ("path", "headers", "field"),
    [
        (f"/api/jobs/{MISSING_JOB}/metrics?after_step=99999999999999999999", {}, "after_step"),
        (f"/api/jobs/{MISSING_JOB}/metrics?after_step=" + "9" * 5000, {}, "after_step"),
        (f"/api/jobs/{MISSING_JOB}/metrics?after_step=-1", {}, "after_step"),
        (f"/api/jobs/{MISSING_JOB}/metrics?limit=1e3", {}, "limit"),
        (f"/api/jobs/{MISSING_JOB}/metrics?before_step=0", {}, "before_step"),
        (f"/api/jobs/{MISSING_JOB}/metrics?before_step=x", {}, "before_step"),
        (f"/api/jobs/{MISSING_JOB}?metrics_limit=10001", {}, "metrics_limit"),
        (f"/api/jobs/{MISSING_JOB}/events", {"Last-Event-ID": "9" * 5000}, "Last-Event-ID"),
        (f"/api/jobs/{MISSING_JOB}/events", {"Last-Event-ID": "99999999999999999999"}, "Last-Event-ID"),
        (f"/api/jobs/{MISSING_JOB}/events", {"Last-Event-ID": "abc"}, "Last-Event-ID"),
        (f"/api/jobs/{MISSING_JOB}/events?after_step=99999999999999999999", {}, "after_step"),
        ("/api/datasets?page=99999999999999999999", {}, "page"),
        ("/api/datasets?page=\u0663", {}, "page"),
        ("/api/datasets?search=a%00b", {}, "search"),
        ("/api/costs?period=month%0A", {}, "period"),
        ("/api/notifications?limit=" + "1" * 30, {}, "limit"),
    ],
    ids=lambda v: str(v).replace(MISSING_JOB, "{id}")[-40:],
)
async def test_hostile_query_parameters_and_headers_are_400_naming_them(client, path, headers, field):
    reply = await client.get(path, headers={**_auth(str(uuid.uuid4())), **headers})
    assert field in _assert_spec_4xx(reply)["details"]


@pytest.mark.parametrize("key", ["k" * 256, "tab\tkey"])
async def test_a_malformed_idempotency_key_is_400_naming_the_header(client, key):
    reply = await client.post("/api/jobs", json=JOB, headers={**_auth(str(uuid.uuid4())), "Idempotency-Key": key})
    assert list(_assert_spec_4xx(reply)["details"]) == ["Idempotency-Key"]


async def test_a_grpc_caller_of_a_buggy_handler_gets_internal_without_its_text(services, client):
    """``client``: the gateway's wiring installs the key ``as_user`` signs with."""
    address, _ = services
    async with grpc.aio.insecure_channel(address) as ch:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await dataset_pb2_grpc.DatasetServiceStub(ch).ConfirmUpload(
                dataset_pb2.ConfirmUploadRequest(dataset_id=KNOWN_DATASET), metadata=as_user("u")
            )
    assert info.value.code() == grpc.StatusCode.INTERNAL
    assert "bug" not in info.value.details() and "KeyError" not in info.value.details()


async def test_a_request_id_in_the_body_is_checked_like_the_header_and_named_as_sent(client):
    reply = await client.post("/api/jobs", json={**JOB, "request_id": "k" * 256}, headers=_auth(str(uuid.uuid4())))
    assert list(_assert_spec_4xx(reply)["details"]) == ["request_id"]


async def test_a_created_job_comes_with_the_services_warnings_beside_it(client):
    reply = await client.post("/api/jobs", json={**JOB, "dataset_id": QUEUED_WITH_WARNING},
                              headers=_auth(str(uuid.uuid4())))

    assert reply.status_code == 201
    body = reply.json()
    job = body["data"]["job"]
    assert job["status"] == "queued" and job["dataset"] == {"id": QUEUED_WITH_WARNING, "name": None}
    assert body["warnings"] == ["No trainer agent for 1 x CPU has been seen."]


async def test_a_preset_alone_is_a_job_request_the_service_completes(client, services):
    body = {"dataset_id": QUEUED_WITH_WARNING, "preset_id": "fast"}
    reply = await client.post("/api/jobs", json=body, headers=_auth(str(uuid.uuid4())))
    assert reply.status_code == 201
    _, request = services[1]["jobs"].seen[-1]
    assert request.preset_id == "fast" and not request.HasField("gpu_config")
    assert not request.hyperparameters.HasField("epochs")


async def test_an_explicit_zero_reaches_the_service_as_set_not_as_absent(client, services):
    body = {"dataset_id": QUEUED_WITH_WARNING, "preset_id": "fast", "hyperparameters": {"epochs": 0}}
    await client.post("/api/jobs", json=body, headers=_auth(str(uuid.uuid4())))
    _, request = services[1]["jobs"].seen[-1]
    assert request.hyperparameters.HasField("epochs") and request.hyperparameters.epochs == 0


async def test_an_unknown_query_parameter_is_400_naming_it_and_what_the_route_takes(client):
    reply = await client.get("/api/datasets?pge=2&page=1", headers=_auth(str(uuid.uuid4())))
    details = _assert_spec_4xx(reply)["details"]
    assert list(details) == ["pge"] and "page, limit, cursor, status, search" in details["pge"][0]


async def test_a_body_that_is_not_json_is_415_and_an_unknown_field_is_400_naming_it(client, services):
    calls = len(services[1]["jobs"].seen)
    headers = _auth(str(uuid.uuid4()))
    form = await client.post("/api/jobs", data={"dataset_id": KNOWN_DATASET}, headers=headers)
    assert form.status_code == 415 and form.json()["code"] == "unsupported_media_type"
    typo = {**JOB, "hyperparameters": {**JOB["hyperparameters"], "learning_rat": 0.1}}
    details = _assert_spec_4xx(await client.post("/api/jobs", json=typo, headers=headers))["details"]
    assert list(details) == ["hyperparameters.learning_rat"]
    assert len(services[1]["jobs"].seen) == calls


async def test_a_number_past_int32_states_the_fields_real_range(client):
    body = {**JOB, "hyperparameters": {**JOB["hyperparameters"], "epochs": 2**40}}
    reply = await client.post("/api/jobs", json=body, headers=_auth(str(uuid.uuid4())))
    assert _assert_spec_4xx(reply)["details"] == {"hyperparameters.epochs": ["Must be between 1 and 20"]}


def test_a_completed_job_with_its_artifact_is_also_a_completed_event_naming_it():
    from gateway.http import Caller
    from gateway.routes.job_events import format_event

    api = Caller(str(uuid.uuid4()), None)
    done = job_pb2.Job(id=MISSING_JOB, status=job_pb2.JOB_STATUS_COMPLETED, artifact_id=KNOWN_DATASET)
    frames = format_event(job_pb2.WatchJobResponse(job=done), api).split("\n\n")
    assert frames[0].startswith("event: status\n")
    assert frames[1] == f'event: completed\ndata: {{"job_id": "{MISSING_JOB}", "artifact_id": "{KNOWN_DATASET}"}}'
    running = job_pb2.Job(id=MISSING_JOB, status=job_pb2.JOB_STATUS_RUNNING)
    assert "event: completed" not in format_event(job_pb2.WatchJobResponse(job=running), api)


def test_answers_show_a_local_base_model_by_its_name_never_the_servers_path(tmp_path):
    from gateway.http import Caller

    models = tmp_path / "models"
    (models / "tiny-llama").mkdir(parents=True)
    api = Caller(str(uuid.uuid4()), None, (models,))
    job = {"hyperparameters": {"base_model": str(models / "tiny-llama")}, "configuration": [{"m": "gpt2"}]}
    body = json.loads(api.ok(job).body)
    assert body["data"] == {"hyperparameters": {"base_model": "tiny-llama"}, "configuration": [{"m": "gpt2"}]}
    assert str(tmp_path) not in json.dumps(body)


async def test_an_error_quoting_a_local_base_model_names_it_without_the_servers_path(client):
    reply = await client.post("/api/jobs", json={**JOB, "dataset_id": QUOTES_A_MODEL_PATH}, headers=_auth(str(uuid.uuid4())))
    assert reply.json()["details"] == {"hyperparameters.base_model": ["'tiny-llama' has no config.json"]}


class DetailJobs(job_pb2_grpc.JobServiceServicer):
    """GetJobDetail only: GetJob and ListMetricPoints answer UNIMPLEMENTED, so the route must not call them."""

    def __init__(self):
        self.seen: list[tuple[str, object]] = []

    @rpc
    async def GetJobDetail(self, request, context):
        self.seen.append((user_id(context), request))
        job = job_pb2.Job(id=request.job_id, dataset_id=KNOWN_DATASET, dataset_name="chats",
                          status=job_pb2.JOB_STATUS_RUNNING)
        points = [job_pb2.MetricPoint(job_id=request.job_id, step=step, training_loss=1.0 / step) for step in (2, 3, 4)]
        records = [billing_pb2.CostRecord(id=str(i), user_id=user_id(context), job_id=request.job_id,
                                          cost_type="compute", amount=0.01 * i, billing_period="2026-12-01")
                   for i in (2, 1)]
        records[0].details.update({"gpu_type": "A100", "hours": 0.5})
        records[0].recorded_at.FromSeconds(1_800_000_000)
        return job_pb2.GetJobDetailResponse(job=job, metric_points=points, older_before_step=1, cost_records=records)


async def test_a_jobs_detail_is_one_job_svc_call_with_its_cost_records():
    jobs = DetailJobs()
    server = grpc.aio.server()
    job_pb2_grpc.add_JobServiceServicer_to_server(jobs, server)  # no billing_svc: a call to it would fail
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    address = f"127.0.0.1:{port}"
    app = create_app(_settings(), job_addr=address, billing_addr=address)
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http:
                user, job_id = str(uuid.uuid4()), str(uuid.uuid4())
                reply = await http.get(f"/api/jobs/{job_id}", headers=_auth(user))
    finally:
        await server.stop(None)
    assert reply.status_code == 200, reply.text
    data = reply.json()["data"]
    assert sorted(data) == ["cost_records", "job", "metrics", "older_metrics_before_step"]
    assert data["job"]["id"] == job_id and data["job"]["status"] == "running"
    assert data["job"]["dataset"] == {"id": KNOWN_DATASET, "name": "chats"}
    assert [m["step"] for m in data["metrics"]] == [2, 3, 4] and data["older_metrics_before_step"] == 1
    # The records as job_svc answered them, in its order, with billing's JSON fields.
    assert data["cost_records"] == [
        {"id": "2", "user_id": user, "job_id": job_id, "cost_type": "compute", "amount": 0.02,
         "details": {"gpu_type": "A100", "hours": 0.5}, "billing_period": "2026-12-01",
         "recorded_at": "2027-01-15T08:00:00Z"},
        {"id": "1", "user_id": user, "job_id": job_id, "cost_type": "compute", "amount": 0.01, "details": None,
         "billing_period": "2026-12-01", "recorded_at": None},
    ]
    # One job_svc call, asking for the detail's window of latest points.
    assert [(u, r.job_id, r.metric_page_size) for u, r in jobs.seen] == [(user, job_id, 500)]
