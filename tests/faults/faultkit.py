"""Helpers of the fault-injection suite: run a small job through the gateway and
check what a job must leave behind whatever was done to the platform
meanwhile: a terminal status, one metric point per step, one notification of
each kind, and every consumer still consuming.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import httpx
import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from brightrun.billing.v1 import billing_pb2
from brightrun.events.v1 import events_pb2
from brightrun.billing.v1.billing_pb2_grpc import BillingServiceStub
from gateway.auth import mint_token
from services.common import events, identity
from services.common.config import DEV_JWT_SECRET
from services.common.grpc import as_user, channel
from services.platform.journey import call, upload_dataset, wait_dataset, wait_for, write_demo_dataset
from services.platform.launcher import Platform

TERMINAL = ("completed", "failed", "cancelled")
HYPERPARAMETERS = {"learning_rate": 0.001, "batch_size": 2, "epochs": 2, "rank": 4, "dropout": 0.0}
# Fast agent bounds: a dead agent's job is redelivered within seconds.
AGENT_ENV = {
    "BRIGHTRUN_AGENT_CHECKPOINT_STEPS": "5",
    "BRIGHTRUN_AGENT_ACK_WAIT_SECONDS": "6",
    "BRIGHTRUN_AGENT_HEARTBEAT_SECONDS": "1",
}


def platform_env(**extra: str) -> dict[str, str]:
    """This process's environment without BRIGHTRUN_* (the platform starts its own components), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIGHTRUN_")}
    env.update(AGENT_ENV)
    env.update(extra)
    return env



def new_user_client(platform: Platform) -> httpx.Client:
    """An API client acting as a brand-new user, so each test sees only its own records."""
    token = mint_token(str(uuid.uuid4()), DEV_JWT_SECRET)
    return httpx.Client(base_url=platform.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)



def ready_dataset(api: httpx.Client, folder: Path, conversations: int = 16) -> dict:
    path = write_demo_dataset(folder / f"reverse-{uuid.uuid4().hex[:8]}.jsonl", conversations=conversations)
    dataset = wait_dataset(api, upload_dataset(api, path, "reverse")["id"])
    assert dataset["status"] == "ready", dataset
    return dataset


def start_job(api: httpx.Client, dataset: dict, **hyperparameters) -> dict:
    return call(api, "POST", "/api/jobs", json={
        "dataset_id": dataset["id"], "preset_id": "custom", "gpu_config": {"type": "CPU", "count": 1},
        "hyperparameters": {**HYPERPARAMETERS, **hyperparameters},
    })["job"]


def wait_ended(api: httpx.Client, job: dict, timeout: float = 180) -> dict:
    """The job once it is terminal; TimeoutError (a stuck job) otherwise."""
    return wait_for(lambda: call(api, "GET", f"/api/jobs/{job['id']}")["job"],
                    lambda j: j["status"] in TERMINAL, timeout, f"job {job['id']} ending")


def notifications_of(api: httpx.Client, job_id: str) -> list[dict]:
    notes = call(api, "GET", "/api/notifications", params={"limit": 100})["notifications"]
    return [n for n in notes if (n.get("metadata") or {}).get("job_id") == job_id]


def metric_points(api: httpx.Client, job_id: str) -> list[dict]:
    """Every metric point of a job of up to 10,000 steps (the detail shows the latest 500 unless asked)."""
    return call(api, "GET", f"/api/jobs/{job_id}", params={"metrics_limit": 10000})["metrics"]


