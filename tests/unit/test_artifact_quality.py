"""The artifact record built from a job.completed event (spec FR-5.1)."""

from datetime import datetime, timedelta, timezone

import pytest
from brightrun.artifact.v1 import artifact_pb2
from brightrun.job.v1 import job_pb2

from services.artifact_svc.quality import build_artifact, convergence_grade, quality_metrics

STARTED = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


def _job(**overrides) -> job_pb2.Job:
    fields = dict(
        id="11111111-1111-1111-1111-111111111111",
        user_id="22222222-2222-2222-2222-222222222222",
        dataset_id="33333333-3333-3333-3333-333333333333",
        dataset_name="Support chats",
        preset_id="balanced",
        hyperparameters=job_pb2.Hyperparameters(base_model="tiny-llama", rank=16, learning_rate=2e-4, epochs=3),
        gpu_config=job_pb2.GpuConfig(type="H100", count=2, cost_per_gpu_hour=3.5),
        total_steps=120,
        total_epochs=3,
        current_cost=6.9,
        final_cost=7.0,
    )
    job = job_pb2.Job(**{**fields, **overrides})
    job.started_at.FromDatetime(STARTED)
    job.completed_at.FromDatetime(STARTED + timedelta(hours=1))
    return job


MANIFEST = artifact_pb2.AdapterManifest(
    bucket="lora-models",
    prefix="u/j",
    files=[
        artifact_pb2.ArtifactFile(
            name="adapter_config.json", key="u/j/adapter_config.json", size_bytes=512, sha256="aa"
        ),
        artifact_pb2.ArtifactFile(name="adapter_model.safetensors", key="u/j/adapter.st", size_bytes=4096, sha256="bb"),
    ],
)


def test_artifact_carries_summary_configuration_and_files():
    summary = {
        "final_loss": 0.82,
        "best_validation_loss": 0.85,
        "final_validation_loss": 0.88,
        "perplexity": 2.41,
        "total_steps": 118,
        "trained_tokens": 50000,
        "duration_seconds": 3500.0,
        "epochs": 3,
        "chat_template": "{{ chatml }}",
    }
    draft = build_artifact(_job(), MANIFEST, summary, user_id="ignored")

    assert draft.name == "Support chats LoRA r16"
    assert draft.version == "1.0.0"
    assert draft.user_id == "22222222-2222-2222-2222-222222222222"
    assert draft.storage_bucket == "lora-models"
    assert draft.quality_metrics["final_training_loss"] == 0.82
    assert draft.quality_metrics["final_validation_loss"] == 0.88
    assert draft.quality_metrics["best_validation_loss"] == 0.85
    assert draft.quality_metrics["perplexity"] == 2.41
    assert draft.quality_metrics["convergence_quality"] == "excellent"
    assert draft.training_summary == {
        "total_steps": 118,
        "epochs": 3,
        "trained_tokens": 50000,
        "duration_seconds": 3500.0,
        "final_cost": 7.0,
        "total_cost": 7.0,
        "started_at": "2026-03-01T12:00:00+00:00",
        "completed_at": "2026-03-01T13:00:00+00:00",
    }
    assert draft.configuration["hyperparameters"]["rank"] == 16
    assert draft.configuration["gpu_config"] == {
        "type": "H100",
        "count": 2,
        "gpu_memory_gb": 0.0,
        "cost_per_gpu_hour": 3.5,
    }
    assert draft.configuration["base_model"] == "tiny-llama"
    assert draft.configuration["chat_template"] == "{{ chatml }}"
    assert draft.artifacts == {
        "adapter_config.json": {"key": "u/j/adapter_config.json", "size_bytes": 512, "sha256": "aa"},
        "adapter_model.safetensors": {"key": "u/j/adapter.st", "size_bytes": 4096, "sha256": "bb"},
    }


def test_missing_summary_values_are_null_or_taken_from_the_job():
    draft = build_artifact(_job(dataset_name=""), MANIFEST, {}, user_id="x")

    assert draft.name == "Model LoRA r16"
    assert draft.quality_metrics == {
        "final_training_loss": None,
        "final_validation_loss": None,
        "best_validation_loss": None,
        "perplexity": None,
        "convergence_quality": "unknown",
        "overall_score": 3,
    }
    assert draft.training_summary["total_steps"] == 120
    assert draft.training_summary["trained_tokens"] is None
    assert draft.training_summary["duration_seconds"] == 3600.0


def test_perplexity_falls_back_to_exp_of_validation_loss():
    assert quality_metrics({"final_loss": 1.0, "final_validation_loss": 1.0})["perplexity"] == pytest.approx(
        2.71828, 1e-4
    )


def test_non_numbers_in_the_summary_are_ignored():
    assert quality_metrics({"final_loss": "nan?", "perplexity": True})["final_training_loss"] is None


@pytest.mark.parametrize(
    ("training", "validation", "grade"),
    [
        (0.8, 0.85, ("excellent", 5)),
        (0.8, 1.2, ("fair", 3)),  # 50% gap: overfitting costs two stars
        (1.4, None, ("good", 4)),
        (2.0, 2.2, ("fair", 3)),
        (4.0, 4.1, ("poor", 2)),
        (None, 1.0, ("unknown", 3)),
    ],
)
def test_convergence_grade(training, validation, grade):
    assert convergence_grade(training, validation) == grade
