"""A directory of files to the models bucket, as a manifest of what was
uploaded (an adapter, or an export's merged model), and a manifest's files back."""

from __future__ import annotations

import hashlib
from pathlib import Path

from brightrun.artifact.v1 import artifact_pb2
from services.trainer_agent.granted import GrantedStore
from services.trainer_agent.relay import Permanent, retry_io


def upload_directory(storage: GrantedStore, directory: Path, bucket: str, prefix: str) -> artifact_pb2.AdapterManifest:
    """Upload every file of ``directory`` (not its subdirectories) under ``prefix`` (in the
    grant's bucket, ``bucket``), in name order."""
    manifest = artifact_pb2.AdapterManifest(bucket=bucket, prefix=prefix)
    for path in sorted(p for p in directory.iterdir() if p.is_file()):
        key = prefix + path.name
        storage.upload_file(path, key)
        manifest.files.add(name=path.name, key=key, size_bytes=path.stat().st_size, sha256=sha256_of(path))
    return manifest


def download_manifest(storage: GrantedStore, manifest: artifact_pb2.AdapterManifest, directory: Path) -> None:
    """Every file of ``manifest`` into ``directory``, under its name; a name that is not a plain file name
    (a separator, ``..``) is refused before anything is downloaded, so no file lands outside ``directory``."""
    unsafe = [f.name for f in manifest.files if f.name in ("", ".", "..") or Path(f.name).name != f.name]
    if unsafe:
        raise Permanent(f"the manifest names files outside their directory: {', '.join(map(repr, unsafe))}; "
                        "each name must be a plain file name")
    for f in manifest.files:
        storage.download_file(manifest.bucket, f.key, directory / f.name)


async def fetch_adapter(storage: GrantedStore, manifest: artifact_pb2.AdapterManifest, directory: Path, what: str,
                        *, owner: str, deadline_s: float) -> dict | None:
    """:func:`download_manifest`, retried for up to ``deadline_s``; None once every file is there, else the
    attempt's retryable failure saying what could not be downloaded (``what``: "the adapter", ...;
    ``owner``, "job <id>" or "export <id>", names the work in the retry log)."""
    try:
        await retry_io(lambda: download_manifest(storage, manifest, directory), f"{owner}: downloading {what}",
                       deadline_s=deadline_s)
    except Exception as exc:
        return io_failure(f"could not download {what}", exc)
    return None


def io_failure(what: str, exc: Exception) -> dict:
    """The failed outcome of an object-store transfer that did not happen: retryable unless
    no retry could cure it (the store refused the assignment's grant)."""
    return {"type": "failed", "reason": f"{what}: {exc}", "retryable": not isinstance(exc, Permanent)}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
