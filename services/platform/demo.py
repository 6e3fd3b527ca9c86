"""``make demo``: the whole product journey on the embedded default, ending in
answers that show what the adapter learnt.

It teaches the base model (SmolLM2-135M-Instruct unless configured otherwise)
the Captain Byte persona of ``demo_dataset``, then asks the platform's
generation API the same held-out questions of the base model and of base +
adapter, and prints both answers one under the other.
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import httpx

from services.platform.demo_dataset import HELD_OUT_PROMPTS, write_persona_dataset
from services.platform.journey import call, job_events, upload_dataset, wait_dataset, wait_for
from services.platform.launcher import Platform

# Tuned on SmolLM2-135M on 2 CPU cores: the persona takes over within the first
# epoch (the highest learning rate allowed, a LoRA scale alpha/rank of 4, small
# batches for many updates per token); the second settles its wording.
DEMO_CONVERSATIONS = 48
DEMO_JOB = {
    "preset_id": "custom",
    "gpu_config": {"type": "CPU", "count": 1},
    "hyperparameters": {
        "learning_rate": 0.001, "batch_size": 4, "epochs": 2, "rank": 8, "alpha": 32, "dropout": 0.0,
        "max_seq_length": 256, "seed": 0,
    },
}
MAX_NEW_TOKENS = 48


def _bar(label: str, fraction: float, extra: str = "") -> None:
    filled = int(30 * max(0.0, min(1.0, fraction)))
    sys.stdout.write(f"\r{label:<22}[{'#' * filled}{'.' * (30 - filled)}] {fraction * 100:5.1f}% {extra:<40}")
    sys.stdout.flush()


def _download(urls: list[dict], into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    for item in urls:
        reply = httpx.get(item["url"], timeout=60)
        reply.raise_for_status()
        (into / item["file"]).write_bytes(reply.content)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def run_demo(platform: Platform) -> int:
    """Walk the product journey on a started platform; 1 when the dataset or the job fails."""
    started = time.monotonic()
    token = platform.token(str(uuid.uuid4()))
    headers = {"Authorization": f"Bearer {token}"}
    base_model = Path(platform.env["BRIGHTRUN_DEFAULT_BASE_MODEL"]).name
    with httpx.Client(base_url=platform.gateway_url, headers=headers, timeout=300) as client:
        path = write_persona_dataset(platform.home / "demo" / "captain-byte.jsonl", DEMO_CONVERSATIONS)
        dataset = wait_dataset(client, upload_dataset(client, path, "Captain Byte persona (demo)")["id"])
        if dataset["status"] != "ready":
            print(f"dataset validation failed: {dataset['validation_errors']}")
            return 1
        print(
            f"dataset ready: {dataset['total_training_pairs']} answers by Captain Byte, "
            f"{dataset['total_tokens']} tokens (counted with {base_model}'s tokenizer)"
        )
        estimate = call(client, "POST", "/api/jobs/estimate", json={"dataset_id": dataset["id"], **DEMO_JOB})
        print(f"estimate: ${estimate['estimated_cost']:.2f}, {estimate['training_details']['total_steps']} steps")
        job = call(client, "POST", "/api/jobs", json={"dataset_id": dataset["id"], **DEMO_JOB})["job"]
        for name, data in job_events(client, job["id"]):
            if name == "metric" and data.get("training_loss") is not None:
                loss = data["training_loss"]
                _bar("training", data["step"] / max(1, job["total_steps"]), f"step {data['step']} loss {loss:.4f}")
            elif name == "status":
                job = data
        print()
        detail = call(client, "GET", f"/api/jobs/{job['id']}")
        job = detail["job"]
        if job["status"] != "completed":
            print(f"job ended {job['status']}: {job.get('error_message')}")
            return 1
        losses = [m["training_loss"] for m in detail["metrics"] if m.get("training_loss") is not None]
        print(f"training loss: {losses[0]:.4f} at the first step -> {losses[-1]:.4f} at the last")
        job = wait_for(
            lambda: call(client, "GET", f"/api/jobs/{job['id']}")["job"], lambda j: j["artifact_id"], 60, "artifact"
        )
        urls = call(client, "POST", f"/api/models/{job['artifact_id']}/download", json={})["download_urls"]
        adapter = platform.home / "demo" / "adapter"
        _download(urls, adapter)
        print(f"adapter downloaded to {adapter} ({', '.join(sorted(u['file'] for u in urls))})")
        print(f"\nheld-out questions (none is in the dataset), answered greedily by {base_model} and by base + adapter:")
        answers = call(
            client,
            "POST",
            f"/api/models/{job['artifact_id']}/generate",
            json={"prompts": list(HELD_OUT_PROMPTS), "max_new_tokens": MAX_NEW_TOKENS, "temperature": 0,
                  "include_base": True},
        )
    for result in answers["results"]:
        print(f"\n  Q: {result['prompt']}")
        print(f"     base:           {_one_line(result['base_completion'])}")
        print(f"     base + adapter: {_one_line(result['completion'])}")
    print(f"\njourney walked in {time.monotonic() - started:.1f}s")
    return 0
