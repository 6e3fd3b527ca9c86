"""Metrics and logs of the embedded platform during a real job (tiny model,
CPU agent): each process's ``/metrics`` has the series an operator reads, with
plausible values and no id in any label; with ``BRIGHTRUN_LOG_FORMAT=json``
every log line is a JSON object and the request id a client sent is in the
gateway's and job_svc's lines of that request.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.auth import mint_token
from services.common import events
from services.common.config import DEV_JWT_SECRET
from services.platform.journey import call, upload_dataset, wait_dataset, wait_for, write_demo_dataset
from services.platform.launcher import Platform

pytestmark = pytest.mark.slow

HYPERPARAMETERS = {"learning_rate": 0.001, "batch_size": 2, "epochs": 2, "rank": 4, "dropout": 0.0}
REQUEST_ID = f"observability-{uuid.uuid4().hex[:12]}"
UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}", re.IGNORECASE)


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """The embedded default writing JSON logs, as the Kubernetes manifests choose."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIGHTRUN_")}
    env["BRIGHTRUN_LOG_FORMAT"] = "json"
    with Platform(tmp_path_factory.mktemp("observed") / "home", env, http_port=0) as running:
        yield running


def scrape(url: str, *, starting: bool = False) -> dict[tuple[str, frozenset], float]:
    """Every sample at ``url``: (name, labels) -> value; ``starting``: none while nothing listens there yet."""
    try:
        reply = httpx.get(url, timeout=10)
    except httpx.ConnectError:
        if starting:
            return {}
        raise
    reply.raise_for_status()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(reply.text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float | None:
    """The sum of ``name``'s samples that have ``labels``; None when there is none."""
    found = [v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= ls]
    return sum(found) if found else None


@pytest.fixture(scope="module")
def journey(platform, tmp_path_factory):
    """A dataset validated and a job trained to the end, the agent's metrics scraped while it ran."""
    token = mint_token(str(uuid.uuid4()), DEV_JWT_SECRET)
    headers = {"Authorization": f"Bearer {token}", "X-Request-Id": REQUEST_ID}
    with httpx.Client(base_url=platform.gateway_url, headers=headers, timeout=60) as api:
        path = write_demo_dataset(tmp_path_factory.mktemp("data") / "reverse.jsonl", conversations=16)
        dataset = wait_dataset(api, upload_dataset(api, path, "reverse")["id"])
        assert dataset["status"] == "ready", dataset
        job = call(api, "POST", "/api/jobs", json={
            "dataset_id": dataset["id"], "preset_id": "custom", "gpu_config": {"type": "CPU", "count": 1},
            "hyperparameters": HYPERPARAMETERS})["job"]
        agent = platform.metrics_urls["trainer_agent"]
        # The platform is up once the gateway answers; the agent may still be importing its modules.
        during = wait_for(lambda: scrape(agent, starting=True), lambda s: value(s, "brightrun_agent_tokens_per_second"),
                          180, "the agent's first metric point")
        ended = wait_for(lambda: call(api, "GET", f"/api/jobs/{job['id']}")["job"],
                         lambda j: j["status"] in ("completed", "failed", "cancelled"), 180, "the job ending")
        assert ended["status"] == "completed", ended
        missing = api.get(f"/api/jobs/{uuid.uuid4()}")
        assert missing.status_code == 404 and missing.headers["x-request-id"] == REQUEST_ID
    return {"dataset": dataset, "job": ended, "file_bytes": path.stat().st_size, "agent_during_job": during}


def test_the_gateway_counts_requests_by_route_template_and_status(platform, journey):
    samples = scrape(platform.metrics_urls["gateway"])
    assert value(samples, "brightrun_http_requests_total", method="POST", route="/api/jobs", status="201") == 1
    assert value(samples, "brightrun_http_requests_total", method="GET", route="/api/jobs/{id}", status="200") >= 2
    assert value(samples, "brightrun_http_requests_total", method="GET", route="/api/jobs/{id}", status="404") == 1
    assert value(samples, "brightrun_http_request_duration_seconds_count", route="/api/datasets/{id}") >= 1
    # With a metrics port of its own, the API port (what an Ingress exposes) does not serve them.
    assert "brightrun_http_requests_total" not in httpx.get(platform.gateway_url + "/metrics").text


def test_job_svc_reports_its_calls_jobs_queue_wait_consumers_and_outbox(platform, journey):
    url = platform.metrics_urls["job_svc"]
    # Sampled every 15 s: wait for a count that shows the completed job.
    samples = wait_for(lambda: scrape(url), lambda s: (value(s, "brightrun_jobs", status="completed") or 0) >= 1, 40,
                       "jobs by status showing the completed job")
    assert value(samples, "brightrun_jobs", status="running") == 0
    # Nothing queued or running: the stuck-job gauges read 0, not their last value.
    assert value(samples, "brightrun_job_oldest_queued_seconds") == 0
    assert value(samples, "brightrun_job_longest_without_step_seconds") == 0
    created = {"grpc_service": "brightrun.job.v1.JobService", "grpc_method": "CreateJob", "grpc_code": "OK"}
    assert value(samples, "brightrun_grpc_server_handled_total", **created) == 1
    assert value(samples, "brightrun_grpc_server_handling_seconds_count", **created) == 1
    assert value(samples, "brightrun_grpc_server_handled_total", grpc_method="GetJobDetail", grpc_code="NOT_FOUND") == 1
    wait = value(samples, "brightrun_job_queue_wait_seconds_sum")
    assert value(samples, "brightrun_job_queue_wait_seconds_count") == 1 and 0 <= wait < 120
    for consumer in ("job-trainer", "job-artifacts"):
        assert value(samples, "brightrun_consumer_pending_messages", consumer=consumer) is not None, consumer
        assert value(samples, "brightrun_consumer_ack_pending_messages", consumer=consumer) is not None, consumer
    assert value(samples, "brightrun_outbox_unpublished_messages", service="job_svc") is not None
    assert value(samples, "brightrun_outbox_oldest_unpublished_age_seconds", service="job_svc") < 60


def test_dataset_svc_reports_validation_throughput(platform, journey):
    samples = scrape(platform.metrics_urls["dataset_svc"])
    assert value(samples, "brightrun_dataset_validated_bytes_total") == journey["file_bytes"]
    assert value(samples, "brightrun_dataset_validation_seconds_count") == 1
    assert 0 < value(samples, "brightrun_dataset_validation_seconds_sum") < 60


def test_the_agent_reports_training_rates_and_no_gpu_series_on_cpu(platform, journey):
    during = journey["agent_during_job"]
    assert value(during, "brightrun_agent_tokens_per_second", gpu_type="CPU") > 0
    samples = scrape(platform.metrics_urls["trainer_agent"])
    assert value(samples, "brightrun_agent_training_steps_total", gpu_type="CPU") == journey["job"]["total_steps"]
    assert value(samples, "brightrun_agent_steps_per_second", gpu_type="CPU") > 0
    assert value(samples, "brightrun_agent_gpu_memory_bytes") is None
    assert value(samples, "brightrun_agent_gpu_utilization_ratio") is None


def test_a_parked_poison_message_is_counted(platform, journey):
    url = platform.metrics_urls["dataset_svc"]
    parked = {"consumer": "dataset-validator"}
    before = value(scrape(url), "brightrun_messages_parked_total", **parked) or 0.0

    async def publish_garbage() -> None:
        nc, js = await events.connect(platform.env["BRIGHTRUN_NATS_URL"], "observability-test", *platform.nats_login())
        try:
            await js.publish("dataset.uploaded", b"\xff garbage", headers={"Nats-Msg-Id": str(uuid.uuid4())})
        finally:
            await nc.close()

    asyncio.run(publish_garbage())
    wait_for(lambda: scrape(url), lambda s: value(s, "brightrun_messages_parked_total", **parked) == before + 1, 30,
             "the parked message counted")


def test_no_label_value_is_an_id(platform, journey):
    for name, url in platform.metrics_urls.items():
        samples = scrape(url)
        assert samples, name
        assert not [(n, dict(ls)) for n, ls in samples if any(UUID.search(v) for _, v in ls)], name


def test_every_log_line_is_json_and_carries_the_clients_request_id(platform, journey):
    logs = platform.home / "logs"
    lines = {}
    for name in ("gateway", "job_svc", "dataset_svc", "trainer_agent"):
        text = (logs / f"{name}.log").read_text()
        lines[name] = [json.loads(line) for line in text.splitlines() if line.strip()]
        # A trainer agent's log also collects its training workers' lines.
        services = {name, "trainer_worker"} if name == "trainer_agent" else {name}
        assert lines[name] and all(line["service"] in services for line in lines[name]), name
        assert all({"timestamp", "level", "message", "request_id", "trace_id"} <= set(line) for line in lines[name])
    ours = [line for line in lines["job_svc"] if line["request_id"] == REQUEST_ID]
    assert any("JobService/CreateJob OK" in line["message"] for line in ours), ours
    assert any("JobService/GetJobDetail NOT_FOUND" in line["message"] for line in ours), ours
    # dataset_svc was called by job_svc on the same request's behalf (CreateJob reads the dataset).
    assert any("DatasetService/GetDataset OK" in line["message"]
               for line in lines["dataset_svc"] if line["request_id"] == REQUEST_ID)
    assert any(line["request_id"] == REQUEST_ID and "/api/jobs" in line["message"] for line in lines["gateway"])
