"""The validator: consumes ``dataset.uploaded`` and validates the object in one
streaming pass with the base model's tokenizer, then records ``ready`` or
``error`` and its event in one transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from prometheus_client import Counter, Histogram

from brightrun.events.v1 import events_pb2
from services.common import events
from services.common.base_models import resolve_base_model
from services.common.db import Database, claim_event
from services.common.errors import FailedPrecondition
from services.common.nats_access import DATASET_USAGE, DATASET_VALIDATOR
from services.common.storage import ObjectMissing, ObjectStorage
from services.dataset_svc import store
from services.dataset_svc.events import save
from services.dataset_svc.statistics import load_tokenizer
from services.dataset_svc.validation import MAX_STORED_ERRORS, validate_dataset

log = logging.getLogger(__name__)
DURABLE = DATASET_VALIDATOR.durable
# rate(bytes_total) / rate(seconds_sum) is the validation throughput.
VALIDATED_BYTES = Counter("brightrun_dataset_validated_bytes_total", "Bytes of uploaded datasets read by validation")
VALIDATION_DURATION = Histogram(
    "brightrun_dataset_validation_seconds", "Time one dataset's validation took (tokenizer load excluded)",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)


class _HashingReader:
    """Passes reads through while hashing them, so the sha256 check costs no second pass."""

    def __init__(self, stream):
        self._stream = stream
        self.digest = hashlib.sha256()
        self.bytes_read = 0

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self.digest.update(data)
        self.bytes_read += len(data)
        return data

    def hexdigest(self) -> str:
        """The whole object's sha256: reads what the validator left (it stops at a binary file)."""
        while self.read(1 << 20):
            pass
        return self.digest.hexdigest()


def _file_error(code: str, error: str, suggestion: str) -> dict:
    return {"line": 0, "code": code, "error": error, "suggestion": suggestion}


def _failed(dataset, error: dict) -> dict:
    """The outcome of a validation that could not look at the records."""
    return {
        "status": "error",
        "format": dataset.format,
        "errors": [error],
        "statistics": {"error_counts": {error["code"]: 1}},
        "sample_data": [],
    }


class DatasetValidator:
    def __init__(self, db: Database, storage: ObjectStorage, *, max_line_bytes: int, model_dirs: Sequence[Path]):
        self._db = db
        self._storage = storage
        self._max_line_bytes = max_line_bytes
        self._model_dirs = model_dirs
        # One tokenizer per base model, loaded on first use; loading takes seconds.
        self._tokenizers: dict[str, object] = {}

    def _tokenizer(self, base_model: str):
        # Checked again here, not only by the API: a row stored before the rule
        # existed must not make the validator read an arbitrary path either.
        base_model = resolve_base_model(base_model, self._model_dirs)
        if base_model not in self._tokenizers:
            self._tokenizers[base_model] = load_tokenizer(base_model)
        return self._tokenizers[base_model]

    def _validate(self, dataset) -> dict:
        """Blocking: runs in a worker thread. Every data problem ends in the outcome, not an exception."""
        try:
            tokenizer = self._tokenizer(dataset.base_model)
        except Exception as exc:  # a hub id that cannot be reached, a path without a tokenizer or not allowed
            message = f"Cannot load the tokenizer of {dataset.base_model}: {exc}"
            return _failed(dataset, _file_error("base_model_unavailable", message,
                                                "Revalidate with a base model this platform can load"))
        try:
            body = self._storage.open(dataset.storage_bucket, dataset.storage_path)
        except ObjectMissing:
            return _failed(dataset, _file_error("missing_object", "The uploaded file is gone from storage",
                                                "Upload the file again and confirm it"))
        started = time.monotonic()
        try:
            reader = _HashingReader(body)
            report = validate_dataset(
                reader, tokenizer, declared_format=dataset.format or None, max_line_bytes=self._max_line_bytes
            )
            errors, counts = list(report.errors), dict(report.error_counts)
            actual = reader.hexdigest()
            if dataset.sha256 and actual != dataset.sha256:
                message = f"The file's sha256 is {actual}, not the declared {dataset.sha256}"
                errors = [_file_error("sha256_mismatch", message,
                                      "Upload the file you declared, or create the dataset with its real sha256")]
                errors += report.errors[: MAX_STORED_ERRORS - 1]
                counts["sha256_mismatch"] = 1
        finally:
            body.close()
        VALIDATED_BYTES.inc(reader.bytes_read)
        VALIDATION_DURATION.observe(time.monotonic() - started)
        stats = dict(report.statistics, error_counts=counts)
        return {
            "status": "error" if errors else "ready",
            "format": report.format or dataset.format,
            "errors": errors,
            "statistics": stats,
            "sample_data": report.sample_data,
            # What a trainer agent checks its download against.
            "content_sha256": actual,
            **{key: stats.get(key) for key in ("total_training_pairs", "total_validation_pairs", "total_tokens",
                                                "avg_turns_per_conversation", "avg_tokens_per_turn")},
        }

    async def handle(self, event: events_pb2.Event) -> None:
        """Validate the dataset of a ``dataset.uploaded`` event and record ``ready`` or ``error``.

        Skips a dataset that is no longer validating (deleted, or already
        recorded by an earlier delivery). Raises Unappliable for an event that
        names no dataset, and otherwise only for database failures, which
        leave the event for redelivery.
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
                outcome = _failed(dataset, _file_error(
                    "validation_crashed",
                    f"Validation stopped {dataset.validation_attempts - 1} times before finishing this file "
                    "(the validator was killed, most likely out of memory)",
                    "Split the file or shorten its longest lines, upload it again, and report it if this repeats",
                ))
            else:
                outcome = await asyncio.to_thread(self._validate, dataset)
        except Exception as exc:  # never leave a dataset stuck in validating
            log.exception("validation of dataset %s crashed", dataset.id)
            outcome = _failed(dataset, _file_error("validation_crashed", f"Validation stopped: {exc}",
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
