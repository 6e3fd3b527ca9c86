"""Validation every ``eval_steps`` and at epoch ends, and early stopping, also
across a resume: the stopping count travels in the checkpoint."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

from services.trainer_agent.recipe import ConfigError, LoRATrainingRecipe, TrainingConfig

WORDS = "the model data train learn loss token adapter rank hello world what how make one two three".split()
WITH_HEAD = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head")
# 40 training conversations in batches of 8: 5 steps an epoch.
SETTINGS = {"learning_rate": 5e-3, "batch_size": 8, "dropout": 0.0, "target_modules": WITH_HEAD, "seed": 2}


@pytest.fixture(scope="module")
def diverging(tmp_path_factory):
    """Training answers repeat the user in capitals; held-out answers repeat it
    backwards in lower case, so that training soon makes the validation loss worse."""
    rng = random.Random(3)
    path = tmp_path_factory.mktemp("data") / "diverging.jsonl"
    with path.open("w") as out:
        for i in range(48):
            words = rng.sample(WORDS, 3)
            held_out = i % 6 == 0
            answer = " ".join(reversed(words)) if held_out else " ".join(words).upper()
            record = {
                "messages": [{"role": "user", "content": " ".join(words)}, {"role": "assistant", "content": answer}],
                "split": "validation" if held_out else "train",
            }
            out.write(json.dumps(record) + "\n")
    return path


def _run(model_dir, data, *, stop_after=None, recipe_args=None, **overrides):
    points: list[dict] = []
    asked: list[int] = []
    recipe = LoRATrainingRecipe(
        TrainingConfig(base_model=str(model_dir), **SETTINGS | overrides),
        data,
        on_metrics=points.append,
        should_stop=lambda: stop_after is not None and (asked.append(1) or len(asked) > stop_after),
        **(recipe_args or {}),
    )
    recipe.setup()
    summary = recipe.train()
    recipe.cleanup()
    return summary, points


def _validations(points):
    return [(p["step"], p["validation_loss"]) for p in points if "validation_loss" in p]


def test_validation_runs_every_eval_steps_and_at_each_epoch_end(tiny_model, diverging):
    summary, points = _run(tiny_model, diverging, epochs=2, eval_steps=4)

    assert [step for step, _ in _validations(points)] == [4, 5, 8, 10]
    assert summary["best_validation_loss"] == min(loss for _, loss in _validations(points))
    for point in (p for p in points if "validation_loss" in p):
        assert point["perplexity"] == pytest.approx(math.exp(point["validation_loss"]))


def test_a_validated_step_has_its_training_point_however_sparse_the_points(tiny_model, diverging):
    _, points = _run(tiny_model, diverging, epochs=2, eval_steps=3, log_every=4)

    trained = [p["step"] for p in points if "training_loss" in p]
    validated = [step for step, _ in _validations(points)]
    assert validated == [3, 5, 6, 9, 10]
    assert trained == [3, 4, 5, 6, 8, 9, 10]


@pytest.fixture(scope="module")
def stopped_early(tiny_model, diverging):
    return _run(tiny_model, diverging, epochs=10, eval_steps=1, early_stopping_patience=2)


def test_training_stops_after_patience_validations_without_a_better_loss(stopped_early):
    summary, points = stopped_early
    losses = [loss for _, loss in _validations(points)]

    assert summary["stopped_early"] and not summary["stopped"]
    assert summary["steps_completed"] == len(losses) < summary["total_steps"] == 50
    best = losses.index(min(losses))
    assert best == len(losses) - 3  # the two validations after the best were no better, and were the last
    assert all(loss < min(losses[:i]) for i, loss in enumerate(losses[:best]) if i)
    assert points[-1]["validation_loss"] == losses[-1]  # no step trained after the decisive validation


def test_a_resumed_run_keeps_counting_towards_early_stopping(tiny_model, diverging, tmp_path, stopped_early):
    whole, whole_points = stopped_early
    settings = {"epochs": 10, "eval_steps": 1, "early_stopping_patience": 2, "checkpoint_steps": 1}
    # Stopped one step before early stopping would: its last checkpoint holds one validation without improvement.
    _run(tiny_model, diverging, stop_after=whole["steps_completed"] - 1,
         recipe_args={"checkpoint_dir": tmp_path / "ckpt"}, **settings)

    resumed = {"resume_from": tmp_path / "ckpt", "checkpoint_dir": tmp_path / "ckpt"}
    summary, points = _run(tiny_model, diverging, recipe_args=resumed, **settings)

    assert summary["stopped_early"]
    assert summary["steps_completed"] == whole["steps_completed"]
    expected = whole_points[-len(points) :]
    assert [p["step"] for p in points] == [p["step"] for p in expected] == [whole["steps_completed"]] * 2
    torch.testing.assert_close(
        [p.get("training_loss", p.get("validation_loss")) for p in points],
        [p.get("training_loss", p.get("validation_loss")) for p in expected],
        rtol=1e-5, atol=1e-6,
    )


def test_early_stopping_needs_a_validation_split(tiny_model, tmp_path):
    data = tmp_path / "train-only.jsonl"
    record = {"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "HELLO"}]}
    data.write_text((json.dumps({**record, "split": "train"}) + "\n") * 4)
    recipe = LoRATrainingRecipe(TrainingConfig(base_model=str(tiny_model), early_stopping_patience=3), data)

    with pytest.raises(ConfigError, match="early_stopping_patience: needs a validation split"):
        recipe.setup()
