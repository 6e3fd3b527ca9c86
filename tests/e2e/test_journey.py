"""The whole product journey through the gateway's HTTP API, on the embedded
default: real PostgreSQL, NATS JetStream, SeaweedFS, the four services, one
CPU trainer agent and the gateway, each in its own process.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import tarfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import jwt
import nats
import pytest
import torch

from services.common.config import DEV_JWT_SECRET, SERVICE_SECRETS, read_settings
from services.common.storage import ObjectStorage, checkpoint_key, model_prefix
from services.platform.journey import CPU_JOB, call, job_events, upload_dataset, wait_dataset, wait_for, write_demo_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ready_dataset(platform, alice, tmp_path_factory):
    # Multi-turn: three exchanges a conversation, so that steps and progress are counted in conversations.
    path = write_demo_dataset(tmp_path_factory.mktemp("data") / "reverse.jsonl", conversations=48, exchanges=3)
    confirmed = upload_dataset(alice, path, "reverse words")
    assert confirmed["status"] == "validating"
    dataset = wait_dataset(alice, confirmed["id"])
    assert dataset["status"] == "ready", dataset["validation_errors"]
    return dataset, path


def test_requests_without_a_valid_token_are_401(platform):
    url = platform.gateway_url + "/api/datasets"
    assert httpx.get(url).status_code == 401
    forged = jwt.encode({"sub": str(uuid.uuid4()), "exp": int(time.time()) + 60}, "not-the-secret", algorithm="HS256")
    assert httpx.get(url, headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    expired = jwt.encode({"sub": str(uuid.uuid4()), "exp": int(time.time()) - 5}, DEV_JWT_SECRET, algorithm="HS256")
    reply = httpx.get(url, headers={"Authorization": f"Bearer {expired}"})
    assert reply.status_code == 401 and "error" in reply.json()


def test_dataset_statistics_come_from_the_base_models_tokenizer(platform, ready_dataset):
    from transformers import AutoTokenizer

    dataset, path = ready_dataset
    tokenizer = AutoTokenizer.from_pretrained(platform.env["BRIGHTRUN_DEFAULT_BASE_MODEL"])
    expected = 0
    for line in path.read_text().splitlines():
        turns = json.loads(line)["turns"]
        expected += len(tokenizer.apply_chat_template(turns, tokenize=True, return_dict=False))
    assert dataset["total_training_pairs"] == 48 * 3
    assert dataset["total_tokens"] == expected
    assert dataset["training_ready"] is True
    assert dataset["avg_turns_per_conversation"] == pytest.approx(7.0)
    assert len(dataset["sample_data"]) == 3


def test_a_broken_file_reports_every_bad_line(alice, tmp_path):
    good = {"conversation_id": "a", "turns": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    lines = [json.dumps(good), "{not json", json.dumps({"conversation_id": "b", "turns": "nope"}), "[1, 2]"]
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join(lines) + "\n")
    dataset = wait_dataset(alice, upload_dataset(alice, path, "broken")["id"])
    assert dataset["status"] == "error"
    assert dataset["training_ready"] is False
    assert sorted(e["line"] for e in dataset["validation_errors"]) == [2, 3, 4]
    assert all(e["error"] and e["suggestion"] for e in dataset["validation_errors"])


def test_a_job_on_a_dataset_that_is_not_ready_is_400(alice):
    created = call(alice, "POST", "/api/datasets", json={"name": "never uploaded", "file_name": "x.jsonl", "file_size": 10})
    reply = alice.post("/api/jobs", json={"dataset_id": created["dataset"]["id"], **CPU_JOB})
    assert reply.status_code == 400
    assert reply.json()["error"] == "Dataset not ready for training"
    assert "status='uploading'" in reply.json()["details"]


def test_another_users_resources_are_404(alice, bob, ready_dataset):
    dataset, _ = ready_dataset
    assert bob.get(f"/api/datasets/{dataset['id']}").status_code == 404
    assert bob.post("/api/jobs/estimate", json={"dataset_id": dataset["id"], **CPU_JOB}).status_code == 404
    assert bob.post("/api/jobs", json={"dataset_id": dataset["id"], **CPU_JOB}).status_code == 404


def test_cancel_stops_training_within_a_step_keeps_the_checkpoint_and_ends_the_assignment(
    platform, alice, ready_dataset
):
    dataset, _ = ready_dataset
    long_job = {**CPU_JOB, "hyperparameters": {**CPU_JOB["hyperparameters"], "batch_size": 1, "epochs": 20}}
    job = call(alice, "POST", "/api/jobs", json={"dataset_id": dataset["id"], **long_job})["job"]
    points = []
    for name, data in job_events(alice, job["id"], timeout=120):
        if name == "metric":
            points.append(data)
            if len(points) == 4:
                break
    # Every field of a metric point reaches the browser, GPU ones unset on a CPU.
    assert {"epoch", "step", "training_loss", "learning_rate", "gradient_norm", "throughput",
            "samples_per_second", "gpu_utilization", "gpu_memory_gb"} <= set(points[-1])
    assert points[-1]["gradient_norm"] > 0 and points[-1]["throughput"] > 0 and points[-1]["gpu_memory_gb"] is None
    times = [datetime.fromisoformat(p["timestamp"]) for p in points]
    step_seconds = max((later - earlier).total_seconds() for earlier, later in zip(times, times[1:]))
    (worker,) = platform.training_workers(job["id"])

    cancelled = call(alice, "POST", f"/api/jobs/{job['id']}/cancel")["job"]
    asked = time.monotonic()
    assert cancelled["status"] == "cancelled"
    assert alice.post(f"/api/jobs/{job['id']}/cancel").status_code == 400
    wait_for(lambda: {"running": worker in platform.training_workers(job["id"])}, lambda w: not w["running"],
             120, "the worker's exit")
    stopped_in = time.monotonic() - asked
    # The bound is max(5 s, one step); the cancel's way through the outbox and
    # NATS, the checkpoint and a machine shared with other tests get room on top.
    assert stopped_in < 3 * max(5.0, step_seconds) + 10, (stopped_in, step_seconds)

    steps = [m["step"] for m in call(alice, "GET", f"/api/jobs/{job['id']}")["metrics"]]
    assert steps and max(steps) < cancelled["total_steps"]
    # The step the worker stopped after is kept, complete: no step reported is lost.
    storage = ObjectStorage.from_settings(read_settings(platform.env))
    key = checkpoint_key(model_prefix(job["user_id"], job["id"]))

    def kept_step() -> dict:
        # The archive holds one step-NNNNNNNN directory, the newest checkpoint uploaded.
        if storage.list_keys("lora-models", key) != [key]:
            return {"step": None}
        with tarfile.open(fileobj=io.BytesIO(storage.get_bytes("lora-models", key))) as tar:
            (directory,) = {name.split("/")[0] for name in tar.getnames()}
        return {"step": int(directory.removeprefix("step-"))}

    kept = wait_for(kept_step, lambda k: k["step"] is not None and k["step"] >= max(steps), 60, "the stop's checkpoint")
    assert kept["step"] >= max(steps)
    # Terminated, not merely left un-acked: JetStream holds nothing of it for another agent.
    assert asyncio.run(_assignments_in_flight(platform)) == 0
    assert call(alice, "GET", f"/api/jobs/{job['id']}")["job"]["status"] == "cancelled"


async def _assignments_in_flight(platform) -> int:
    """Assignments the CPU agents' consumer has handed out or still holds, once the agent has settled."""
    user, password = platform.nats_login()
    nc = await nats.connect(platform.env["BRIGHTRUN_NATS_URL"], user=user, password=password)
    try:
        js = nc.jetstream()
        for _ in range(100):
            info = await js.consumer_info("ASSIGN", "agents-CPU-1")
            if info.num_ack_pending == 0:
                break
            await asyncio.sleep(0.1)
        return info.num_ack_pending + info.num_pending
    finally:
        await nc.close()


