"""What a job trains on is exactly what was validated, and base models come
only from allowed places (issue 14, cases 7 and 10), on the real embedded
default: a PUT to the upload URL after the dataset is ready changes nothing
a job reads; an object replaced in the store behind the platform's back fails
the job, once, naming the sha256 mismatch; a server path as base model is a
400 naming the field.
"""

from __future__ import annotations

import hashlib

import httpx
import pytest

from faultkit import HYPERPARAMETERS, assert_job_accounted, ready_dataset, start_job, wait_ended
from services.common.config import read_settings
from services.common.storage import ObjectStorage
from services.platform.journey import call, wait_dataset, write_demo_dataset


def _storage(platform) -> ObjectStorage:
    return ObjectStorage.from_settings(read_settings(platform.env))


def test_a_put_to_the_upload_url_after_validation_changes_nothing_a_job_trains_on(platform, api, tmp_path):
    body = write_demo_dataset(tmp_path / "reverse.jsonl", conversations=16).read_bytes()
    created = call(api, "POST", "/api/datasets", json={"name": "kept", "file_name": "reverse.jsonl",
                                                       "file_size": len(body)})
    httpx.put(created["uploadUrl"], content=body, timeout=60).raise_for_status()
    call(api, "POST", f"/api/datasets/{created['dataset']['id']}/confirm")
    dataset = wait_dataset(api, created["dataset"]["id"])
    assert dataset["status"] == "ready", dataset
    assert dataset["content_sha256"] == hashlib.sha256(body).hexdigest()

    # Same size, other conversations: whatever the store answers, nothing validated may change.
    other = write_demo_dataset(tmp_path / "other.jsonl", conversations=16, seed=7).read_bytes()
    assert other != body
    httpx.put(created["uploadUrl"], content=other, timeout=60)
    stored = _storage(platform).get_bytes(dataset["storage_bucket"], dataset["storage_path"])
    assert stored == body
    again = call(api, "GET", f"/api/datasets/{dataset['id']}")["dataset"]
    assert (again["status"], again["storage_path"], again["content_sha256"]) == (
        "ready", dataset["storage_path"], dataset["content_sha256"])

    done = wait_ended(api, start_job(api, dataset))
    assert done["status"] == "completed", done
    assert_job_accounted(platform, api, done)


def test_a_dataset_object_replaced_in_the_store_fails_its_job_naming_the_sha256_without_a_retry(
    platform, api, tmp_path
):
    dataset = ready_dataset(api, tmp_path)
    replaced = write_demo_dataset(tmp_path / "replaced.jsonl", conversations=16, seed=3).read_bytes()
    _storage(platform).put_bytes(dataset["storage_bucket"], dataset["storage_path"], replaced)

    failed = wait_ended(api, start_job(api, dataset))
    assert failed["status"] == "failed", failed
    assert failed["retry_count"] == 0
    reason = failed["error_message"]
    assert "sha256" in reason and dataset["content_sha256"] in reason
    assert hashlib.sha256(replaced).hexdigest() in reason
    assert_job_accounted(platform, api, failed)


@pytest.mark.parametrize("base_model", ["/etc", "/proc/self/root"])
def test_a_base_model_given_as_a_server_path_is_a_400_naming_base_model(platform, api, tmp_path, base_model):
    created = api.post("/api/datasets", json={"name": "m", "file_name": "m.jsonl", "file_size": 10,
                                              "base_model": base_model})
    assert created.status_code == 400, created.text
    assert "base_model" in created.json()["details"]

    dataset = ready_dataset(api, tmp_path, conversations=8)
    revalidated = api.post(f"/api/datasets/{dataset['id']}/revalidate", json={"base_model": base_model})
    assert revalidated.status_code == 400, revalidated.text
    assert "base_model" in revalidated.json()["details"]

    job = {"dataset_id": dataset["id"], "preset_id": "custom", "gpu_config": {"type": "CPU", "count": 1},
           "hyperparameters": {**HYPERPARAMETERS, "base_model": base_model}}
    for path in ("/api/jobs", "/api/jobs/estimate"):
        answer = api.post(path, json=job)
        assert answer.status_code == 400, answer.text
        [problem] = answer.json()["details"]["hyperparameters.base_model"]
        # Names what was given and the models there, never the server's own directories.
        assert base_model in problem and "tiny-llama" in problem and str(platform.home) not in problem
