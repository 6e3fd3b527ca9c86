"""The Dataset aggregate without I/O: every lifecycle move, legal and illegal, and the counts it keeps."""

from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from services.common.errors import Conflict, FailedPrecondition
from services.dataset_svc.dataset import MAX_VALIDATION_ATTEMPTS, Dataset

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
STATUSES = ("uploading", "validating", "ready", "error")
# What entering validating forgets of the previous validation.
FORGOTTEN = {"training_ready": False, "validation_attempts": 0, "validation_errors": None, "content_sha256": None}


def _dataset(status="uploading", **fields) -> Dataset:
    row = dict(id="d", status=status, validation_attempts=0, training_ready=status == "ready",
               storage_path="u/d/upload.jsonl", deleted_at=None)
    row.update(fields)
    return Dataset.from_row(SimpleNamespace(**row))


@pytest.mark.parametrize("status", STATUSES)
def test_an_upload_is_confirmed_while_uploading_or_in_error_only(status):
    dataset = _dataset(status, validation_attempts=2)
    if status in ("uploading", "error"):
        assert dataset.confirm_upload("u/d/confirmed.jsonl") == ["dataset.uploaded"]
        assert dataset.changes == {"status": "validating", "storage_path": "u/d/confirmed.jsonl", **FORGOTTEN}
    else:
        with pytest.raises(FailedPrecondition, match=f"already {status}"):
            dataset.confirm_upload("u/d/confirmed.jsonl")
        assert dataset.changes == {} and dataset.status == status


@pytest.mark.parametrize("status", STATUSES)
def test_only_a_ready_or_failed_dataset_is_revalidated(status):
    dataset = _dataset(status, validation_attempts=4)
    if status in ("ready", "error"):
        assert dataset.revalidate("models/tiny") == ["dataset.uploaded"]
        assert dataset.changes == {"status": "validating", "base_model": "models/tiny", **FORGOTTEN}
    else:
        with pytest.raises(FailedPrecondition, match="only a ready or failed dataset"):
            dataset.revalidate()
        assert dataset.changes == {}


def test_revalidating_without_a_base_model_keeps_the_one_it_has():
    dataset = _dataset("ready")
    dataset.revalidate()
    assert "base_model" not in dataset.changes


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("ready", [True, False])
def test_a_validation_result_applies_to_a_validating_dataset_only(status, ready):
    dataset = _dataset(status)
    if status == "validating":
        assert dataset.record_validation(ready) == ["dataset.validated" if ready else "dataset.validation_failed"]
        assert dataset.changes == {"status": "ready" if ready else "error", "training_ready": ready}
    else:
        with pytest.raises(FailedPrecondition):
            dataset.record_validation(ready)
        assert dataset.changes == {}


def test_validation_passes_are_counted_and_the_one_after_the_last_allowed_gives_up():
    dataset = _dataset("validating")
    for attempt in range(1, MAX_VALIDATION_ATTEMPTS + 1):
        assert dataset.begin_validation() is False
        assert dataset.validation_attempts == attempt
    assert dataset.begin_validation() is True
    assert dataset.changes == {"validation_attempts": MAX_VALIDATION_ATTEMPTS + 1}


@pytest.mark.parametrize("status", ["uploading", "ready", "error"])
def test_no_validation_pass_begins_unless_validating(status):
    dataset = _dataset(status)
    with pytest.raises(FailedPrecondition):
        dataset.begin_validation()
    assert dataset.changes == {}


@pytest.mark.parametrize("status", STATUSES)
def test_a_dataset_no_job_uses_is_deleted_in_any_status(status):
    dataset = _dataset(status)
    assert dataset.delete([], NOW) == ["dataset.deleted"]
    assert dataset.changes == {"deleted_at": NOW}


def test_a_dataset_in_use_is_not_deleted_and_the_jobs_are_named():
    dataset = _dataset("ready")
    with pytest.raises(Conflict) as info:
        dataset.delete(["j1", "j2"], NOW)
    assert "2 queued or running" in str(info.value) and info.value.details == {"jobs": ["j1", "j2"]}
    assert dataset.changes == {} and dataset.deleted_at is None
