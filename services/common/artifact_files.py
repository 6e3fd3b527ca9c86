"""An artifact's adapter files as an AdapterManifest: what an agent downloads
to continue training from it (job_svc) or to merge it (artifact_svc)."""

from __future__ import annotations

from brightrun.artifact.v1 import artifact_pb2

from services.common.storage import adapter_prefix, model_prefix


def adapter_manifest(artifact: artifact_pb2.ModelArtifact) -> artifact_pb2.AdapterManifest:
    manifest = artifact_pb2.AdapterManifest(
        bucket=artifact.storage_bucket, prefix=adapter_prefix(model_prefix(artifact.user_id, artifact.job_id))
    )
    for name in sorted(artifact.artifacts):
        f = artifact.artifacts[name]
        manifest.files.add(name=name, key=f["key"], size_bytes=int(f["size_bytes"]), sha256=f["sha256"])
    return manifest
