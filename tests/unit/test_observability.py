"""The gateway's request ids and Prometheus series, and the services' gRPC
interceptor, in process: the gateway app in front of a real grpc.aio server
made by ``services.common.grpc.create_server``.
"""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from brightrun.job.v1 import job_pb2, job_pb2_grpc
from gateway.app import create_app
from gateway.auth import mint_token
from gateway.http import Caller
from gateway_kit import gateway_settings
from services.common import logs, tracing
from services.common.errors import NotFound
from services.common.grpc import create_server, rpc, user_id

SECRET = "observability-test-secret-long-enough"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
TRACESTATE = "vendor=opaque-7,other=x"
UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.IGNORECASE)


class Jobs(job_pb2_grpc.JobServiceServicer):
    """Answers GetJobDetail with NOT_FOUND, noting the ids its log context carried and logging a line."""

    def __init__(self):
        self.seen: list[dict] = []

    @rpc
    async def GetJobDetail(self, request, context):
        self.seen.append({"user": user_id(context), "request_id": logs.current("request_id"),
                          "trace_id": logs.current("trace_id"), "onward": tracing.headers()})
        logging.getLogger("test.jobs").info("looking for the job", extra={"job_id": request.job_id})
        raise NotFound("Job not found")


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def jobs():
    servicer = Jobs()
    name = job_pb2.DESCRIPTOR.services_by_name["JobService"].full_name
    server, port, _ = create_server(
        "127.0.0.1:0", [lambda s: job_pb2_grpc.add_JobServiceServicer_to_server(servicer, s)], [name])
    await server.start()
    yield f"127.0.0.1:{port}", servicer
    await server.stop(None)


@pytest_asyncio.fixture(loop_scope="session")
async def http(jobs):
    address, _ = jobs
    app = create_app(gateway_settings(BRIGHTRUN_JWT_SECRET=SECRET), job_addr=address)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
            yield client


@pytest.fixture
def json_lines():
    """What the process logs meanwhile, as the JSON format writes it."""
    stream = io.StringIO()
    handler = logs.handler("gateway", "json", stream)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def _auth() -> dict:
    return {"Authorization": f"Bearer {mint_token(str(uuid.uuid4()), SECRET)}"}


async def _samples(http: httpx.AsyncClient) -> list:
    reply = await http.get("/metrics")  # no token: for Prometheus, not users
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain")
    return [s for family in text_string_to_metric_families(reply.text) for s in family.samples]


def _value(samples, name: str, **labels) -> float:
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


async def test_the_clients_request_id_and_trace_context_reach_the_service_and_come_back(http, jobs, json_lines):
    _, servicer = jobs
    job_id = str(uuid.uuid4())
    reply = await http.get(f"/api/jobs/{job_id}", headers={**_auth(), "X-Request-Id": "client-42",
                                                              "traceparent": TRACEPARENT, "tracestate": TRACESTATE})
    assert reply.status_code == 404
    assert reply.headers["x-request-id"] == "client-42"
    assert servicer.seen[-1]["request_id"] == "client-42"
    assert servicer.seen[-1]["trace_id"] == TRACE_ID
    # The vendor's tracestate came through the gateway and the gRPC call, and goes on with the service's calls.
    onward = servicer.seen[-1]["onward"]
    assert onward["tracestate"] == TRACESTATE and logs.trace_id_from(onward["traceparent"]) == TRACE_ID
    lines = json_lines()
    handled = [line for line in lines if line["message"] == "looking for the job"]
    assert handled and handled[0]["request_id"] == "client-42" and handled[0]["trace_id"] == TRACE_ID
    assert handled[0]["job_id"] == job_id and handled[0]["level"] == "INFO" and handled[0]["service"] == "gateway"
    access = [line for line in lines if "JobService/GetJobDetail NOT_FOUND" in line["message"]]
    assert access and access[0]["request_id"] == "client-42", lines