def test_a_missing_model_is_a_400_and_one_that_cannot_be_loaded_fails_at_once_without_a_retry(
        platform, alice, ready_dataset):
    dataset, _ = ready_dataset
    missing = str(platform.home / "models" / "gone-model")
    gone = {**CPU_JOB, "hyperparameters": {**CPU_JOB["hyperparameters"], "base_model": missing}}
    refused = alice.post("/api/jobs", json={"dataset_id": dataset["id"], **gone})
    assert refused.status_code == 400, refused.text
    assert "does not exist" in refused.json()["details"]["hyperparameters.base_model"][0]
    # A model directory with its config and tokenizer but no weights passes job_svc's launch check;
    # the trainer cannot load it.
    weightless = platform.home / "models" / "no-such-model"
    shutil.copytree(platform.home / "models" / "tiny-llama", weightless, ignore=shutil.ignore_patterns("*.safetensors"),
                    dirs_exist_ok=True)
    broken = {**CPU_JOB, "hyperparameters": {**CPU_JOB["hyperparameters"], "base_model": str(weightless)}}
    job = call(alice, "POST", "/api/jobs", json={"dataset_id": dataset["id"], **broken})["job"]
    failed = wait_for(lambda: call(alice, "GET", f"/api/jobs/{job['id']}")["job"],
                      lambda j: j["status"] in ("completed", "failed"), 120, "the job's end")
    assert failed["status"] == "failed"
    assert failed["retry_count"] == 0
    assert "no-such-model" in failed["error_message"]
    log = (platform.home / "logs" / "trainer_agent.log").read_text()
    assert f"job {job['id']}: attempt 2" not in log


