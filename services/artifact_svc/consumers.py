"""Builds the model artifact when a job completes (spec FR-5.1)."""

from __future__ import annotations

from brightrun.events.v1 import events_pb2
from google.protobuf.json_format import MessageToDict

from services.artifact_svc import store
from services.artifact_svc.messages import artifact_message
from services.artifact_svc.quality import build_artifact
from services.common.db import Database, claim_event
from services.common.events import add_to_outbox, new_event
from services.common.nats_access import ARTIFACT_BUILDER

DURABLE = ARTIFACT_BUILDER.durable
PRODUCER = "artifact_svc"


class ArtifactBuilder:
    """Handler of ``job.completed``: one artifact per job, with ``artifact.created`` in the same transaction."""

    def __init__(self, db: Database):
        self._db = db

    async def handle(self, event: events_pb2.Event) -> None:
        if event.WhichOneof("payload") != "job_completed":
            return
        completed = event.job_completed
        draft = build_artifact(
            completed.job, completed.manifest, MessageToDict(completed.summary), user_id=event.user_id
        )
        async with self._db.transaction() as conn:
            if not await claim_event(conn, DURABLE, event.event_id):
                return
            # A second job.completed for the same job (a re-published event
            # with a new id) finds the artifact already there: nothing to do.
            row = await store.insert_artifact(conn, draft)
            if row is None:
                return
            artifact = artifact_message(row)
            await add_to_outbox(
                conn,
                new_event(
                    "artifact.created",
                    producer=PRODUCER,
                    user_id=artifact.user_id,
                    subject_id=artifact.id,
                    artifact_created=events_pb2.ArtifactCreated(artifact=artifact),
                ),
            )