async def test_a_request_without_a_usable_id_gets_a_fresh_one(http, jobs):
    _, servicer = jobs
    made = (await http.get(f"/api/jobs/{uuid.uuid4()}", headers=_auth())).headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made) and servicer.seen[-1]["request_id"] == made
    assert servicer.seen[-1]["trace_id"] == ""
    for bad in ("has spaces in it", "x" * 129, "quote\"d"):
        replaced = (await http.get("/healthz", headers={"X-Request-Id": bad})).headers["x-request-id"]
        assert replaced != bad and re.fullmatch(r"[0-9a-f]{32}", replaced)


async def test_requests_are_counted_by_route_template_and_status(http):
    before = await _samples(http)
    for _ in range(2):
        assert (await http.get(f"/api/jobs/{uuid.uuid4()}", headers=_auth())).status_code == 404
    assert (await http.get(f"/api/jobs/{uuid.uuid4()}")).status_code == 401
    after = await _samples(http)
    name = "brightrun_http_requests_total"
    route = {"method": "GET", "route": "/api/jobs/{id}"}
    assert _value(after, name, status="404", **route) - _value(before, name, status="404", **route) == 2
    assert _value(after, name, status="401", **route) - _value(before, name, status="401", **route) == 1
    assert _value(after, "brightrun_http_request_duration_seconds_count", status="404", **route) >= 2
    grpc_call = {"grpc_service": "brightrun.job.v1.JobService", "grpc_method": "GetJobDetail", "grpc_code": "NOT_FOUND"}
    grpc_delta = (_value(after, "brightrun_grpc_server_handled_total", **grpc_call)
                  - _value(before, "brightrun_grpc_server_handled_total", **grpc_call))
    assert grpc_delta == 2
    assert _value(after, "brightrun_grpc_server_handling_seconds_count", **grpc_call) >= 2


async def test_no_label_value_is_an_id(http):
    await http.get(f"/api/jobs/{uuid.uuid4()}", headers=_auth())
    await http.get(f"/api/datasets/{uuid.uuid4()}/nothing-here", headers=_auth())
    await http.get(f"/{uuid.uuid4()}")
    samples = await _samples(http)
    assert _value(samples, "brightrun_http_requests_total") >= 3
    assert not [(s.name, s.labels) for s in samples if any(UUID.search(v) for v in s.labels.values())]


async def test_an_unexpected_error_is_logged_answered_and_counted_under_the_request_and_job_ids(jobs, json_lines, monkeypatch):
    async def broken(self, method, request):
        raise RuntimeError("a bug in the gateway")

    address, _ = jobs
    app = create_app(gateway_settings(BRIGHTRUN_JWT_SECRET=SECRET), job_addr=address)
    monkeypatch.setattr(Caller, "__call__", broken)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            before = _value(await _samples(http), "brightrun_http_requests_total", status="500", route="/api/jobs/{id}")
            job_id = str(uuid.uuid4())
            reply = await http.get(f"/api/jobs/{job_id}", headers={**_auth(), "X-Request-Id": "bug-1"})
            after = _value(await _samples(http), "brightrun_http_requests_total", status="500", route="/api/jobs/{id}")
    assert reply.status_code == 500 and reply.headers["x-request-id"] == "bug-1"
    assert after - before == 1
    logged = [line for line in json_lines() if line["message"].startswith("unexpected error")]
    assert logged and logged[0]["request_id"] == "bug-1" and "a bug in the gateway" in logged[0]["exception"]
    assert logged[0]["job_id"] == job_id  # the route's {id}, in every line of the request


@pytest.mark.parametrize("module", [
    "gateway.app", "services.dataset_svc.server", "services.job_svc.server", "services.artifact_svc.server",
    "services.billing_svc.server", "services.trainer_agent.training_metrics",
])
def test_the_control_plane_with_its_metrics_and_logs_stays_torch_free(module):
    code = f"import sys, services.common.logs, {module}; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.strip() == "False"
