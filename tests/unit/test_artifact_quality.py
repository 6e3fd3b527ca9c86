"""The artifact record built from a job.completed event (spec FR-5.1): its
quality metrics graded from the summary a real training run ends with, as the
worker emits it and the events carry it; hand-made summaries only for the
grading's boundaries."""

import json
import math
import random
from datetime import datetime, timedelta, timezone

import pytest
from brightrun.artifact.v1 import artifact_pb2
from brightrun.job.v1 import job_pb2
from google.protobuf.json_format import MessageToDict
from google.protobuf.struct_pb2 import Struct

from services.artifact_svc.quality import build_artifact, convergence_grade, curve_convergence, quality_metrics
from services.trainer_agent.recipe import LoRATrainingRecipe, TrainingConfig
from services.trainer_agent.worker import completed, with_smoke_samples

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


WORDS = "the model data train learn loss token adapter rank hello world what how make one two three".split()
WITH_HEAD = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head")
# 48 conversations in batches of 8; 40 train, 8 held out.
SETTINGS = {"learning_rate": 5e-3, "batch_size": 8, "dropout": 0.0, "target_modules": WITH_HEAD, "seed": 2}


def _conversations(path, *, held_out_answer=None):
    """48 conversations whose answers repeat the user's words in capitals. With
    ``held_out_answer``, every sixth is marked for validation and answered by it
    instead, so that what training learns makes the validation loss worse;
    without, the validation split is the hash rule's."""
    rng = random.Random(3)
    with path.open("w") as out:
        for i in range(48):
            words = rng.sample(WORDS, 3)
            record = {"conversation_id": f"c{i}", "turns": [{"role": "user", "content": " ".join(words)}]}
            answer = " ".join(words).upper()
            if held_out_answer is not None:
                held_out = i % 6 == 0
                answer = held_out_answer(words) if held_out else answer
                record["split"] = "validation" if held_out else "train"
            record["turns"].append({"role": "assistant", "content": answer})
            out.write(json.dumps(record) + "\n")
    return path


def _real_run(model, data, **overrides) -> tuple[dict, list[dict]]:
    """Train for real; the summary as artifact_svc receives it (the worker's
    ``completed`` line, through the events' Struct), and the metric points."""
    points: list[dict] = []
    config = TrainingConfig(base_model=str(model), **SETTINGS | overrides)
    recipe = LoRATrainingRecipe(config, data, on_metrics=points.append)
    recipe.setup()
    # As the worker ends a run: with the held-out conversations answered.
    line = completed(recipe, with_smoke_samples(recipe, recipe.train(), count=2, max_new_tokens=6))
    recipe.cleanup()
    carried = Struct()
    carried.update(line["summary"])
    return MessageToDict(carried), points


@pytest.fixture(scope="module")
def learned(tiny_model, tmp_path_factory):
    """A run whose validation split, taken by the hash rule, is the same task as its training."""
    data = _conversations(tmp_path_factory.mktemp("data") / "upper.jsonl")
    return _real_run(tiny_model, data, epochs=8, validation_fraction=0.1)


@pytest.fixture(scope="module")
def overfitted(tiny_model, tmp_path_factory):
    """A run whose held-out answers are backwards in lower case: training makes them less likely."""
    path = tmp_path_factory.mktemp("data") / "diverging.jsonl"
    data = _conversations(path, held_out_answer=lambda words: " ".join(reversed(words)))
    return _real_run(tiny_model, data, epochs=4)


def _validations(points):
    return [(p["step"], p["validation_loss"]) for p in points if "validation_loss" in p]


@pytest.mark.slow
def test_quality_metrics_are_what_the_trainer_measured(learned):
    summary, points = learned
    quality = quality_metrics(summary)

    validations = _validations(points)
    best_step, best = min(validations, key=lambda v: v[1])
    assert len(validations) == 8  # one per epoch
    assert quality["final_training_loss"] == pytest.approx(summary["final_loss"])
    assert quality["final_validation_loss"] == pytest.approx(validations[-1][1])
    assert quality["perplexity"] == pytest.approx(math.exp(validations[-1][1]))
    assert (quality["best_validation_step"], quality["best_validation_loss"]) == (best_step, pytest.approx(best))
    assert quality["train_validation_gap"] == pytest.approx(validations[-1][1] - summary["final_loss"])
    # The curve is the run's own training loss, point by point.
    trained = [[p["step"], p["training_loss"]] for p in points if "training_loss" in p]
    assert summary["training_loss_curve"] == trained
    assert quality["overfitted"] is False
    assert quality["convergence"] == "converged"  # the loss fell, then flattened out
    # As low as 40 steps take the tiny model's loss, with the validation loss close by.
    assert 1.5 < summary["final_loss"] <= 2.5 and abs(quality["train_validation_gap"]) < 0.25
    assert (quality["convergence_quality"], quality["overall_score"]) == ("fair", 3)


@pytest.mark.slow
def test_a_run_that_overfits_is_graded_down(learned, overfitted):
    summary, points = overfitted
    quality = quality_metrics(summary)

    validations = _validations(points)
    # Validation got worse after its first epoch while training loss kept falling.
    assert quality["best_validation_step"] == validations[0][0] < validations[-1][0]
    assert quality["final_validation_loss"] > 1.25 * quality["best_validation_loss"]
    assert quality["train_validation_gap"] > 1.0
    assert quality["overfitted"] is True
    assert (quality["convergence_quality"], quality["overall_score"]) == ("poor", 2)
    assert quality["overall_score"] < quality_metrics(learned[0])["overall_score"]


