"""The Dataset aggregate: a dataset's lifecycle. Pure.

uploading -> validating -> ready | error. A ready or failed dataset is
revalidated (-> validating); a failed one is also confirmed again after a new
upload. Entering validating forgets the previous outcome. A live dataset is
deleted unless a job still uses it. Every method raises a typed domain error
for a move the lifecycle does not allow, records the fields it changed in
``changes`` and returns the types of the events to publish.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.common.errors import Conflict, FailedPrecondition

# Validations of one upload that may die before a dataset is declared in error.
MAX_VALIDATION_ATTEMPTS = 3


@dataclass
class Dataset:
    id: str
    status: str
    validation_attempts: int
    training_ready: bool
    storage_path: str
    deleted_at: datetime | None = None
    changes: dict = field(default_factory=dict)

    @classmethod
    def from_row(cls, row) -> Dataset:
        """The dataset as its stored row (any object with the datasets table's columns as attributes) has it."""
        return cls(id=str(row.id), status=row.status, validation_attempts=row.validation_attempts,
                   training_ready=row.training_ready, storage_path=row.storage_path, deleted_at=row.deleted_at)

    def _set(self, **fields) -> None:
        for name, value in fields.items():
            setattr(self, name, value)
        self.changes.update(fields)

    def _validate_again(self, **fields) -> list[str]:
        # A new validation starts from nothing: no earlier outcome, hash or count of dead attempts.
        self._set(status="validating", training_ready=False, validation_attempts=0, **fields)
        self.changes.update(validation_errors=None, content_sha256=None)
        return ["dataset.uploaded"]

    def check_confirmable(self) -> None:
        """Raises FailedPrecondition unless an upload can be confirmed (the dataset is uploading or in error)."""
        if self.status not in ("uploading", "error"):
            raise FailedPrecondition(f"Dataset is already {self.status}; confirm applies to an uploaded file")

    def confirm_upload(self, storage_path: str) -> list[str]:
        """The upload, copied to ``storage_path``, is validated next. Raises FailedPrecondition as check_confirmable."""
        self.check_confirmable()
        return self._validate_again(storage_path=storage_path)

    def revalidate(self, base_model: str = "") -> list[str]:
        """Validate again, with ``base_model``'s tokenizer when given.

        Raises FailedPrecondition unless the dataset is ready or in error.
        """
        if self.status not in ("ready", "error"):
            raise FailedPrecondition(f"Dataset is {self.status}; only a ready or failed dataset can be revalidated")
        return self._validate_again(**({"base_model": base_model} if base_model else {}))

    def begin_validation(self) -> bool:
        """Count one more validation pass; True when the passes before it all died and it must give up.

        Raises FailedPrecondition when the dataset is no longer validating (an earlier delivery finished it).
        """
        if self.status != "validating":
            raise FailedPrecondition(f"Dataset is {self.status}, not validating")
        self._set(validation_attempts=self.validation_attempts + 1)
        return self.validation_attempts > MAX_VALIDATION_ATTEMPTS

    def record_validation(self, ready: bool) -> list[str]:
        """The validation's outcome: ready to train on, or in error.

        Raises FailedPrecondition when the dataset is no longer validating.
        """
        if self.status != "validating":
            raise FailedPrecondition(f"Dataset is {self.status}; a validation result no longer applies")
        self._set(status="ready" if ready else "error", training_ready=ready)
        return ["dataset.validated" if ready else "dataset.validation_failed"]

    def delete(self, active_jobs: list[str], now: datetime) -> list[str]:
        """Soft-delete. Raises Conflict while ``active_jobs`` (queued or running jobs) use the dataset."""
        if active_jobs:
            raise Conflict(
                f"Dataset is used by {len(active_jobs)} queued or running job(s); cancel them or wait until they end",
                {"jobs": active_jobs},
            )
        self._set(deleted_at=now)
        return ["dataset.deleted"]
