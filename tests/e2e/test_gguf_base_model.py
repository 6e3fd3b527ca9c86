"""A GGUF file as the base model, through the whole platform: the dataset is measured with its
tokenizer, the job trains on it and completes, and a file that is not GGUF is a 400 naming the field."""

from __future__ import annotations

import uuid

import httpx
import pytest

from gateway.auth import mint_token
from gguf_kit import write_tiny_gguf
from services.common.config import DEV_JWT_SECRET
from services.platform.journey import call, upload_dataset, wait_dataset, wait_for, write_demo_dataset

pytestmark = pytest.mark.slow

JOB = {
    "preset_id": "custom",
    "gpu_config": {"type": "CPU", "count": 1},
    "hyperparameters": {"learning_rate": 0.001, "batch_size": 8, "epochs": 1, "rank": 8, "alpha": 16, "dropout": 0.0,
                        "base_model": "tiny.gguf"},
}


@pytest.fixture(scope="module")
def client(platform):
    write_tiny_gguf(platform.home / "models" / "tiny-llama", platform.home / "models" / "tiny.gguf")
    token = mint_token(str(uuid.uuid4()), DEV_JWT_SECRET)
    with httpx.Client(base_url=platform.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as c:
        yield c


def test_a_job_trains_on_a_gguf_base_model(platform, client, tmp_path):
    path = write_demo_dataset(tmp_path / "reverse.jsonl", conversations=16)
    default = wait_dataset(client, upload_dataset(client, path, "reverse")["id"])
    call(client, "POST", f"/api/datasets/{default['id']}/revalidate", json={"base_model": "tiny.gguf"})
    dataset = wait_for(lambda: call(client, "GET", f"/api/datasets/{default['id']}")["dataset"],
                       lambda d: d["status"] in ("ready", "error") and d["base_model"] == "tiny.gguf", 120, "revalidation")
    assert dataset["status"] == "ready", dataset["validation_errors"]
    # The same tokenizer in another file: the same count.
    assert dataset["total_tokens"] == default["total_tokens"] > 0

    job = call(client, "POST", "/api/jobs", json={"dataset_id": dataset["id"], **JOB})["job"]
    assert job["hyperparameters"]["base_model"] == "tiny.gguf"  # its name, not the server's path
    done = wait_for(lambda: call(client, "GET", f"/api/jobs/{job['id']}")["job"],
                    lambda j: j["status"] in ("completed", "failed"), 300, "the job's end")
    assert done["status"] == "completed", done.get("error_message")


def test_a_file_that_is_not_gguf_is_a_400_naming_the_field(platform, client, tmp_path):
    (platform.home / "models" / "notes.gguf").write_text("not a model")
    path = write_demo_dataset(tmp_path / "reverse.jsonl", conversations=16)
    dataset = wait_dataset(client, upload_dataset(client, path, "reverse")["id"])
    bad = {**JOB, "hyperparameters": {**JOB["hyperparameters"], "base_model": "notes.gguf"}}
    refused = client.post("/api/jobs", json={"dataset_id": dataset["id"], **bad})
    assert refused.status_code == 400, refused.text
    [why] = refused.json()["details"]["hyperparameters.base_model"]
    assert why.startswith("'notes.gguf' is not a GGUF file") and str(platform.home) not in why
