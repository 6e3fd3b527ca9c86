"""A job outlives what happens to its trainer: an agent killed mid-job (the
platform restarts it, and JetStream redelivers the assignment to it after its
ack deadline), an agent shut down (it checkpoints and hands the job back at
once), a worker that stalls (the watchdog kills it and the retry resumes it; K
stalls fail the job). Each resumed job's metric history ends with exactly one
point per step."""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.auth import mint_token
from services.common.config import DEV_JWT_SECRET
from services.platform.journey import call, job_events, upload_dataset, wait_dataset, wait_for, write_demo_dataset
from services.platform.launcher import Platform
from services.common.storage import checkpoint_key, model_prefix

pytestmark = pytest.mark.slow

HYPERPARAMETERS = {"learning_rate": 0.001, "batch_size": 1, "epochs": 12, "rank": 4, "dropout": 0.1}


def _platform(tmp_path, **agent_env: str) -> Platform:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIGHTRUN_")}
    env.update({f"BRIGHTRUN_AGENT_{name.upper()}": value for name, value in agent_env.items()})
    return Platform(tmp_path / "home", env, http_port=0)


def _api(platform: Platform) -> httpx.Client:
    token = mint_token(str(uuid.uuid4()), DEV_JWT_SECRET)
    return httpx.Client(base_url=platform.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def _start_job(api: httpx.Client, tmp_path, epochs: int = 12) -> dict:
    path = write_demo_dataset(tmp_path / "reverse.jsonl", conversations=24)
    dataset = wait_dataset(api, upload_dataset(api, path, "reverse")["id"])
    return call(api, "POST", "/api/jobs", json={
        "dataset_id": dataset["id"], "preset_id": "custom", "gpu_config": {"type": "CPU", "count": 1},
        "hyperparameters": {**HYPERPARAMETERS, "epochs": epochs},
    })["job"]


def _wait_step(api: httpx.Client, job: dict, step: int) -> None:
    for name, data in job_events(api, job["id"], timeout=120):
        if name == "metric" and data["step"] >= step:
            return


def _ended(api: httpx.Client, job: dict, timeout: float = 240) -> dict:
    return wait_for(lambda: call(api, "GET", f"/api/jobs/{job['id']}")["job"],
                    lambda j: j["status"] in ("completed", "failed"), timeout, "the job's end")


def _one_point_per_step(api: httpx.Client, job: dict) -> list[int]:
    return [m["step"] for m in call(api, "GET", f"/api/jobs/{job['id']}")["metrics"]]


def test_a_killed_agent_is_restarted_and_resumes_its_job(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="services.platform.supervisor")
    with _platform(tmp_path, checkpoint_steps="5", ack_wait_seconds="4", heartbeat_seconds="1") as platform, \
            _api(platform) as api:
        job = _start_job(api, tmp_path)
        _wait_step(api, job, 12)
        _wait_uploaded_checkpoint(platform, job)  # uploads run beside training, a little behind it
        (worker,) = platform.training_workers(job["id"])
        os.kill(platform.processes()["trainer_agent"], signal.SIGKILL)  # without a word
        # Its worker, in a process group of its own, dies with it rather than hold the device.
        wait_for(lambda: {"alive": worker in platform.training_workers(job["id"])}, lambda w: not w["alive"],
                 30, "the orphaned worker's end")
        done = _ended(api, job)
        assert done["status"] == "completed", done["error_message"]
        assert done["retry_count"] >= 1
        assert _one_point_per_step(api, job) == list(range(1, done["total_steps"] + 1))
    # No other agent ran: the one the platform restarted resumed the job.
    assert "trainer_agent died (exit status -9); restarting it in 1s" in caplog.text
    assert "attempt 2 resumes from step-" in _log(platform, "trainer_agent")


def test_a_stopping_agent_checkpoints_and_hands_the_job_to_another_at_once(tmp_path):
    # A long ack deadline and no periodic checkpoint before step 50: a quick
    # handover can only come from the nak, and the resume point from the stop's checkpoint.
    with _platform(tmp_path, checkpoint_steps="50", ack_wait_seconds="120") as platform, _api(platform) as api:
        job = _start_job(api, tmp_path)
        _wait_step(api, job, 6)
        platform.spawn_agent()
        os.kill(platform.processes()["trainer_agent"], signal.SIGTERM)
        stopped = time.monotonic()
        resumed = wait_for(lambda: _log(platform, "trainer_agent-2"), lambda text: "resumes from step-" in text,
                           60, "the second agent's resume")
        assert time.monotonic() - stopped < 60  # the ack deadline (120 s) was not what handed it over
        done = _ended(api, job)
        assert done["status"] == "completed", done["error_message"]
        assert done["retry_count"] >= 1
        assert _one_point_per_step(api, job) == list(range(1, done["total_steps"] + 1))
    handed_back = _log(platform, "trainer_agent")
    assert "shut down after step" in handed_back
    step = int(handed_back.split("shut down after step ")[1].split(";")[0])
    assert f"attempt 2 resumes from step-{step:08d}" in resumed


@pytest.fixture(scope="module")
def stalling(tmp_path_factory) -> Iterator[tuple[Platform, httpx.Client]]:
    """A platform whose agent deems a worker stalled after 8 s without a step, 30 s before its first."""
    tmp_path = tmp_path_factory.mktemp("stalling")
    bounds = {"stall_seconds": "8", "startup_seconds": "30"}
    with _platform(tmp_path, checkpoint_steps="5", **bounds) as platform, _api(platform) as api:
        yield platform, api


def test_a_stalled_worker_is_killed_and_the_retry_resumes_it(stalling, tmp_path):
    platform, api = stalling
    job = _start_job(api, tmp_path)
    _wait_step(api, job, 7)
    (worker,) = platform.training_workers(job["id"])
    os.kill(worker, signal.SIGSTOP)  # alive, silent, making no progress: a hung collective, a wedged GPU
    done = _ended(api, job)
    assert done["status"] == "completed", done["error_message"]
    assert done["retry_count"] >= 1
    assert _one_point_per_step(api, job) == list(range(1, done["total_steps"] + 1))
    log = _log(platform, "trainer_agent")
    assert f"job {job['id']}: attempt 1 stalled: no step completed in 8s; killing it" in log
    assert f"job {job['id']}: attempt 2 resumes from step-" in log


def test_a_worker_that_stalls_on_every_attempt_fails_the_job_with_the_reason(stalling, tmp_path):
    platform, api = stalling
    job = _start_job(api, tmp_path, epochs=20)
    stopped: set[int] = set()

    def stall_each_new_worker() -> dict:
        for pid in set(platform.training_workers(job["id"])) - stopped:
            os.kill(pid, signal.SIGSTOP)
            stopped.add(pid)
        return call(api, "GET", f"/api/jobs/{job['id']}")["job"]

    failed = wait_for(stall_each_new_worker, lambda j: j["status"] in ("completed", "failed"), 300, "the job's end")
    assert failed["status"] == "failed"
    # Stopped before their first step, each worker met the startup bound.
    assert "stalled: no step completed in 30s" in failed["error_message"]
    assert failed["retry_count"] == 3
    assert len(stopped) == 4


def test_a_job_cancelled_while_no_agent_ran_is_never_trained(stalling, tmp_path):
    platform, api = stalling
    agent = platform.processes()["trainer_agent"]
    os.kill(agent, signal.SIGTERM)  # idle: it simply leaves
    wait_for(lambda: {"running": _running(agent)}, lambda a: not a["running"], 30, "the agent's exit")
    cancelled = _start_job(api, tmp_path)
    call(api, "POST", f"/api/jobs/{cancelled['id']}/cancel")
    platform.spawn_agent()
    # Jobs are taken in order: once the next one is done, the cancelled one was met and dropped.
    after = _start_job(api, tmp_path, epochs=1)
    assert _ended(api, after)["status"] == "completed"
    assert f"job {cancelled['id']}: attempt" not in _log(platform, "trainer_agent-2")
    assert call(api, "GET", f"/api/jobs/{cancelled['id']}")["metrics"] == []


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_uploaded_checkpoint(platform: Platform, job: dict) -> None:
    store = platform.component("objectstore").client()
    key = checkpoint_key(model_prefix(job["user_id"], job["id"]))

    def archives() -> dict:
        return {"keys": [o["Key"] for o in store.list_objects_v2(Bucket="lora-models", Prefix=key).get("Contents", [])]}

    wait_for(archives, lambda m: m["keys"], 60, "an uploaded checkpoint")


def _log(platform: Platform, name: str) -> str:
    return (platform.home / "logs" / f"{name}.log").read_text()
