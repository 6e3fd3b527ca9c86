"""Soak: several jobs at once while NATS, PostgreSQL and the object store go
away and come back in turn and poison lands on every stream. Not in CI (run
with ``pytest -m soak tests/faults/test_soak.py``; BRIGHTRUN_SOAK_ROUNDS sets
how many rounds, 3 by default). Every job must end, accounted exactly once,
with every consumer still consuming."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest
from faultkit import assert_consumers_drain, assert_job_accounted, ready_dataset, start_job, wait_ended

from services.common import events

pytestmark = pytest.mark.soak

OUTAGE_S = 8
POISON_SUBJECTS = ("dataset.uploaded", "job.completed", "job.cancelled", "trainer.metrics", "assign.CPU.1")


def _poison(platform) -> None:
    async def send() -> None:
        nc, js = await events.connect(platform.env["BRIGHTRUN_NATS_URL"], "soak-poison", *platform.nats_login())
        try:
            for subject in POISON_SUBJECTS:
                await js.publish(subject, os.urandom(64), headers={"Nats-Msg-Id": str(uuid.uuid4())})
        finally:
            await nc.close()

    asyncio.run(send())


def test_jobs_survive_rounds_of_outages_and_poison(platform, api, tmp_path):
    rounds = int(os.environ.get("BRIGHTRUN_SOAK_ROUNDS", "3"))
    dataset = ready_dataset(api, tmp_path, conversations=24)
    jobs = []
    for round_ in range(rounds):
        jobs += [start_job(api, dataset, epochs=6, batch_size=1) for _ in range(2)]
        for name in ("nats", "postgres", "objectstore"):
            component = platform.component(name)
            component.stop()
            time.sleep(OUTAGE_S)
            component.start()
            _poison(platform)
    for job in jobs:
        done = wait_ended(api, job, timeout=600)
        assert done["status"] == "completed", done["error_message"]
        assert_job_accounted(platform, api, done)
    assert_consumers_drain(platform, timeout=120)
