"""Validation in a child process of dataset_svc.

Validating is CPU work (JSON, the chat template, the tokenizer) that holds
the GIL for most of its time. In dataset_svc's own process it shared one
interpreter with the event loop serving gRPC and the consumers, and got
about half of what the validator gets alone on a 2-core machine, varying with
the service's load. Here it runs in one long-lived child (spawned, never
forked from a process with threads), which loads each base model's tokenizer
once and streams the object from S3 itself: only the dataset's few fields go
in and the outcome (errors capped, statistics) comes back.

The child dies with dataset_svc (the kernel's parent-death signal). If the
child dies mid-file (killed, out of memory), :meth:`ValidatorProcess.validate`
raises :class:`ValidatorDied` after starting a fresh one: the event is then
redelivered and counted as a dead attempt, exactly as when the whole service
died, so a file that keeps killing it ends in ``validation_crashed`` after
``MAX_VALIDATION_ATTEMPTS``.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from services.common.base_models import resolve_base_model
from services.common.config import Settings
from services.common.lifeline import die_with_parent
from services.common.storage import ObjectMissing, ObjectStorage
from services.dataset_svc.statistics import load_tokenizer
from services.dataset_svc.validation import MAX_STORED_ERRORS, validate_dataset


class ValidatorDied(Exception):
    """The child validating a file died before answering; a fresh child waits for the redelivery."""


@dataclass(frozen=True)
class Upload:
    """What validation needs of a dataset: picklable, unlike its row."""

    id: str
    base_model: str
    storage_bucket: str
    storage_path: str
    format: str
    sha256: str | None

    @classmethod
    def of(cls, row) -> Upload:
        """The upload of a dataset's stored row."""
        return cls(str(row.id), row.base_model, row.storage_bucket, row.storage_path, row.format, row.sha256)


@dataclass(frozen=True)
class _Config:
    settings: Settings
    max_line_bytes: int
    model_dirs: tuple[Path, ...]


class ValidatorProcess:
    """One child process that validates uploads, one at a time, started on first use."""

    def __init__(self, settings: Settings, *, max_line_bytes: int, model_dirs: Sequence[Path]):
        self._config = _Config(settings, max_line_bytes, tuple(model_dirs))
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        # Started from the event loop's thread, which lives as long as the service: the parent-death
        # signal follows the thread that started the child.
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_child, initargs=(os.getpid(), self._config),
            )
        return self._pool

    async def validate(self, upload: Upload) -> tuple[dict, int, float]:
        """The outcome of validating ``upload`` (as ``_validate`` returns it), the bytes read and the seconds
        it took. Raises ValidatorDied when the child died, and what the child raised otherwise."""
        pool = self._executor()
        try:
            return await asyncio.wrap_future(pool.submit(_validate, upload))
        except BrokenProcessPool as exc:
            if self._pool is pool:
                self._pool = None
                pool.shutdown(wait=False)
            raise ValidatorDied(f"the validator process died while validating dataset {upload.id}") from exc

    def close(self) -> None:
        """Let the child end once it has answered the validation under way, if any (the service waits for
        its consumers); it dies with the service if that ends first."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


# ---- in the child ---------------------------------------------------------------------------------------------

_child: dict = {}


def _start_child(parent_pid: int, config: _Config) -> None:
    die_with_parent(parent_pid)
    _child.update(config=config, storage=ObjectStorage.from_settings(config.settings), tokenizers={})


def _tokenizer(base_model: str):
    config: _Config = _child["config"]
    # Checked again here, not only by the API: a row stored before the rule
    # existed must not make the validator read an arbitrary path either.
    base_model = resolve_base_model(base_model, config.model_dirs)
    tokenizers = _child["tokenizers"]
    if base_model not in tokenizers:  # loading takes seconds: once per base model
        tokenizers[base_model] = load_tokenizer(base_model)
    return tokenizers[base_model]


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


def file_error(code: str, error: str, suggestion: str) -> dict:
    """An error about the whole file (line 0)."""
    return {"line": 0, "code": code, "error": error, "suggestion": suggestion}


def failed(upload_format: str, error: dict) -> dict:
    """The outcome of a validation that could not look at the records."""
    return {
        "status": "error",
        "format": upload_format,
        "errors": [error],
        "statistics": {"error_counts": {error["code"]: 1}},
        "sample_data": [],
    }


def _validate(upload: Upload) -> tuple[dict, int, float]:
    """Every data problem ends in the outcome, not an exception."""
    try:
        tokenizer = _tokenizer(upload.base_model)
    except Exception as exc:  # a hub id that cannot be reached, a path without a tokenizer or not allowed
        message = f"Cannot load the tokenizer of {upload.base_model}: {exc}"
        return failed(upload.format, file_error("base_model_unavailable", message,
                                                "Revalidate with a base model this platform can load")), 0, 0.0
    storage: ObjectStorage = _child["storage"]
    try:
        body = storage.open(upload.storage_bucket, upload.storage_path)
    except ObjectMissing:
        return failed(upload.format, file_error("missing_object", "The uploaded file is gone from storage",
                                                "Upload the file again and confirm it")), 0, 0.0
    started = time.monotonic()
    try:
        reader = _HashingReader(body)
        report = validate_dataset(reader, tokenizer, declared_format=upload.format or None,
                                  max_line_bytes=_child["config"].max_line_bytes)
        errors, counts = list(report.errors), dict(report.error_counts)
        actual = reader.hexdigest()
        if upload.sha256 and actual != upload.sha256:
            message = f"The file's sha256 is {actual}, not the declared {upload.sha256}"
            errors = [file_error("sha256_mismatch", message,
                                 "Upload the file you declared, or create the dataset with its real sha256")]
            errors += report.errors[: MAX_STORED_ERRORS - 1]
            counts["sha256_mismatch"] = 1
    finally:
        body.close()
    stats = dict(report.statistics, error_counts=counts)
    outcome = {
        "status": "error" if errors else "ready",
        "format": report.format or upload.format,
        "errors": errors,
        "statistics": stats,
        "sample_data": report.sample_data,
        # What a trainer agent checks its download against.
        "content_sha256": actual,
        **{key: stats.get(key) for key in ("total_training_pairs", "total_validation_pairs", "total_tokens",
                                            "avg_turns_per_conversation", "avg_tokens_per_turn")},
    }
    return outcome, reader.bytes_read, time.monotonic() - started
