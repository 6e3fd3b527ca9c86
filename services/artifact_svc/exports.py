"""Exports of an artifact (a merged model), made by trainer agents.

CreateExport writes the export and its ExportAssignment (outbox, on the ASSIGN
work queue) in one transaction; the agent that takes it reports
``trainer.export.started``, ``.completed`` (with the files) or ``.failed``,
and :class:`ExportReports` moves the export on. Each report is applied once
(its event id is claimed) and only from the states it may follow, so a
redelivered or late report changes nothing. An agent that dies mid-export
leaves its assignment un-acked: JetStream hands it to another agent; once
JetStream gives up on it, :class:`AbandonedExports` fails the export, so that
none stays running for ever.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime, timezone

from brightrun.artifact.v1 import artifact_pb2
from brightrun.events.v1 import events_pb2
from google.protobuf.json_format import MessageToDict
from sqlalchemy.engine import Row

from services.artifact_svc import store
from services.artifact_svc.messages import artifact_message
from services.common.db import Database, claim_event
from services.common.errors import field_errors
from services.common.events import add_message_to_outbox
from services.common.grants import Granter
from services.common.export_queue import export_subject, is_export_consumer
from services.common.nats_access import ARTIFACT_EXPORTS
from services.common.artifact_files import adapter_manifest
from services.common.storage import export_prefix, model_prefix

log = logging.getLogger(__name__)
KINDS = ("merged",)
REPORTS_DURABLE = ARTIFACT_EXPORTS.durable


def parse_kind(kind: str) -> str:
    """The export kind; empty means "merged". Raises InvalidArgument naming `kind`."""
    kind = kind or "merged"
    if kind not in KINDS:
        field_errors({"kind": [f"must be one of {', '.join(KINDS)}, not {kind!r}"]})
    return kind


def export_assignment(artifact_row: Row, export_id: str, kind: str, prefix: str,
                      grants: Granter) -> tuple[str, bytes]:
    """The subject and body of the export's work order, built from the artifact alone, with its grant."""
    artifact = artifact_message(artifact_row)
    configuration = MessageToDict(artifact.configuration)
    hyperparameters = configuration.get("hyperparameters") or {}
    gpu_type = (configuration.get("gpu_config") or {}).get("type") or "CPU"
    assignment = artifact_pb2.ExportAssignment(
        export_id=export_id, artifact_id=artifact.id, user_id=artifact.user_id, kind=kind,
        base_model=configuration.get("base_model") or "", quantization=hyperparameters.get("quantization") or "",
        adapter=adapter_manifest(artifact), output_bucket=artifact.storage_bucket, output_prefix=prefix,
    )
    assignment.grant.CopyFrom(grants.export(assignment))
    return export_subject(gpu_type), assignment.SerializeToString()


async def request_export(db: Database, artifact_row: Row, kind: str, grants: Granter) -> Row:
    """The artifact's live export of ``kind``, queued now with its assignment when there is none."""
    async with db.transaction() as conn:
        existing = await store.live_export(conn, str(artifact_row.id), kind)
        if existing is not None:
            return existing
        export_id = str(uuid.uuid4())
        prefix = export_prefix(model_prefix(str(artifact_row.user_id), str(artifact_row.job_id)), export_id)
        row = await store.insert_export(
            conn, export_id, str(artifact_row.id), str(artifact_row.user_id), kind, artifact_row.storage_bucket, prefix
        )
        if row is None:  # a concurrent request queued one first
            return await store.live_export(conn, str(artifact_row.id), kind)
        subject, body = export_assignment(artifact_row, export_id, kind, prefix, grants)
        await add_message_to_outbox(conn, subject, body, str(uuid.uuid5(uuid.NAMESPACE_URL, f"{export_id}:export")))
        return row


class ExportReports:
    """Handler of ``trainer.export.*``: the export's status follows its agent's reports."""

    def __init__(self, db: Database):
        self._db = db

    async def handle(self, event: events_pb2.Event) -> None:
        kind = event.WhichOneof("payload")
        if kind not in ("trainer_export_started", "trainer_export_completed", "trainer_export_failed"):
            return
        report = getattr(event, kind)
        async with self._db.transaction() as conn:
            if not await claim_event(conn, REPORTS_DURABLE, event.event_id):
                return
            if kind == "trainer_export_started":
                await store.update_export(conn, report.export_id, from_statuses=("queued", "running"),
                                          status="running")
            elif kind == "trainer_export_completed":
                files = [{"name": f.name, "key": f.key, "size_bytes": f.size_bytes, "sha256": f.sha256}
                         for f in report.manifest.files]
                await store.update_export(conn, report.export_id, from_statuses=("queued", "running"),
                                          status="completed", error="", files=files,
                                          completed_at=datetime.now(timezone.utc))
            else:
                # A retryable failure waits, queued again, for the redelivered assignment.
                status = "queued" if report.retryable else "failed"
                await store.update_export(conn, report.export_id, from_statuses=("queued", "running"),
                                          status=status, error=report.reason)


class AbandonedExports:
    """Fails an export whose assignment JetStream gave up redelivering (its agents kept dying)."""

    def __init__(self, db: Database, js):
        self._db = db
        self._js = js

    async def on_advisory(self, msg) -> None:
        advisory = json.loads(msg.data)
        if not is_export_consumer(advisory.get("consumer", "")):
            return
        seq, deliveries = advisory["stream_seq"], advisory.get("deliveries", 0)
        try:
            raw = await self._js.get_msg("ASSIGN", seq)
        except Exception:  # already removed: handled before
            return
        assignment = artifact_pb2.ExportAssignment.FromString(raw.data)
        reason = (f"the export was handed to an agent {deliveries} time(s) and never finished (its agents stopped "
                  "responding); ask for it again")
        async with self._db.transaction() as conn:
            await store.update_export(conn, assignment.export_id, from_statuses=("queued", "running"),
                                      status="failed", error=reason)
        await self._js.delete_msg("ASSIGN", seq)

