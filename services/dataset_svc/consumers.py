"""The validator: consumes ``dataset.uploaded``, has the object validated in
one streaming pass with the base model's tokenizer in the validator's child
process (services.dataset_svc.validator_process), then records ``ready`` or
``error`` and its event in one transaction.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Histogram

from brightrun.events.v1 import events_pb2
from services.common import events
from services.common.db import Database, claim_event
from services.common.errors import FailedPrecondition
from services.common.nats_access import DATASET_USAGE, DATASET_VALIDATOR
from services.dataset_svc import store
from services.dataset_svc.events import save
from services.dataset_svc.validator_process import Upload, ValidatorDied, ValidatorProcess, failed, file_error

log = logging.getLogger(__name__)
DURABLE = DATASET_VALIDATOR.durable
# rate(bytes_total) / rate(seconds_sum) is the validation throughput.
VALIDATED_BYTES = Counter("brightrun_dataset_validated_bytes_total", "Bytes of uploaded datasets read by validation")
VALIDATION_DURATION = Histogram(
    "brightrun_dataset_validation_seconds", "Time one dataset's validation took (tokenizer load excluded)",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)


class DatasetValidator:
    def __init__(self, db: Database, process: ValidatorProcess):
        self._db = db
        self._process = process

    async def _validate(self, dataset) -> dict:
        """The outcome of validating ``dataset`` in the validator's child process. Raises ValidatorDied when
        the child died (the event is redelivered, as when this whole service dies)."""
        outcome, bytes_read, seconds = await self._process.validate(Upload.of(dataset))
        if bytes_read:
            VALIDATED_BYTES.inc(bytes_read)
            VALIDATION_DURATION.observe(seconds)
        return outcome

    async def handle(self, event: events_pb2.Event) -> None:
        """Validate the dataset of a ``dataset.uploaded`` event and record ``ready`` or ``error``.

        Skips a dataset that is no longer validating (deleted, or already
        recorded by an earlier delivery). Raises Unappliable for an event that
        names no dataset, and otherwise only for database failures and a
        validator process that died, which leave the event for redelivery.
        """
        if not event.HasField("dataset_uploaded"):
            raise events.Unappliable(f"{event.type} carries no dataset_uploaded payload")
        uploaded = event.dataset_uploaded.dataset
        async with self._db.transaction() as conn:
            loaded = await store.load_dataset(conn, uploaded.user_id, uploaded.id)
            if loaded is None:
                return
            try:
                give_up = loaded.begin_validation()
            except FailedPrecondition:
                return  # recorded by an earlier delivery, or validating a newer upload under a newer event
            dataset = await store.save_dataset(conn, loaded)
        try:
            if give_up:
                # The earlier passes died without a word (killed, out of memory): a
                # fourth would too, and the dataset must not stay validating for ever.
                outcome = failed(dataset.format, file_error(
                    "validation_crashed",
                    f"Validation stopped {dataset.validation_attempts - 1} times before finishing this file "
                    "(the validator was killed, most likely out of memory)",
                    "Split the file or shorten its longest lines, upload it again, and report it if this repeats",
                ))
            else:
                outcome = await self._validate(dataset)
        except ValidatorDied:
            raise  # a dead attempt: redelivered and counted, as when this whole service dies
        except Exception as exc:  # never leave a dataset stuck in validating
            log.exception("validation of dataset %s crashed", dataset.id)
            outcome = failed(dataset.format, file_error("validation_crashed", f"Validation stopped: {exc}",
                                                   "Revalidate the dataset; report it if this repeats"))
        async with self._db.transaction() as conn:
            if not await claim_event(conn, DURABLE, event.event_id):
                return
            current = await store.load_dataset(conn, uploaded.user_id, uploaded.id)
            if current is None:
                return
            try:
                types = current.record_validation(outcome["status"] == "ready")
            except FailedPrecondition:
                return  # no longer validating: deleted from under it, or recorded already
            await store.record_validation(conn, current.id, outcome)
            await save(conn, current, types)


USAGE_DURABLE = DATASET_USAGE.durable


class DatasetUsage:
    """Tracks which jobs use which dataset, so that a dataset in use is not deleted."""

    def __init__(self, db: Database):
        self._db = db

    async def handle(self, event: events_pb2.Event) -> None:
        kind = event.WhichOneof("payload")
        if kind not in ("job_queued", "job_completed", "job_failed", "job_cancelled"):
            return
        job = getattr(event, kind).job
        async with self._db.transaction() as conn:
            if await claim_event(conn, USAGE_DURABLE, event.event_id):
                await store.record_usage(conn, job.id, job.dataset_id, active=kind == "job_queued")