def assert_job_accounted(platform: Platform, api: httpx.Client, job: dict) -> None:
    """What a finished job leaves, exactly once: one metric point per step, one
    notification of each kind, cost records that sum to its final cost and one
    storage charge for a trained model (waited for: billing consumes asynchronously)."""
    def points() -> dict:
        return {"steps": [m["step"] for m in metric_points(api, job["id"])]}

    if job["status"] == "completed":
        # A point whose delivery an outage lost comes back when JetStream redelivers it: eventually, every step.
        expected = list(range(1, job["current_step"] + 1))
        wait_for(points, lambda p: p["steps"] == expected or len(p["steps"]) > len(expected), 60, "every step's point")
    steps = points()["steps"]
    assert steps == sorted(set(steps)), f"metric points repeat or go back: {steps}"
    if job["status"] == "completed":
        assert steps == expected, steps
    final = {"completed": "job_completed", "failed": "job_failed", "cancelled": "job_cancelled"}[job["status"]]
    notes = wait_for(lambda: {"kinds": [n["type"] for n in notifications_of(api, job["id"])]},
                     lambda n: final in n["kinds"], 60, f"the {final} notification")["kinds"]
    assert sorted(notes) == sorted(set(notes)), f"a notification came twice: {notes}"
    stored = 1 if job["status"] == "completed" else 0
    charged = wait_for(lambda: _charges(platform, job), lambda c: c["storage"] >= stored and c["final"], 60,
                       "the job's cost records")
    assert charged["storage"] == stored, charged
    assert round(charged["compute"], 2) == round(job["final_cost"] or 0.0, 2), charged


def _charges(platform: Platform, job: dict) -> dict:
    """The job's cost records as billing_svc lists them to its owner: compute
    charged, storage records, and whether the closing compute record is there."""

    identity.install(platform.env["BRIGHTRUN_INTERNAL_TOKEN_SECRET"])  # as_user then speaks to this stack

    async def read() -> list:
        async with channel(platform.env["BRIGHTRUN_BILLING_ADDR"]) as ch:
            reply = await BillingServiceStub(ch).ListCostRecords(
                billing_pb2.ListCostRecordsRequest(job_id=job["id"], page_size=100), metadata=as_user(job["user_id"])
            )
        return list(reply.cost_records)

    records = asyncio.run(read())
    compute = [r for r in records if r.cost_type == "compute"]
    return {
        "compute": sum(r.amount for r in compute),
        "storage": sum(1 for r in records if r.cost_type == "storage"),
        "final": any(r.details["cumulative"] == round(job["final_cost"] or 0.0, 2) for r in compute)
        or not (job["final_cost"] or 0.0),
    }


def trainer_plans(platform: Platform, job: dict) -> list[int]:
    """The total steps each of the job's attempts planned, as its agent published them on TRAINER."""

    async def read() -> list[int]:
        nc, js = await events.connect(platform.env["BRIGHTRUN_NATS_URL"], "plan-probe", *platform.nats_login())
        try:
            config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL, ack_policy=AckPolicy.NONE)
            subscription = await js.pull_subscribe("trainer.attempt.planned", stream="TRAINER", config=config)
            try:
                messages = await subscription.fetch(1000, timeout=2)
            except nats.errors.TimeoutError:
                messages = []
            plans = (events_pb2.Event.FromString(message.data) for message in messages)
            return [e.trainer_attempt_planned.total_steps for e in plans if e.trainer_attempt_planned.job_id == job["id"]]
        finally:
            await nc.close()

    return asyncio.run(read())


def consumer_backlog(platform: Platform) -> dict[str, int]:
    """Every durable consumer of the service streams and what it has not yet acked
    (pending + unacknowledged): a consumer that stopped keeps a backlog for ever."""

    async def read() -> dict[str, int]:
        nc, js = await events.connect(platform.env["BRIGHTRUN_NATS_URL"], "fault-probe", *platform.nats_login())
        try:
            backlog = {}
            for stream in ("DATASETS", "JOBS", "ARTIFACTS", "TRAINER", "BILLING"):
                for info in await js.consumers_info(stream):
                    if info.config.durable_name:
                        backlog[info.name] = info.num_pending + info.num_ack_pending
            return backlog
        finally:
            await nc.close()

    return asyncio.run(read())


def assert_consumers_drain(platform: Platform, timeout: float = 60) -> None:
    """Every durable consumer gets through its backlog: none is dead."""
    wait_for(lambda: consumer_backlog(platform), lambda b: not any(b.values()), timeout, "every consumer's backlog")
