"""Checkpoints through the real S3 store, by an agent's grant: one archive at the
job's fixed key, replaced whole, the newest resumed."""

from __future__ import annotations

import tarfile
import uuid

import pytest
import torch

from services.common.grants import grant
from services.common.storage import ObjectStorage, checkpoint_key
from services.trainer_agent.checkpoint import checkpoint_path, read_checkpoint, write_checkpoint
from services.trainer_agent.checkpoint_store import download_latest_checkpoint, upload_checkpoint
from services.trainer_agent.granted import GrantedStore


def _job_store(settings) -> tuple[GrantedStore, ObjectStorage, str]:
    """An agent's store for a fresh job (its checkpoint read, writes under its prefix), the keyed store, the key."""
    storage = ObjectStorage.from_settings(settings)
    prefix = f"{uuid.uuid4()}/{uuid.uuid4()}/"
    key = checkpoint_key(prefix)
    granted = grant(storage, 600, reads=[(settings.models_bucket, key)], upload=(settings.models_bucket, prefix))
    return GrantedStore(granted), storage, key


def test_the_newest_checkpoint_replaces_the_last_and_comes_back_intact(settings, tmp_path):
    store, storage, key = _job_store(settings)
    local = tmp_path / "agent-a"
    for step in (10, 20):
        write_checkpoint(checkpoint_path(local, step), {"adapter": {"w": torch.full((4,), float(step))}}, {"step": step})
        assert upload_checkpoint(store, checkpoint_path(local, step), key) == key
    # One object, the newest: nothing partial or older lies beside it.
    assert storage.list_keys(settings.models_bucket, key.rsplit("/", 1)[0] + "/") == [key]

    fetched = download_latest_checkpoint(store, settings.models_bucket, key, tmp_path / "agent-b")
    assert fetched is not None and fetched.name == "step-00000020"
    tensors, state = read_checkpoint(fetched)
    assert state["step"] == 20
    torch.testing.assert_close(tensors["adapter"]["w"], torch.full((4,), 20.0))
    assert sorted(p.name for p in (tmp_path / "agent-b").iterdir()) == ["step-00000020"]


def test_no_checkpoint_means_a_fresh_start(settings, tmp_path):
    store, _, key = _job_store(settings)
    assert download_latest_checkpoint(store, settings.models_bucket, key, tmp_path) is None


def test_an_archive_that_is_not_one_checkpoint_is_refused(settings, tmp_path):
    store, storage, key = _job_store(settings)
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with tarfile.open(tmp_path / "bad.tar", "w") as tar:
        tar.add(tmp_path / "notes.txt", arcname="notes.txt")
    storage.upload_file(tmp_path / "bad.tar", settings.models_bucket, key)
    with pytest.raises(ValueError, match="not one step-NNNNNNNN directory"):
        download_latest_checkpoint(store, settings.models_bucket, key, tmp_path / "agent")
