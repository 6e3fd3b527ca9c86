"""job_svc's own copy of the dataset facts EstimateJob reads (event-carried state, DESIGN.md): the owner,
name, status, total_tokens, the statistics the estimate counts steps by (services.common.steps) and
whether the dataset was deleted, in job_svc's table ``dataset_facts``, kept from dataset_svc's events on
DATASETS. An estimate then costs no call to dataset_svc: the issue's 300 req/s spent about half their CPU
on that second gRPC hop.

Every dataset event carries the whole dataset as dataset_svc saved it, with its ``updated_at``, which
grows with each save (services/dataset_svc/store.py). The row keeps the ``updated_at`` of the event it
applied last as its version and an event no newer changes nothing (store.save_dataset_facts), so the
facts are those of the newest event whatever order JetStream delivers them in, and no claim is needed.

A dataset that is not here (its first event not yet applied, or only its creation happened: that has no
event; or a platform older than this table whose stream no longer holds its events) is asked of
dataset_svc as before, so the estimate is never wrong for want of an event, only slower. What is here
lags dataset_svc by an event's delivery: an estimate a few milliseconds after a delete or a new
validation may still see the dataset as it was; a deleted one is then Not Found with no call at all.

CreateJob does not read this copy: a job must never be queued on a dataset deleted, or revalidated to
something else, a moment before, so it asks dataset_svc, whose answer is the dataset as it is.
"""

from __future__ import annotations

from datetime import timezone

from google.protobuf import struct_pb2

from brightrun.dataset.v1 import dataset_pb2
from brightrun.events.v1 import events_pb2
from services.common.db import Database
from services.common.errors import NotFound
from services.common.events import Unappliable
from services.common.paging import canonical_uuid
from services.common.steps import CONVERSATIONS, VALIDATION_CONVERSATIONS
from services.job_svc import store

# What EstimateJob answers for a dataset the caller cannot see, read here or from dataset_svc.
NOT_FOUND = "Dataset not found or access denied"
# The events that carry a dataset, by their payload field: every one on dataset.> today.
_PAYLOADS = ("dataset_uploaded", "dataset_validated", "dataset_validation_failed", "dataset_deleted")


def facts_of(dataset: dataset_pb2.Dataset) -> dict:
    """The row of ``dataset`` as an event carries it.

    Raises Unappliable when its ids are not UUIDs or it has no updated_at (no version to order it by).
    """
    dataset_id, owner = canonical_uuid(dataset.id), canonical_uuid(dataset.user_id)
    if dataset_id is None or owner is None or not dataset.HasField("updated_at"):
        raise Unappliable(f"dataset {dataset.id!r} of user {dataset.user_id!r} needs UUIDs and an updated_at")
    statistics = dataset.statistics
    return {
        "dataset_id": dataset_id, "user_id": owner, "name": dataset.name,
        "status": dataset_pb2.DatasetStatus.Name(dataset.status).removeprefix("DATASET_STATUS_").lower(),
        "total_tokens": dataset.total_tokens if dataset.HasField("total_tokens") else None,
        "conversations": int(statistics[CONVERSATIONS]) if CONVERSATIONS in statistics else None,
        "validation_conversations": (int(statistics[VALIDATION_CONVERSATIONS])
                                     if VALIDATION_CONVERSATIONS in statistics else None),
        "deleted_at": dataset.deleted_at.ToDatetime(tzinfo=timezone.utc)
        if dataset.HasField("deleted_at") else None,
        "version": dataset.updated_at.ToDatetime(tzinfo=timezone.utc),
    }


def dataset_of(row) -> dataset_pb2.Dataset:
    """The dataset as GetDataset would answer it, in the fields the estimate reads, from a row of
    store.estimate_inputs. Raises NotFound for a deleted dataset, as GetDataset does."""
    if row.deleted_at is not None:
        raise NotFound(NOT_FOUND)
    statistics = struct_pb2.Struct()
    for key, value in ((CONVERSATIONS, row.conversations), (VALIDATION_CONVERSATIONS, row.validation_conversations)):
        if value is not None:
            statistics[key] = value
    dataset = dataset_pb2.Dataset(id=str(row.dataset_id), name=row.name, statistics=statistics,
                                  status=dataset_pb2.DatasetStatus.Value(f"DATASET_STATUS_{row.status.upper()}"))
    if row.total_tokens is not None:
        dataset.total_tokens = row.total_tokens
    return dataset


class DatasetFacts:
    """The consumer of DATASETS (services.common.nats_access.JOB_DATASETS) that keeps the copy."""

    def __init__(self, db: Database):
        self._db = db

    async def handle(self, event: events_pb2.Event) -> None:
        """Apply the dataset ``event`` carries unless a newer one was applied; an event of a kind this
        version does not know (added to dataset_svc later) is left alone. Raises Unappliable for a dataset
        without UUIDs or updated_at."""
        kind = event.WhichOneof("payload")
        if kind not in _PAYLOADS:
            return
        facts = facts_of(getattr(event, kind).dataset)
        async with self._db.transaction() as conn:
            await store.save_dataset_facts(conn, facts)
