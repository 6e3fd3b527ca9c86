"""The dataset's events, built from its row, and the one way a changed dataset is saved with them."""

from __future__ import annotations

from brightrun.events.v1 import events_pb2
from services.common import events
from services.dataset_svc import store
from services.dataset_svc.dataset import Dataset
from services.dataset_svc.messages import dataset_message

PRODUCER = "dataset_svc"
_PAYLOADS = {
    "dataset.uploaded": ("dataset_uploaded", events_pb2.DatasetUploaded),
    "dataset.validated": ("dataset_validated", events_pb2.DatasetValidated),
    "dataset.validation_failed": ("dataset_validation_failed", events_pb2.DatasetValidationFailed),
    "dataset.deleted": ("dataset_deleted", events_pb2.DatasetDeleted),
}


def dataset_event(type_: str, row) -> events_pb2.Event:
    """An event of ``type_`` carrying the dataset as it is in ``row``."""
    field, payload = _PAYLOADS[type_]
    return events.new_event(type_, producer=PRODUCER, user_id=str(row.user_id), subject_id=str(row.id),
                            **{field: payload(dataset=dataset_message(row))})


async def save(conn, dataset: Dataset, types: list[str]):
    """Save ``dataset``'s changes and add the events of ``types`` to the outbox, in the caller's
    transaction; returns the saved row."""
    row = await store.save_dataset(conn, dataset)
    for type_ in types:
        await events.add_to_outbox(conn, dataset_event(type_, row))
    return row
