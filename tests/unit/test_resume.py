"""Checkpoints and exact resume: a run stopped and resumed by a new recipe
trains the very steps the uninterrupted run trained, and only a complete,
unchanged checkpoint is resumed from."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from services.trainer_agent.checkpoint import (
    MANIFEST,
    CheckpointError,
    checkpoint_path,
    latest_checkpoint,
    read_checkpoint,
    write_checkpoint,
)
from services.trainer_agent.recipe import ConfigError, LoRATrainingRecipe, TrainingConfig

WORDS = "the model data train learn loss token adapter rank hello world what how make one two three".split()
# 40 training examples in batches of 4 over 2 epochs: 20 steps, 10 an epoch.
# Dropout above 0, so that a resume that lost the random generators' state shows.
SETTINGS = {"learning_rate": 3e-3, "batch_size": 4, "epochs": 2, "dropout": 0.1, "warmup_steps": 3, "seed": 5}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """44 conversations repeating the user's words in capitals, 4 of them held out."""
    rng = random.Random(11)
    path = tmp_path_factory.mktemp("data") / "upper.jsonl"
    with path.open("w") as out:
        for i in range(44):
            text = " ".join(rng.sample(WORDS, 3))
            record = {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": text.upper()}]}
            if i % 11 == 0:
                record["split"] = "validation"
            out.write(json.dumps(record) + "\n")
    return path


def _run(tiny_model, data, *, stop_after: int | None = None, recipe_args=None, **overrides):
    """Set up and train; returns the recipe, its summary and its metric points."""
    points: list[dict] = []
    asked: list[int] = []
    config = TrainingConfig(base_model=str(tiny_model), **SETTINGS | overrides)
    recipe = LoRATrainingRecipe(
        config,
        data,
        on_metrics=points.append,
        # Asked before every step: stops once stop_after steps are done.
        should_stop=lambda: stop_after is not None and (asked.append(1) or len(asked) > stop_after),
        **(recipe_args or {}),
    )
    recipe.setup()
    return recipe, recipe.train(), points


def _adapter(recipe) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in recipe.model.named_parameters() if p.requires_grad}


@pytest.fixture(scope="module")
def uninterrupted(tiny_model, dataset):
    recipe, summary, points = _run(tiny_model, dataset)
    adapter = _adapter(recipe)
    recipe.cleanup()
    return summary, points, adapter


