"""One trace from a job's creation to its assignment, across the embedded
platform's processes: the platform exports its spans over OTLP/HTTP to a small
receiver this test runs (decoding ``ExportTraceServiceRequest`` protobufs), and
a job created with a client's ``traceparent`` must leave spans of that one
trace in the gateway, job_svc's CreateJob, its outbox relay's publish of the
assignment and the trainer agent's handling of it. A model's export and a
generation, asked for with their own ``traceparent``, are each handled by
the agent in a span of the asking request's trace.
"""

from __future__ import annotations

import gzip
import os
import secrets
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from services.platform.journey import call, upload_dataset, wait_dataset, wait_for, write_demo_dataset
from services.platform.launcher import Platform

pytestmark = pytest.mark.slow

HYPERPARAMETERS = {"learning_rate": 0.001, "batch_size": 2, "epochs": 1, "rank": 4, "dropout": 0.0}


class Receiver(ThreadingHTTPServer):
    """An OTLP/HTTP traces endpoint keeping (service, span name, trace id hex) of every span it is sent."""

    def __init__(self):
        self.spans: list[tuple[str, str, str]] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Export)


class _Export(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest.FromString(body)
        found = []
        for resource in request.resource_spans:
            service = next(a.value.string_value for a in resource.resource.attributes if a.key == "service.name")
            found += [(service, s.name, s.trace_id.hex()) for scope in resource.scope_spans for s in scope.spans]
        with self.server.lock:
            self.server.spans.extend(found)
        answer = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def receiver():
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def platform(tmp_path_factory, receiver):
    """The embedded default exporting its spans to ``receiver``, in batches sent every 200 ms."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BRIGHTRUN_", "OTEL_"))}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{receiver.server_address[1]}"
    env["OTEL_BSP_SCHEDULE_DELAY"] = "200"
    with Platform(tmp_path_factory.mktemp("traced") / "home", env, http_port=0) as running:
        yield running


@pytest.fixture(scope="module")
def api(platform):
    token = platform.token(str(uuid.uuid4()))
    with httpx.Client(base_url=platform.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def dataset(api, tmp_path_factory):
    path = write_demo_dataset(tmp_path_factory.mktemp("data") / "d.jsonl", 8)
    ready = wait_dataset(api, upload_dataset(api, path, "traced")["id"])
    assert ready["status"] == "ready", ready
    return ready


def _trace() -> tuple[str, str]:
    """A new trace id and a client's traceparent in it."""
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


def _spans_of(receiver: Receiver, trace_id: str) -> dict:
    with receiver.lock:
        return {"spans": {(service, name) for service, name, tid in receiver.spans if tid == trace_id}}


def _create_job(api: httpx.Client, dataset: dict, **headers: str) -> dict:
    return call(api, "POST", "/api/jobs", headers=headers, json={
        "dataset_id": dataset["id"], "preset_id": "custom", "gpu_config": {"type": "CPU", "count": 1},
        "hyperparameters": HYPERPARAMETERS})["job"]


def test_one_trace_spans_a_job_from_its_creation_to_its_assignment(api, dataset, receiver):
    trace_id, traceparent = _trace()
    job = _create_job(api, dataset, traceparent=traceparent)

    def complete(seen: dict) -> bool:
        spans = seen["spans"]
        return (("gateway", "POST /api/jobs") in spans
                and ("job_svc", "brightrun.job.v1.JobService/CreateJob") in spans
                and any(s == "job_svc" and n.startswith("publish assign.") for s, n in spans)
                and any(s == "trainer_agent" and n.startswith("assignment assign.") for s, n in spans))

    seen = wait_for(lambda: _spans_of(receiver, trace_id), complete, 60,
                    f"the spans of trace {trace_id} for job {job['id']}")
    # The event written in CreateJob's transaction with the assignment is published in that trace too.
    assert ("job_svc", "publish job.queued") in seen["spans"]


def test_the_agent_handles_an_export_and_a_generation_in_the_trace_that_asked_for_it(api, dataset, receiver):
    job = _create_job(api, dataset)
    job = wait_for(lambda: call(api, "GET", f"/api/jobs/{job['id']}")["job"],
                   lambda j: j["status"] in ("completed", "failed") and (j["status"] == "failed" or j["artifact_id"]),
                   600, f"job {job['id']} completed")
    assert job["status"] == "completed", job["error_message"]
    model = job["artifact_id"]

    export_trace, traceparent = _trace()
    reply = api.post(f"/api/models/{model}/exports", json={"kind": "merged"}, headers={"traceparent": traceparent})
    assert reply.status_code == 202, reply.text
    generation_trace, traceparent = _trace()
    call(api, "POST", f"/api/models/{model}/generate", headers={"traceparent": traceparent},
         json={"prompts": ["hello world"], "max_new_tokens": 4})

    def spanned(service: str, prefix: str):
        return lambda seen: any(s == service and n.startswith(prefix) for s, n in seen["spans"])

    # Each process exports its spans in its own batches: the agent's may come before artifact_svc's.
    agent_generated = spanned("trainer_agent", "generation assign.")
    served = spanned("artifact_svc", "brightrun.artifact.v1.ArtifactService/Generate")
    wait_for(lambda: _spans_of(receiver, generation_trace), lambda seen: agent_generated(seen) and served(seen),
             60, f"the agent's generation span and artifact_svc's Generate in trace {generation_trace}")
    agent_exported = spanned("trainer_agent", "export assign.export.")
    published = spanned("artifact_svc", "publish assign.export.")
    wait_for(lambda: _spans_of(receiver, export_trace), lambda seen: agent_exported(seen) and published(seen),
             300, f"the agent's export span and artifact_svc's publish of the export in trace {export_trace}")
