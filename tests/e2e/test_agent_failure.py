"""A trainer agent killed mid-job: JetStream redelivers the assignment, a new
agent resumes from the last checkpoint in the object store, and the job's
metric history ends with exactly one point per step."""

from __future__ import annotations

import os
import signal
import uuid

import httpx
import pytest

from gateway.auth import mint_token
from services.common.config import DEV_JWT_SECRET
from services.platform.journey import call, job_events, upload_dataset, wait_dataset, wait_for, write_demo_dataset
from services.platform.launcher import Platform

pytestmark = pytest.mark.slow


def test_a_killed_agents_job_resumes_on_another_agent(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIGHTRUN_")}
    env.update(
        BRIGHTRUN_AGENT_CHECKPOINT_STEPS="5",
        BRIGHTRUN_AGENT_ACK_WAIT_SECONDS="4",
        BRIGHTRUN_AGENT_HEARTBEAT_SECONDS="1",
    )
    with Platform(tmp_path / "home", env, http_port=0) as platform:
        token = mint_token(str(uuid.uuid4()), DEV_JWT_SECRET)
        with httpx.Client(base_url=platform.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
            path = write_demo_dataset(tmp_path / "reverse.jsonl", conversations=24)
            dataset = wait_dataset(api, upload_dataset(api, path, "reverse")["id"])
            hyperparameters = {"learning_rate": 0.001, "batch_size": 1, "epochs": 12, "rank": 4, "dropout": 0.1}
            job = call(api, "POST", "/api/jobs", json={
                "dataset_id": dataset["id"], "preset_id": "custom",
                "gpu_config": {"type": "CPU", "count": 1}, "hyperparameters": hyperparameters,
            })
            for name, data in job_events(api, job["id"], timeout=120):
                if name == "metric" and data["step"] >= 12:
                    break
            agent = platform.processes()["trainer_agent"]
            os.killpg(agent, signal.SIGKILL)  # the agent and its training worker, without a word
            platform.spawn_agent()
            done = wait_for(lambda: call(api, "GET", f"/api/jobs/{job['id']}")["job"],
                            lambda j: j["status"] in ("completed", "failed"), 240, "the resumed job")
            assert done["status"] == "completed", done["error_message"]
            assert done["retry_count"] >= 1
            steps = [m["step"] for m in call(api, "GET", f"/api/jobs/{job['id']}")["metrics"]]
            assert steps == list(range(1, done["total_steps"] + 1))
        log = (platform.home / "logs" / "trainer_agent-2.log").read_text()
        assert "attempt 2" in log