@pytest.mark.slow
def test_without_a_validation_split_the_validation_metrics_are_null(tiny_model, tmp_path):
    summary, _ = _real_run(tiny_model, _conversations(tmp_path / "upper.jsonl"), epochs=1, validation_fraction=0.0)
    quality = quality_metrics(summary)

    assert quality["final_training_loss"] == pytest.approx(summary["final_loss"])
    for name in ("final_validation_loss", "best_validation_loss", "best_validation_step", "perplexity"):
        assert quality[name] is None
    assert (quality["train_validation_gap"], quality["overfitted"]) == (None, None)


@pytest.mark.slow
def test_artifact_carries_summary_configuration_and_files(learned):
    summary, _ = learned
    draft = build_artifact(_job(), MANIFEST, summary, user_id="ignored")

    assert draft.name == "Support chats LoRA r16"
    assert draft.version == "1.0.0"
    assert draft.user_id == "22222222-2222-2222-2222-222222222222"
    assert draft.storage_bucket == "lora-models"
    assert draft.quality_metrics == quality_metrics(summary)
    assert draft.training_summary == {
        "total_steps": 40,
        "epochs": 8,
        "trained_tokens": summary["trained_tokens"],
        "duration_seconds": summary["duration_seconds"],
        "final_cost": 7.0,
        "total_cost": 7.0,
        "started_at": "2026-03-01T12:00:00+00:00",
        "completed_at": "2026-03-01T13:00:00+00:00",
    }
    assert draft.training_summary["trained_tokens"] > 0
    assert draft.configuration["hyperparameters"]["rank"] == 16
    assert draft.configuration["gpu_config"] == {
        "type": "H100",
        "count": 2,
        "gpu_memory_gb": 0.0,
        "cost_per_gpu_hour": 3.5,
    }
    assert draft.configuration["base_model"] == "tiny-llama"
    assert draft.configuration["chat_template"].startswith("{{ bos_token }}")
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
        "best_validation_step": None,
        "perplexity": None,
        "train_validation_gap": None,
        "overfitted": None,
        "convergence": "unknown",
        "convergence_quality": "unknown",
        "overall_score": 3,
        "smoke_samples": [],
    }
    assert draft.training_summary["total_steps"] == 120
    assert draft.training_summary["trained_tokens"] is None
    assert draft.training_summary["duration_seconds"] == 3600.0


@pytest.mark.slow
def test_the_model_answers_held_out_conversations_with_and_without_its_adapter(learned, tiny_model):
    summary, _ = learned
    samples = quality_metrics(summary)["smoke_samples"]
    assert len(samples) == 2
    for sample in samples:
        assert set(sample) == {"prompt", "expected", "completion", "base_completion"}
        # A held-out conversation: its user's words, and the answer it was written with.
        assert sample["expected"] == sample["prompt"].upper()
        assert all(isinstance(sample[k], str) for k in ("completion", "base_completion"))


def test_smoke_samples_keep_only_text_fields_and_a_few():
    good = {"prompt": "p", "expected": "e", "completion": "c", "base_completion": "b"}
    entries = [good, {"prompt": 3}, "text", {**good, "extra": "dropped"}, *[good] * 10]
    # Of the first 8 entries, the two that are not text samples are left out, and so is any other field.
    assert quality_metrics({"smoke_samples": entries})["smoke_samples"] == [good] * 6
    assert quality_metrics({"smoke_samples": "nope"})["smoke_samples"] == []


def test_non_numbers_in_the_summary_are_ignored():
    quality = quality_metrics({"final_loss": "nan?", "perplexity": True, "training_loss_curve": [[1, "x"], [2]]})
    assert (quality["final_training_loss"], quality["perplexity"], quality["convergence"]) == (None, None, "unknown")


@pytest.mark.parametrize(
    ("training", "validation", "causes", "grade"),
    [
        (0.8, 0.85, {}, ("excellent", 5)),
        (0.8, 1.2, {}, ("fair", 3)),  # 50% gap: overfitting costs two stars
        (0.42, 1.9, {}, ("poor", 2)),  # far apart: however low the training loss
        (1.4, None, {}, ("good", 4)),
        (2.0, 2.2, {}, ("fair", 3)),
        (4.0, 4.1, {}, ("poor", 2)),
        (None, 1.0, {}, ("unknown", 3)),
        (0.8, 0.85, {"convergence": "still_improving"}, ("good", 4)),
        (0.8, 0.85, {"overfitted": True}, ("fair", 3)),
        (0.8, 0.85, {"convergence": "diverged"}, ("poor", 1)),
        (2.0, 2.2, {"convergence": "still_improving"}, ("fair", 3)),  # a cap never raises a grade
    ],
)
def test_convergence_grade(training, validation, causes, grade):
    assert convergence_grade(training, validation, **causes) == grade


def test_overfitted_means_the_validation_loss_ended_over_a_tenth_above_its_best():
    def overfitted(final: float) -> bool:
        return quality_metrics({"final_loss": 0.5, "final_validation_loss": final, "best_validation_loss": 1.0})[
            "overfitted"
        ]

    assert (overfitted(1.09), overfitted(1.11)) == (False, True)


@pytest.mark.parametrize(
    ("losses", "convergence"),
    [
        ([3.0, 2.0, 1.0], "unknown"),  # too few points to tell
        ([3.0, 2.0, 1.5, 1.4, 1.35, 1.3, 1.3, 1.28], "converged"),
        ([3.0, 2.8, 2.6, 2.4, 2.2, 2.0, 1.8, 1.6], "still_improving"),
        ([2.0, 1.5, 1.8, 2.1, 2.5, 2.9, 3.2, 3.5], "diverged"),
        ([2.0, 2.0, 2.0, 2.0], "diverged"),  # never fell: nothing was learnt
    ],
)
def test_convergence_is_judged_from_the_curve(losses, convergence):
    assert curve_convergence(list(enumerate(losses, start=1))) == convergence