def test_a_named_preset_alone_is_priced_and_an_explicit_zero_is_refused(alice, ready_dataset):
    dataset, _ = ready_dataset
    estimate = call(alice, "POST", "/api/jobs/estimate", json={"dataset_id": dataset["id"], "preset_id": "fast"})
    # fast: batch 8, one epoch, on the default GPU (one A100-80GB at $3.50 an hour).
    assert estimate["training_details"]["total_steps"] == 6 and estimate["hourly_rate"] == 3.5
    zero = {"dataset_id": dataset["id"], "preset_id": "fast", "hyperparameters": {"epochs": 0}}
    refused = alice.post("/api/jobs/estimate", json=zero)
    assert refused.status_code == 400 and refused.json()["code"] == "validation_failed"
    assert "between 1 and 20" in refused.json()["details"]["hyperparameters.epochs"][0]


def test_the_whole_journey_trains_and_delivers_an_adapter(platform, alice, bob, ready_dataset, tmp_path):
    dataset, _ = ready_dataset
    # The agent that trains it holds none of the control plane's credentials: its assignment's grant is its way in.
    agent_env = Path(f"/proc/{platform.processes()['trainer_agent']}/environ").read_bytes().split(b"\0")
    assert {entry.split(b"=", 1)[0].decode() for entry in agent_env if entry} & set(SERVICE_SECRETS) == set()
    estimate = call(alice, "POST", "/api/jobs/estimate", json={"dataset_id": dataset["id"], **CPU_JOB})
    assert estimate["hourly_rate"] == 0
    assert estimate["training_details"]["total_steps"] == 12  # ceil(48 / 8) * 2 epochs
    assert set(estimate["cost_breakdown"]) == {"compute", "storage"}

    reply = alice.post("/api/jobs", json={"dataset_id": dataset["id"], **CPU_JOB})
    assert reply.status_code == 201, reply.text
    job = reply.json()["data"]["job"]
    assert job["status"] == "queued"

    updates, points, completed = [], [], []
    for name, data in job_events(alice, job["id"], timeout=300):
        if name == "status":
            updates.append(data)
        elif name == "metric":
            points.append(data)
        elif name == "completed":
            completed.append(data)
    statuses = [u["status"] for u in updates]
    assert statuses[-1] == "completed"
    # The agent's acceptance reaches the stream live, before training (the model loading) begins.
    assert "initializing" in statuses and statuses.index("initializing") < statuses.index("running")
    assert sorted({p["step"] for p in points}) == list(range(1, 13))
    _assert_progress_and_eta(updates, points)

    detail = call(alice, "GET", f"/api/jobs/{job['id']}")
    job = detail["job"]
    assert job["progress"] == 100 and job["current_step"] == 12 and job["total_steps"] == 12
    assert job["batch_layout"] == {"micro_batch_size": 8, "gradient_accumulation_steps": 1, "world_size": 1}
    assert job["started_at"] and job["completed_at"]
    assert job["queue_wait_seconds"] is not None and job["queue_wait_seconds"] >= 0
    assert [m["step"] for m in detail["metrics"]] == list(range(1, 13))
    assert detail["metrics"][-1]["training_loss"] < detail["metrics"][0]["training_loss"]
    # Each epoch's validation joins the point of its last step, in the history as on the stream.
    validated = {m["step"]: m for m in detail["metrics"] if m["validation_loss"] is not None}
    assert {6, 12} <= set(validated) and validated[12]["perplexity"] > 1
    assert bob.get(f"/api/jobs/{job['id']}").status_code == 404

    # The stream ended by naming the stored adapter: no polling needed.
    assert job["artifact_id"] and completed == [{"job_id": job["id"], "artifact_id": job["artifact_id"]}]
    assert job["dataset"] == {"id": dataset["id"], "name": dataset["name"]}
    assert not job["hyperparameters"]["base_model"].startswith("/")  # a model name, not the server's path
    models = call(alice, "GET", "/api/models")["models"]
    assert [(m["id"], m["dataset"]) for m in models] == [(job["artifact_id"], job["dataset"])]
    model = call(alice, "GET", f"/api/models/{job['artifact_id']}")["model"]
    quality = model["quality_metrics"]
    assert quality["final_training_loss"] is not None
    # Graded from what the trainer measured: the last validation is the final one.
    assert quality["final_validation_loss"] == pytest.approx(validated[12]["validation_loss"])
    assert quality["perplexity"] == pytest.approx(validated[12]["perplexity"])
    assert bob.get(f"/api/models/{model['id']}").status_code == 404

    urls = call(alice, "POST", f"/api/models/{model['id']}/download", json={})["download_urls"]
    names = {u["file"] for u in urls}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= names
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    for item in urls:
        (adapter / item["file"]).write_bytes(httpx.get(item["url"], timeout=60).content)
    _assert_adapter_reproduces_training_logits(platform.env["BRIGHTRUN_DEFAULT_BASE_MODEL"], adapter)
    _assert_try_it(alice, bob, model)

    _assert_notifications_and_costs(alice, bob, job)


