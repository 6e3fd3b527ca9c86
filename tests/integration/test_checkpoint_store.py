"""Checkpoints through the real S3 store: manifest last, only complete ones resumed."""

from __future__ import annotations

import uuid

import torch

from services.common.storage import ObjectStorage
from services.trainer_agent.checkpoint import checkpoint_path, read_checkpoint, write_checkpoint
from services.trainer_agent.checkpoint_store import download_latest_checkpoint, upload_checkpoint


def test_the_newest_complete_checkpoint_is_downloaded_intact(settings, tmp_path):
    storage = ObjectStorage.from_settings(settings)
    prefix = f"{uuid.uuid4()}/job/checkpoints/"
    local = tmp_path / "agent-a"
    for step in (10, 20):
        write_checkpoint(checkpoint_path(local, step), {"adapter": {"w": torch.full((4,), float(step))}}, {"step": step})
        upload_checkpoint(storage, checkpoint_path(local, step), settings.models_bucket, prefix)
    # An agent that died while uploading step 30 left files but no manifest.
    storage.put_bytes(settings.models_bucket, f"{prefix}step-00000030/adapter.safetensors", b"partial")

    fetched = download_latest_checkpoint(storage, settings.models_bucket, prefix, tmp_path / "agent-b")
    assert fetched is not None and fetched.name == "step-00000020"
    tensors, state = read_checkpoint(fetched)
    assert state["step"] == 20
    torch.testing.assert_close(tensors["adapter"]["w"], torch.full((4,), 20.0))


def test_no_checkpoint_means_a_fresh_start(settings, tmp_path):
    storage = ObjectStorage.from_settings(settings)
    assert download_latest_checkpoint(storage, settings.models_bucket, f"{uuid.uuid4()}/", tmp_path) is None
