"""A model's life after training, through the gateway on the embedded
default (every component in its own process, the CPU trainer agent
included): its serving checks, a merged export made by the agent and
downloaded by URL, and a job that continues its adapter, with the lineage.
"""

from __future__ import annotations

import httpx
import pytest
import torch

from services.platform.journey import CPU_JOB, call, upload_dataset, wait_dataset, wait_for, write_demo_dataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dataset(platform, alice, tmp_path_factory):
    path = write_demo_dataset(tmp_path_factory.mktemp("data") / "reverse.jsonl", conversations=32)
    ready = wait_dataset(alice, upload_dataset(alice, path, "reverse words")["id"])
    assert ready["status"] == "ready", ready["validation_errors"]
    return ready


def _train(client: httpx.Client, body: dict) -> dict:
    reply = client.post("/api/jobs", json=body)
    assert reply.status_code == 201, reply.text
    job_id = reply.json()["data"]["job"]["id"]
    job = wait_for(lambda: call(client, "GET", f"/api/jobs/{job_id}")["job"],
                   lambda j: j["status"] in ("completed", "failed") and (j["status"] == "failed" or j["artifact_id"]),
                   600, f"job {job_id} completed with its model")
    assert job["status"] == "completed", job["error_message"]
    return job


@pytest.fixture(scope="module")
def parent(alice, dataset) -> dict:
    return call(alice, "GET", f"/api/models/{_train(alice, {'dataset_id': dataset['id'], **CPU_JOB})['artifact_id']}")["model"]


def test_a_model_shows_whether_vllm_and_lorax_can_serve_it(parent):
    checks = {(c["server"], c["check"]): c for c in parent["serving"]}
    assert {server for server, _ in checks} == {"vllm", "lorax"}
    assert checks[("vllm", "rank")]["status"] == "pass"  # rank 8, within vLLM's default of 16
    assert checks[("vllm", "architecture")]["status"] == "pass"  # the tiny model is a Llama
    assert checks[("vllm", "dtype")]["status"] == "warning"  # trained on the CPU in float32
    assert parent["lineage"] == [] and parent["parent_model_id"] is None


def test_a_merged_export_is_made_by_the_agent_and_downloads_as_base_plus_adapter(platform, alice, bob, parent,
                                                                                   tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    reply = alice.post(f"/api/models/{parent['id']}/exports", json={"kind": "merged"})
    assert reply.status_code == 202, reply.text
    export = reply.json()["data"]["export"]
    assert export["status"] == "queued"
    assert bob.post(f"/api/models/{parent['id']}/exports", json={}).status_code == 404
    assert bob.get(f"/api/models/{parent['id']}/exports/{export['id']}").status_code == 404

    done = wait_for(lambda: call(alice, "GET", f"/api/models/{parent['id']}/exports/{export['id']}"),
                    lambda e: e["export"]["status"] in ("completed", "failed"), 300, "the export")
    assert done["export"]["status"] == "completed", done["export"]["error"]
    names = {u["file"] for u in done["download_urls"]}
    # The tiny model fits one 2 GB shard; a larger one comes as model-0000N-of-0000M.safetensors and an index.
    assert {"config.json", "tokenizer.json", "model.safetensors"} <= names, names
    merged_dir, adapter_dir = tmp_path / "merged", tmp_path / "adapter"
    merged_dir.mkdir()
    adapter_dir.mkdir()
    for item in done["download_urls"]:
        (merged_dir / item["file"]).write_bytes(httpx.get(item["url"], timeout=60).content)
    for item in call(alice, "POST", f"/api/models/{parent['id']}/download", json={})["download_urls"]:
        (adapter_dir / item["file"]).write_bytes(httpx.get(item["url"], timeout=60).content)
    assert [e["id"] for e in call(alice, "GET", f"/api/models/{parent['id']}/exports")["exports"]] == [export["id"]]

    base_path = platform.env["BRIGHTRUN_DEFAULT_BASE_MODEL"]
    probe = torch.tensor([[1, 5, 9, 23, 42, 7, 3, 11]])
    with torch.no_grad():
        merged = AutoModelForCausalLM.from_pretrained(merged_dir).eval()(input_ids=probe).logits
        adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), adapter_dir).eval()
        torch.testing.assert_close(merged, adapted(input_ids=probe).logits, atol=1e-5, rtol=0)


def test_a_job_continues_a_models_adapter_and_the_lineage_is_shown(alice, bob, dataset, parent):
    wrong_rank = {**CPU_JOB, "hyperparameters": {**CPU_JOB["hyperparameters"], "rank": 16}}
    refused = alice.post("/api/jobs", json={"dataset_id": dataset["id"], "parent_model_id": parent["id"], **wrong_rank})
    assert refused.status_code == 400, refused.text
    assert "rank 8" in refused.json()["details"]["parent_model_id"][0]
    foreign = bob.post("/api/jobs", json={"dataset_id": dataset["id"], "parent_model_id": parent["id"], **CPU_JOB})
    assert foreign.status_code == 404, foreign.text

    child_job = _train(alice, {"dataset_id": dataset["id"], "parent_model_id": parent["id"], **CPU_JOB})
    assert child_job["parent_model_id"] == parent["id"]
    child = call(alice, "GET", f"/api/models/{child_job['artifact_id']}")["model"]
    assert child["parent_model_id"] == parent["id"]
    assert [m["id"] for m in child["lineage"]] == [parent["id"]]
    # Started from the parent's weights: its first step's loss is near where the parent ended, not where it began.
    first = call(alice, "GET", f"/api/jobs/{child_job['id']}/metrics")["metrics"][0]["training_loss"]
    assert first < parent["quality_metrics"]["final_training_loss"] * 1.2
