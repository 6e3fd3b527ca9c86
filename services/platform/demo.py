"""``make demo``: the whole product journey on the embedded default."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import httpx

from services.platform.journey import call, job_events, upload_dataset, wait_dataset, wait_for, write_demo_dataset
from services.platform.launcher import Platform

DEMO_JOB = {
    "preset_id": "custom",
    "gpu_config": {"type": "CPU", "count": 1},
    "hyperparameters": {"learning_rate": 0.001, "batch_size": 8, "epochs": 4, "rank": 8, "alpha": 16, "dropout": 0.0},
}


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


def run_demo(platform: Platform) -> int:
    """Walk the product journey on a started platform; 1 when the dataset or the job fails."""
    started = time.monotonic()
    token = platform.token(str(uuid.uuid4()))
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=platform.gateway_url, headers=headers, timeout=60) as client:
        path = write_demo_dataset(platform.home / "demo" / "reverse-words.jsonl")
        dataset = wait_dataset(client, upload_dataset(client, path, "Reverse the words (demo)")["id"])
        if dataset["status"] != "ready":
            print(f"dataset validation failed: {dataset['validation_errors']}")
            return 1
        print(
            f"dataset ready: {dataset['total_training_pairs']} training pairs, "
            f"{dataset['total_tokens']} tokens (counted with the base model's tokenizer)"
        )
        estimate = call(client, "POST", "/api/jobs/estimate", json={"dataset_id": dataset["id"], **DEMO_JOB})
        print(f"estimate: ${estimate['estimated_cost']:.2f}, {estimate['training_details']['total_steps']} steps")
        job = call(client, "POST", "/api/jobs", json={"dataset_id": dataset["id"], **DEMO_JOB})["job"]
        last_loss = None
        for name, data in job_events(client, job["id"]):
            if name == "metric":
                last_loss = data["training_loss"]
                _bar("training", data["step"] / max(1, job["total_steps"]), f"step {data['step']} loss {last_loss:.4f}")
            elif name == "status":
                job = data
        print()
        detail = call(client, "GET", f"/api/jobs/{job['id']}")
        job = detail["job"]
        if job["status"] != "completed":
            print(f"job ended {job['status']}: {job.get('error_message')}")
            return 1
        job = wait_for(
            lambda: call(client, "GET", f"/api/jobs/{job['id']}")["job"], lambda j: j["artifact_id"], 60, "artifact"
        )
        urls = call(client, "POST", f"/api/models/{job['artifact_id']}/download", json={})["download_urls"]
        adapter = platform.home / "demo" / "adapter"
        _download(urls, adapter)
    final = detail["metrics"][-1]["training_loss"] if detail["metrics"] else last_loss
    print(f"adapter downloaded to {adapter} ({', '.join(sorted(u['file'] for u in urls))})")
    print(f"final training loss: {final:.4f} (first step: {detail['metrics'][0]['training_loss']:.4f})")
    print(f"journey walked in {time.monotonic() - started:.1f}s")
    return 0