def _assert_try_it(alice, bob, model: dict) -> None:
    """The model page's samples and "Try it": a trainer agent answers with the adapter, and without it."""
    samples = model["quality_metrics"]["smoke_samples"]
    assert 1 <= len(samples) <= 3
    for sample in samples:
        assert set(sample) == {"prompt", "expected", "completion", "base_completion"} and sample["prompt"]
    path = f"/api/models/{model['id']}/generate"
    body = {"prompts": ["hello world", "one two three"], "max_new_tokens": 8, "include_base": True}
    first = call(alice, "POST", path, json=body)
    assert first["model_id"] == model["id"]
    assert [r["prompt"] for r in first["results"]] == body["prompts"]
    assert all(isinstance(r["completion"], str) and "base_completion" in r for r in first["results"])
    assert call(alice, "POST", path, json=body) == first  # greedy: the same text again
    chat = {"conversations": [[{"role": "user", "content": "hello"}, {"role": "assistant", "content": "HELLO"},
                               {"role": "user", "content": "world"}]], "max_new_tokens": 4}
    [answer] = call(alice, "POST", path, json=chat)["results"]
    assert answer["prompt"] == "world" and "base_completion" not in answer
    assert bob.post(path, json=body).status_code == 404
    for bad, field in [({"prompts": ["hi"], "max_new_tokens": 0}, "max_new_tokens"),
                       ({"prompts": ["x" * 4001]}, "prompts[0]"),
                       ({"prompts": ["hi"], "conversations": [[{"role": "user", "content": "hi"}]]}, "prompts"),
                       ({"prompts": ["hi"], "temperature": "hot"}, "temperature"),
                       ({"conversations": [[{"role": "user", "content": "hi"}]], "seed": -1}, "seed")]:
        reply = alice.post(path, json=bad)
        assert reply.status_code == 400 and field in reply.json()["details"], (bad, reply.text)


