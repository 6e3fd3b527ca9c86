"""An agent's grant against the real SeaweedFS: it reads exactly the objects of
the job it holds and writes only under that job's prefix, and not once it expired."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from brightrun.artifact.v1 import artifact_pb2
from brightrun.job.v1 import job_pb2
from services.common.grants import Granter, object_ref
from services.common.storage import ObjectMissing, ObjectStorage, checkpoint_key, model_prefix
from services.trainer_agent.granted import GrantedStore, GrantRefused
from services.trainer_agent.uploads import fetch_adapter


def _job(settings, storage: ObjectStorage, *, parent: bool = False) -> job_pb2.TrainingAssignment:
    """A queued job's assignment, its dataset (and parent adapter) stored."""
    user, job = str(uuid.uuid4()), str(uuid.uuid4())
    assignment = job_pb2.TrainingAssignment(
        job_id=job, user_id=user, dataset_bucket=settings.datasets_bucket, dataset_path=f"{user}/{job}.jsonl",
        output_bucket=settings.models_bucket, output_prefix=model_prefix(user, job),
    )
    storage.put_bytes(settings.datasets_bucket, assignment.dataset_path, f"dataset of {job}".encode())
    if parent:
        key = f"{user}/{uuid.uuid4()}/adapter/adapter_config.json"
        storage.put_bytes(settings.models_bucket, key, b"{}")
        assignment.parent_adapter.CopyFrom(artifact_pb2.AdapterManifest(bucket=settings.models_bucket, files=[
            artifact_pb2.ArtifactFile(name="adapter_config.json", key=key)]))
    return assignment


def test_a_job_grant_reads_its_own_objects_and_writes_under_its_prefix(settings, tmp_path):
    storage = ObjectStorage.from_settings(settings)
    assignment = _job(settings, storage, parent=True)
    grant = Granter(storage, 600).training(assignment)
    parent_key = assignment.parent_adapter.files[0].key
    assert set(grant.reads) == {
        object_ref(settings.datasets_bucket, assignment.dataset_path), object_ref(settings.models_bucket, parent_key),
        object_ref(settings.models_bucket, checkpoint_key(assignment.output_prefix)),
    }
    store = GrantedStore(grant)
    store.download_file(assignment.dataset_bucket, assignment.dataset_path, tmp_path / "dataset.jsonl")
    assert (tmp_path / "dataset.jsonl").read_bytes() == f"dataset of {assignment.job_id}".encode()
    store.download_file(settings.models_bucket, parent_key, tmp_path / "adapter_config.json")
    with pytest.raises(ObjectMissing):  # no checkpoint yet: a fresh start, not a refusal
        store.download_file(settings.models_bucket, checkpoint_key(assignment.output_prefix), tmp_path / "latest.tar")

    (tmp_path / "adapter_model.safetensors").write_bytes(b"weights" * 1000)
    key = f"{assignment.output_prefix}adapter/adapter_model.safetensors"
    store.upload_file(tmp_path / "adapter_model.safetensors", key)
    assert storage.get_bytes(settings.models_bucket, key) == b"weights" * 1000


def test_a_job_grant_cannot_read_another_jobs_dataset_nor_write_outside_its_prefix(settings, tmp_path):
    storage = ObjectStorage.from_settings(settings)
    mine, theirs = _job(settings, storage), _job(settings, storage)
    grant = Granter(storage, 600).training(mine)
    store = GrantedStore(grant)
    with pytest.raises(GrantRefused, match="does not cover reading"):
        store.download_file(theirs.dataset_bucket, theirs.dataset_path, tmp_path / "theirs.jsonl")
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(GrantRefused, match="does not cover writing"):
        store.upload_file(tmp_path / "f", f"{theirs.output_prefix}adapter/f")

    # The store itself enforces both, whatever an agent does with the URLs and the policy.
    own_url = grant.reads[object_ref(mine.dataset_bucket, mine.dataset_path)]
    tampered = own_url.replace(mine.dataset_path, theirs.dataset_path)
    assert tampered != own_url and httpx.get(tampered).status_code == 403
    for key in (f"{theirs.output_prefix}adapter/f", f"{mine.user_id}/x", mine.output_prefix[:-1] + "x/f"):
        refused = httpx.post(grant.upload_url, data={**grant.upload_fields, "key": key}, files={"file": ("f", b"x")})
        assert refused.status_code == 403, (key, refused.text)
        assert "Policy Condition failed" in refused.text
    assert storage.list_keys(settings.models_bucket, theirs.output_prefix) == []
    assert storage.list_keys(settings.models_bucket, f"{mine.user_id}/x") == []
    # Nor can it write into the datasets bucket with its policy.
    other_bucket = grant.upload_url.replace(settings.models_bucket, settings.datasets_bucket)
    assert httpx.post(other_bucket, data={**grant.upload_fields, "key": f"{mine.output_prefix}f"},
                      files={"file": ("f", b"x")}).status_code == 403


def test_an_expired_grant_is_refused(settings, tmp_path):
    storage = ObjectStorage.from_settings(settings)
    assignment = _job(settings, storage)
    store = GrantedStore(Granter(storage, 1).training(assignment))
    time.sleep(2.5)
    with pytest.raises(GrantRefused, match="expired"):
        store.download_file(assignment.dataset_bucket, assignment.dataset_path, tmp_path / "dataset.jsonl")
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(GrantRefused, match="expired"):
        store.upload_file(tmp_path / "f", f"{assignment.output_prefix}adapter/f")
    assert storage.list_keys(settings.models_bucket, assignment.output_prefix) == []


async def test_a_refused_grant_fails_the_download_at_once_and_for_good(settings, tmp_path):
    """No retry cures a refusal: the attempt fails without waiting out the retries, and is not retried
    (an unreachable store, by contrast, is retried: tests/integration/test_agent_outages.py)."""
    storage = ObjectStorage.from_settings(settings)
    parent = _job(settings, storage, parent=True).parent_adapter
    store = GrantedStore(Granter(storage, 1).generation(artifact_pb2.GenerationAssignment(adapter=parent)))
    await asyncio.sleep(2.5)
    started = time.monotonic()
    failed = await fetch_adapter(store, parent, tmp_path / "adapter", "the adapter", owner="test", deadline_s=60)
    assert time.monotonic() - started < 10
    assert failed is not None and failed["retryable"] is False
    assert "could not download the adapter" in failed["reason"] and "Request has expired" in failed["reason"]


async def test_a_manifest_naming_a_file_outside_its_directory_downloads_nothing(settings, tmp_path):
    """A name is where the file lands: one with a separator or ``..`` would write outside the adapter's
    directory, so the whole download is refused at once, even with a grant that covers the object."""
    storage = ObjectStorage.from_settings(settings)
    parent = _job(settings, storage, parent=True).parent_adapter
    store = GrantedStore(Granter(storage, 60).generation(artifact_pb2.GenerationAssignment(adapter=parent)))
    parent.files.add(name="../escaped.json", key=parent.files[0].key)
    failed = await fetch_adapter(store, parent, tmp_path / "adapter", "the adapter", owner="test", deadline_s=60)
    assert failed is not None and failed["retryable"] is False
    assert "'../escaped.json'" in failed["reason"] and "plain file name" in failed["reason"]
    assert not (tmp_path / "escaped.json").exists() and not (tmp_path / "adapter" / "adapter_config.json").exists()
