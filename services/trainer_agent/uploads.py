"""A directory of files to the models bucket, as a manifest of what was
uploaded (an adapter, or an export's merged model), and a manifest's files back."""

from __future__ import annotations

import hashlib
from pathlib import Path

from brightrun.artifact.v1 import artifact_pb2
from services.common.storage import ObjectStorage


def upload_directory(storage: ObjectStorage, directory: Path, bucket: str, prefix: str) -> artifact_pb2.AdapterManifest:
    """Upload every file of ``directory`` (not its subdirectories) under ``prefix``, in name order."""
    manifest = artifact_pb2.AdapterManifest(bucket=bucket, prefix=prefix)
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        key = prefix + path.name
        storage.upload_file(path, bucket, key)
        manifest.files.add(name=path.name, key=key, size_bytes=path.stat().st_size, sha256=sha256_of(path))
    return manifest


def download_manifest(storage: ObjectStorage, manifest: artifact_pb2.AdapterManifest, directory: Path) -> None:
    """Every file of ``manifest`` into ``directory``, under its name."""
    for f in manifest.files:
        storage.download_file(manifest.bucket, f.key, directory / f.name)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
