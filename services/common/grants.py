"""What a trainer agent may do in the object store, granted per assignment.

An agent holds no store keys. The service that queues its work (job_svc for
training, artifact_svc for exports and generation) signs, with its own keys,
presigned GETs of exactly the objects that work reads and one presigned POST
policy whose ``starts-with $key`` condition confines every write to the work's
prefix; the assignment carries them (``artifact.v1.ObjectGrant``). A grant
lasts ``BRIGHTRUN_AGENT_GRANT_SECONDS`` from when the work is queued (at most
7 days, S3's limit on a presigned URL); after that the store refuses it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from brightrun.artifact.v1 import artifact_pb2
from services.common.config import Settings
from services.common.storage import ObjectStorage, checkpoint_key


def object_ref(bucket: str, key: str) -> str:
    """How a grant names an object it lets the agent read."""
    return f"{bucket}/{key}"


def grant(storage: ObjectStorage, seconds: int, *, reads: list[tuple[str, str]],
          upload: tuple[str, str] | None = None) -> artifact_pb2.ObjectGrant:
    """Reads of each (bucket, key) in ``reads`` and, with ``upload`` = (bucket, prefix),
    writes under that prefix, for ``seconds``."""
    granted = artifact_pb2.ObjectGrant()
    granted.expires_at.FromDatetime(datetime.now(timezone.utc) + timedelta(seconds=seconds))
    for bucket, key in reads:
        granted.reads[object_ref(bucket, key)] = storage.grant_get(bucket, key, seconds)
    if upload is not None:
        bucket, prefix = upload
        url, fields = storage.grant_post(bucket, prefix, seconds)
        granted.upload_url, granted.upload_prefix = url, prefix
        granted.upload_fields.update(fields)
    return granted


def adapter_reads(manifest: artifact_pb2.AdapterManifest) -> list[tuple[str, str]]:
    return [(manifest.bucket, f.key) for f in manifest.files]


class Granter:
    """Signs the grants of the assignments a service queues, with its keys, for ``seconds``."""

    def __init__(self, storage: ObjectStorage, seconds: int):
        self._storage = storage
        self._seconds = seconds

    @classmethod
    def from_settings(cls, settings: Settings) -> "Granter":
        return cls(ObjectStorage.from_settings(settings), settings.agent_grant_seconds)

    def training(self, assignment) -> artifact_pb2.ObjectGrant:
        """A job's rights (``job.v1.TrainingAssignment``): its dataset object, its parent adapter, its own
        checkpoint (to resume where another attempt stopped), and writes under its model prefix."""
        reads = [(assignment.dataset_bucket, assignment.dataset_path), *adapter_reads(assignment.parent_adapter),
                 (assignment.output_bucket, checkpoint_key(assignment.output_prefix))]
        return grant(self._storage, self._seconds, reads=reads,
                     upload=(assignment.output_bucket, assignment.output_prefix))

    def export(self, assignment: artifact_pb2.ExportAssignment) -> artifact_pb2.ObjectGrant:
        """An export's rights: its adapter's files, and writes under the export's prefix."""
        return grant(self._storage, self._seconds, reads=adapter_reads(assignment.adapter),
                     upload=(assignment.output_bucket, assignment.output_prefix))

    def generation(self, assignment: artifact_pb2.GenerationAssignment) -> artifact_pb2.ObjectGrant:
        """A generation's rights: its adapter's files, nothing written."""
        return grant(self._storage, self._seconds, reads=adapter_reads(assignment.adapter))
