"""Each service makes the bucket it owns at its start (``ObjectStorage.ensure_bucket``): dataset_svc the
datasets bucket, artifact_svc the models bucket. Nothing else creates them, on a cluster or in the
embedded default, whose launcher loads no S3 client."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from botocore.exceptions import ClientError

from services.artifact_svc.server import start as start_artifact
from services.common.startup import StartupError
from services.common.storage import ObjectStorage
from services.dataset_svc.server import start as start_dataset


def _exists(store, bucket: str) -> bool:
    try:
        store.client().head_bucket(Bucket=bucket)
    except ClientError:
        return False
    return True


@pytest.mark.parametrize(("start", "field"), [(start_dataset, "datasets_bucket"), (start_artifact, "models_bucket")],
                         ids=["dataset_svc", "artifact_svc"])
async def test_a_service_makes_its_own_bucket_at_its_start(infra, settings, start, field):
    _, _, store = infra
    bucket = f"fresh-{uuid.uuid4().hex[:12]}"
    assert not _exists(store, bucket)
    runtime = await start(dataclasses.replace(settings, **{field: bucket}), address="127.0.0.1:0")
    try:
        assert _exists(store, bucket)
    finally:
        await runtime.stop()


def test_ensuring_a_bucket_keeps_what_it_holds(infra, settings):
    _, _, store = infra
    storage = ObjectStorage.from_settings(settings)
    bucket = f"kept-{uuid.uuid4().hex[:12]}"
    storage.ensure_bucket(bucket, "BRIGHTRUN_MODELS_BUCKET")
    storage.put_bytes(bucket, "a/b.bin", b"weights")
    storage.ensure_bucket(bucket, "BRIGHTRUN_MODELS_BUCKET")  # a restart, or a second replica
    assert storage.get_bytes(bucket, "a/b.bin") == b"weights"


def test_a_store_that_refuses_the_keys_is_a_startup_error_naming_the_bucket(infra, settings):
    wrong = dataclasses.replace(settings, s3_secret_key="not-the-secret")
    with pytest.raises(StartupError, match=r"lora-datasets \(BRIGHTRUN_DATASETS_BUCKET\).*BRIGHTRUN_S3_SECRET_KEY"):
        ObjectStorage.from_settings(wrong).ensure_bucket("lora-datasets", "BRIGHTRUN_DATASETS_BUCKET")