def _assert_progress_and_eta(updates: list[dict], points: list[dict]) -> None:
    """What the monitor page saw: progress that only grows and is exactly 100 at the last step,
    and an ETA whose remaining time only falls, as far as the pace of the steps lets it.

    "Monotone ETA", defined: the ETA extrapolates the pace of the steps timed so
    far. With a steady pace it is one point in time and the remaining time (ETA
    minus the time of the step it was computed at) falls at every step. A step
    slower than the ones before (the epoch's validation, a busy CPU) lengthens the
    pace, and the remaining time may then grow, but by no more than the steps left
    times the spread between the fastest and the slowest step seen: more than
    that is an ETA that slides for no reason (the old one, timed from the job's
    start, grew every step). It never lies before its step, and is that step at
    the last one. One attempt is assumed (retry_count 0): a retry times its pace afresh.
    """
    running = [u for u in updates if u["status"] == "running"]
    assert running and all(u["retry_count"] == 0 for u in updates)
    total = running[-1]["total_steps"]
    progress = [u["progress"] for u in updates]
    assert progress == sorted(progress), progress
    for update in running:
        assert update["progress"] == round(100 * update["current_step"] / total, 2)
    assert [u["progress"] for u in running if u["current_step"] == total] and all(
        u["progress"] == 100.0 for u in running if u["current_step"] == total)
    assert all(u["progress"] < 100.0 for u in running if u["current_step"] < total)
    assert updates[-1]["progress"] == 100.0

    at = {}  # each step's time, as the trainer reported it
    for point in points:
        at.setdefault(point["step"], datetime.fromisoformat(point["timestamp"]))
    durations = {step: at[step] - at[step - 1] for step in at if step - 1 in at}
    timed = [u for u in running if u["estimated_completion_at"]]
    assert timed and timed[-1]["current_step"] == total
    previous = None
    for update in timed:
        step = update["current_step"]
        remaining = datetime.fromisoformat(update["estimated_completion_at"]) - at[step]
        assert remaining >= timedelta(0), (step, remaining)
        seen = [durations[s] for s in durations if s <= step] or [timedelta(0)]  # one step timed: no spread
        slack = (total - step) * (max(seen) - min(seen)) + timedelta(milliseconds=1)
        assert previous is None or remaining <= previous + slack, (step, remaining, previous, slack)
        previous = remaining
    assert previous <= timedelta(milliseconds=1)  # at the last step the ETA is that step's time


def _assert_adapter_reproduces_training_logits(base_model: str, adapter: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    probe = json.loads((adapter / "evaluation_probe.json").read_text())
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_model), adapter).eval()
    with torch.no_grad():
        logits = model(torch.tensor([probe["input_ids"]])).logits[0]
    torch.testing.assert_close(logits[-1, :16], torch.tensor(probe["last_logits_head"]), rtol=1e-4, atol=1e-4)


def _assert_notifications_and_costs(alice, bob, job) -> None:
    wanted = {"dataset_ready", "job_queued", "job_started", "job_completed", "model_ready"}
    notes = wait_for(
        lambda: call(alice, "GET", "/api/notifications?limit=50"),
        lambda n: wanted <= {x["type"] for x in n["notifications"]},
        30,
        "notifications",
    )
    first = notes["notifications"][0]
    assert bob.patch(f"/api/notifications/{first['id']}/read").status_code == 404
    assert alice.patch(f"/api/notifications/{first['id']}/read").status_code == 200
    unread = call(alice, "GET", "/api/notifications?unread=true&limit=50")
    assert first["id"] not in {x["id"] for x in unread["notifications"]}
    assert unread["unread_count"] == notes["unread_count"] - 1

    costs = call(alice, "GET", "/api/costs")
    billed = sorted((r for r in costs["records"] if r["job_id"] == job["id"]), key=lambda r: r["id"])
    # The detail's records are job_svc's copy of billing's, fed by its events: the same once delivered.
    records = wait_for(
        lambda: call(alice, "GET", f"/api/jobs/{job['id']}")["cost_records"],
        lambda r: {x["id"] for x in r} == {x["id"] for x in billed},
        30,
        "the job's cost records in its detail",
    )
    assert sorted(records, key=lambda r: r["id"]) == billed
    newest_first = [(datetime.fromisoformat(r["recorded_at"]), r["id"]) for r in records]
    assert newest_first == sorted(newest_first, reverse=True)
    assert {r["cost_type"] for r in records} >= {"compute", "storage"}
    assert costs["total"] == pytest.approx(sum(r["amount"] for r in records))
    assert bob.get(f"/api/jobs/{job['id']}").status_code == 404