@pytest.fixture
def one_checkpoint(tiny_model, dataset, tmp_path):
    """A checkpoint directory holding the checkpoint after step 2."""
    recipe, _, _ = _run(
        tiny_model, dataset, stop_after=2, checkpoint_steps=2, recipe_args={"checkpoint_dir": tmp_path / "ckpt"}
    )
    recipe.cleanup()
    return tmp_path / "ckpt"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("every", "stop_after", "resumed_at"),
    [
        (3, 11, 9),  # in the middle of epoch 1: the resumed run crosses into epoch 2
        (5, 12, 10),  # at the end of epoch 1: the resumed run validates epoch 1 first
    ],
)
def test_a_resumed_run_trains_the_steps_of_the_uninterrupted_one(
    tiny_model, dataset, tmp_path, uninterrupted, every, stop_after, resumed_at
):
    whole_summary, whole_points, whole_adapter = uninterrupted
    saved: list = []
    stopped, first, _ = _run(
        tiny_model,
        dataset,
        stop_after=stop_after,
        checkpoint_steps=every,
        recipe_args={"checkpoint_dir": tmp_path / "ckpt", "on_checkpoint": saved.append},
    )
    stopped.cleanup()
    assert first["stopped"] and first["steps_completed"] == stop_after
    assert [path.name for path in saved] == [f"step-{s:08d}" for s in range(every, stop_after + 1, every)]

    # A new recipe, as a new worker process would build it, knowing only the directory.
    resumed, summary, points = _run(tiny_model, dataset, recipe_args={"resume_from": tmp_path / "ckpt"})

    expected = whole_points[-len(points) :]
    assert [p["step"] for p in points] == [p["step"] for p in expected]
    assert points[0]["step"] in (resumed_at, resumed_at + 1)  # a validation point keeps its epoch's last step
    for key in ("training_loss", "validation_loss", "learning_rate", "grad_norm"):
        torch.testing.assert_close(
            [p.get(key, 0.0) for p in points], [p.get(key, 0.0) for p in expected], rtol=1e-5, atol=1e-6
        )
    torch.testing.assert_close(_adapter(resumed), whole_adapter, rtol=1e-5, atol=1e-6)
    for key in ("steps_completed", "trained_tokens", "epochs", "stopped"):
        assert summary[key] == whole_summary[key]
    torch.testing.assert_close(summary["final_loss"], whole_summary["final_loss"], rtol=1e-5, atol=0.0)
    # What the artifact is graded from covers the whole run, the steps before the resume too.
    assert summary["best_validation_step"] == whole_summary["best_validation_step"]
    for key in ("training_loss_curve", "final_validation_loss", "best_validation_loss", "perplexity"):
        torch.testing.assert_close(summary[key], whole_summary[key], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.slow
def test_a_checkpoint_written_before_the_summary_kept_the_curve_resumes(tiny_model, dataset, one_checkpoint, tmp_path):
    tensors, state = read_checkpoint(one_checkpoint / "step-00000002")
    for key in ("training_curve", "final_validation_loss", "best_validation_step"):
        del state[key]
    older = write_checkpoint(tmp_path / "older" / "step-00000002", tensors, state)

    _, summary, _ = _run(tiny_model, dataset, recipe_args={"resume_from": older})

    assert summary["steps_completed"] == 20
    assert [step for step, _ in summary["training_loss_curve"]] == list(range(3, 21))
    assert summary["final_validation_loss"] is not None


def test_a_checkpoint_without_manifest_is_refused(tiny_model, dataset, one_checkpoint):
    (checkpoint_path(one_checkpoint, 2) / MANIFEST).unlink()

    with pytest.raises(CheckpointError, match="no manifest.json"):
        read_checkpoint(checkpoint_path(one_checkpoint, 2))
    with pytest.raises(CheckpointError, match="holds no complete checkpoint"):
        _run(tiny_model, dataset, recipe_args={"resume_from": one_checkpoint})


@pytest.mark.slow
def test_a_changed_checkpoint_file_is_refused(tiny_model, dataset, one_checkpoint):
    adapter = checkpoint_path(one_checkpoint, 2) / "adapter.safetensors"
    data = bytearray(adapter.read_bytes())
    data[-1] ^= 0xFF  # the last byte of the last tensor: same size, other weights
    adapter.write_bytes(bytes(data))

    with pytest.raises(CheckpointError, match="adapter.safetensors differs from its manifest"):
        _run(tiny_model, dataset, recipe_args={"resume_from": one_checkpoint})


@pytest.mark.slow
def test_a_checkpoint_of_other_settings_is_refused(tiny_model, dataset, one_checkpoint):
    with pytest.raises(CheckpointError, match="learning_rate, rank"):
        _run(tiny_model, dataset, learning_rate=1e-3, rank=8, recipe_args={"resume_from": one_checkpoint})


@pytest.mark.slow
def test_a_killed_worker_resumes_where_its_last_checkpoint_left_off(tiny_model, dataset, tmp_path):
    # 4 epochs, 40 steps: the kill, sent at step 9, lands long before the end.
    settings = SETTINGS | {"epochs": 4}
    assignment = tmp_path / "assignment.json"
    assignment.write_text(json.dumps({"hyperparameters": {"base_model": str(tiny_model), **settings}}))
    command = [sys.executable, "-m", "services.trainer_agent.worker", "--assignment", str(assignment)]
    command += ["--dataset", str(dataset), "--output", str(tmp_path / "adapter")]
    command += ["--checkpoint-dir", str(tmp_path / "ckpt"), "--checkpoint-steps", "4"]
    cwd = Path(__file__).resolve().parents[2]

    killed = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in killed.stdout:
        # Checkpoints are written after a step's metrics: step 9's line means step 8's checkpoint is complete.
        if json.loads(line).get("step", 0) >= 9:
            os.kill(killed.pid, signal.SIGKILL)
            break
    assert killed.wait(timeout=60) == -signal.SIGKILL
    killed.stdout.close()
    resumed_at = int(latest_checkpoint(tmp_path / "ckpt").name.removeprefix("step-"))

    finished = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)
    lines = [json.loads(line) for line in finished.stdout.splitlines()]
    _, reference, points = _run(tiny_model, dataset, epochs=4)

    assert lines[-1]["type"] == "completed", lines[-1]
    resumed = [line for line in lines if line["type"] == "metrics"]
    assert resumed[0]["step"] in (resumed_at, resumed_at + 1)
    expected = points[-len(resumed) :]
    assert [p["step"] for p in resumed] == [p["step"] for p in expected]
    torch.testing.assert_close(
        [p.get("training_loss", p.get("validation_loss")) for p in resumed],
        [p.get("training_loss", p.get("validation_loss")) for p in expected],
        rtol=1e-5,
        atol=1e-6,
    )
    assert lines[-1]["summary"]["steps_completed"] == reference["steps_completed"] == 40


def test_the_latest_checkpoint_is_the_newest_complete_one(tmp_path):
    for name in ("step-00000004", "step-00000008", "step-00000012", ".step-00000016.tmp-0a1b", "notes"):
        (tmp_path / name).mkdir()
    for complete in ("step-00000004", "step-00000008"):
        (tmp_path / complete / MANIFEST).write_text("{}")

    assert latest_checkpoint(tmp_path) == tmp_path / "step-00000008"
    assert latest_checkpoint(tmp_path / "absent") is None


def test_checkpoints_need_a_directory():
    with pytest.raises(ConfigError, match="checkpoint_dir"):
        LoRATrainingRecipe(TrainingConfig(base_model="m", checkpoint_steps=5), "data.jsonl")
