"""The product journey over the gateway's HTTP API: upload a dataset, estimate,
train, watch, download. ``make demo`` walks it; the end-to-end test walks it
too and checks every answer.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split()


def write_demo_dataset(path: Path, conversations: int = 96, seed: int = 0, exchanges: int = 1) -> Path:
    """A learnable task in the brightrun_lora_v4 format: the assistant repeats the words in reverse order,
    ``exchanges`` times a conversation (a system turn, then that many user and assistant turns)."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for i in range(conversations):
            turns = [{"role": "system", "content": "Reverse the words."}]
            for _ in range(exchanges):
                words = [rng.choice(WORDS) for _ in range(rng.randint(2, 5))]
                turns += [
                    {"role": "user", "content": " ".join(words)},
                    {"role": "assistant", "content": " ".join(reversed(words))},
                ]
            out.write(json.dumps({"conversation_id": f"demo-{i:04d}", "turns": turns}) + "\n")
    return path


# A job the CPU agent finishes in seconds on the demo task (the tiny test model learns it in two epochs).
CPU_JOB = {
    "preset_id": "custom",
    "gpu_config": {"type": "CPU", "count": 1},
    "hyperparameters": {"learning_rate": 0.001, "batch_size": 8, "epochs": 2, "rank": 8, "alpha": 16, "dropout": 0.0},
}


class ApiError(Exception):
    def __init__(self, response: httpx.Response):
        super().__init__(f"{response.request.method} {response.request.url.path} -> {response.status_code}: {response.text}")
        self.response = response


def call(client: httpx.Client, method: str, path: str, **kwargs) -> dict:
    """One API call; returns ``data``; raises ApiError on a non-2xx answer."""
    response = client.request(method, path, **kwargs)
    if response.status_code >= 300:
        raise ApiError(response)
    return response.json()["data"]


def upload_dataset(client: httpx.Client, path: Path, name: str) -> dict:
    """Create, PUT to the presigned URL, confirm; returns the dataset as confirm left it."""
    body = path.read_bytes()
    created = call(client, "POST", "/api/datasets", json={"name": name, "file_name": path.name, "file_size": len(body)})
    put = httpx.put(created["uploadUrl"], content=body, timeout=60)
    put.raise_for_status()
    return call(client, "POST", f"/api/datasets/{created['dataset']['id']}/confirm")["dataset"]


def wait_for(fetch: Callable[[], dict], done: Callable[[dict], bool], timeout: float, what: str) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f}s; last: {value}")
        time.sleep(0.25)


def wait_dataset(client: httpx.Client, dataset_id: str, timeout: float = 120) -> dict:
    return wait_for(
        lambda: call(client, "GET", f"/api/datasets/{dataset_id}")["dataset"],
        lambda d: d["status"] in ("ready", "error"),
        timeout,
        "dataset validation",
    )


def job_events(client: httpx.Client, job_id: str, timeout: float = 600) -> Iterator[tuple[str, dict]]:
    """Server-Sent Events of a job: (event name, data) until the stream ends."""
    with client.stream("GET", f"/api/jobs/{job_id}/events", timeout=timeout) as response:
        if response.status_code != 200:
            response.read()
            raise ApiError(response)
        name, data = "message", []
        for line in response.iter_lines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif not line and data:
                yield name, json.loads("\n".join(data))
                name, data = "message", []
