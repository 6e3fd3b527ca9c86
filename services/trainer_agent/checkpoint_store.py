"""Checkpoints in the object store, so that another agent can resume a job.

A checkpoint directory ``step-NNNNNNNN`` is uploaded file by file with its
``manifest.json`` last: a checkpoint is visible (and resumable) only once its
manifest is there, so an agent that dies mid-upload leaves nothing anyone
would resume from. The downloaded copy is checked again (sizes and sha256)
by ``checkpoint.read_checkpoint`` when the recipe loads it.
"""

from __future__ import annotations

from pathlib import Path

from services.common.storage import ObjectStorage
from services.trainer_agent.checkpoint import MANIFEST


def upload_checkpoint(storage: ObjectStorage, directory: Path, bucket: str, prefix: str) -> str:
    """Upload a complete local checkpoint under ``prefix``; returns its key prefix."""
    key_prefix = f"{prefix}{directory.name}/"
    files = sorted(p for p in directory.iterdir() if p.is_file() and p.name != MANIFEST)
    for path in files:
        storage.upload_file(path, bucket, key_prefix + path.name)
    storage.upload_file(directory / MANIFEST, bucket, key_prefix + MANIFEST)
    return key_prefix


def download_latest_checkpoint(storage: ObjectStorage, bucket: str, prefix: str, root: Path) -> Path | None:
    """Download the newest checkpoint under ``prefix`` that has a manifest into ``root``; None when there is none."""
    complete = sorted(
        key[len(prefix) :].split("/", 1)[0]
        for key in storage.list_keys(bucket, prefix)
        if key.endswith("/" + MANIFEST)
    )
    if not complete:
        return None
    name = complete[-1]
    target = root / name
    for key in storage.list_keys(bucket, f"{prefix}{name}/"):
        storage.download_file(bucket, key, target / key.rsplit("/", 1)[1])
    return target
