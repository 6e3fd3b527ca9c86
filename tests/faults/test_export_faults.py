"""A merged export survives its agent: killed outright mid-export, the agent
is restarted by the platform, JetStream hands the un-acked export assignment
out again, and the export completes instead of staying ``running``."""

from __future__ import annotations

import os
import signal
import time

import httpx
import pytest
from faultkit import ready_dataset, start_job, wait_ended

from services.platform.journey import call, wait_for

pytestmark = pytest.mark.slow


def test_an_agent_killed_mid_export_leaves_it_to_the_next_attempt(platform, api, tmp_path):
    job = wait_ended(api, start_job(api, ready_dataset(api, tmp_path)))
    assert job["status"] == "completed", job["error_message"]
    model_id = wait_for(lambda: call(api, "GET", f"/api/jobs/{job['id']}")["job"], lambda j: j["artifact_id"], 60,
                        "the job's model")["artifact_id"]
    export = call(api, "POST", f"/api/models/{model_id}/exports", json={"kind": "merged"})["export"]
    path = f"/api/models/{model_id}/exports/{export['id']}"

    wait_for(lambda: call(api, "GET", path)["export"], lambda e: e["status"] == "running", 60, "the export running")
    agent = platform.processes()["trainer_agent"]
    os.kill(agent, signal.SIGKILL)  # while it merges: the merge worker dies with it
    time.sleep(1.0)
    # Killed before it finished: whatever completes the export is a later attempt.
    assert call(api, "GET", path)["export"]["status"] == "running"

    done = wait_for(lambda: call(api, "GET", path), lambda d: d["export"]["status"] in ("completed", "failed"), 240,
                    "the export redelivered and completed")
    assert done["export"]["status"] == "completed", done["export"]["error"]
    assert platform.processes()["trainer_agent"] != agent  # another agent process finished it
    files = {u["file"]: u["url"] for u in done["download_urls"]}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(files)
    assert httpx.get(files["config.json"], timeout=30).json()["architectures"] == ["LlamaForCausalLM"]
