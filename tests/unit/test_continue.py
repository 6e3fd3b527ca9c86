"""Continued training on the tiny offline model: a job started from a parent
adapter begins with the parent's weights, so its first step's loss is the
trained model's, lower than a fresh adapter's on the same data."""

from __future__ import annotations

import json
import random

import pytest
import torch

from services.trainer_agent.recipe import LoRATrainingRecipe, TrainingConfig

WORDS = "the model data train learn loss token adapter rank hello world what how make one two three".split()


@pytest.fixture
def upper_casing(tmp_path):
    rng = random.Random(7)
    path = tmp_path / "upper.jsonl"
    with path.open("w") as out:
        for _ in range(32):
            text = " ".join(rng.sample(WORDS, 2))
            out.write(json.dumps({"messages": [{"role": "user", "content": text},
                                               {"role": "assistant", "content": text.upper()}]}) + "\n")
    return path


def _recipe(tiny_model, data, parent=None, **overrides) -> tuple[LoRATrainingRecipe, list[dict]]:
    points: list[dict] = []
    settings = {"learning_rate": 3e-3, "batch_size": 8, "dropout": 0.0, "seed": 3, "validation_fraction": 0.0,
                "log_every": 1}
    config = TrainingConfig(base_model=str(tiny_model), **settings | overrides)
    recipe = LoRATrainingRecipe(config, data, on_metrics=points.append, parent_adapter=parent)
    recipe.setup()
    return recipe, points


def _lora(recipe) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in recipe.model.named_parameters() if "lora_" in n}


def test_a_continued_job_starts_from_the_parents_weights_and_a_lower_loss(tiny_model, upper_casing, tmp_path):
    parent, _ = _recipe(tiny_model, upper_casing, epochs=8)
    parent.train()
    parent_dir = parent.save_adapter(tmp_path / "parent")
    parent_weights = _lora(parent)
    parent.cleanup()

    continued, continued_points = _recipe(tiny_model, upper_casing, parent=parent_dir, epochs=1)
    for name, weight in _lora(continued).items():
        torch.testing.assert_close(weight, parent_weights[name], rtol=0, atol=0)
    assert all(p.requires_grad for n, p in continued.model.named_parameters() if "lora_" in n)
    continued.train()
    continued.cleanup()

    fresh, fresh_points = _recipe(tiny_model, upper_casing, epochs=1)
    fresh.train()
    fresh.cleanup()

    first = [p["training_loss"] for p in continued_points if "training_loss" in p][0]
    fresh_first = [p["training_loss"] for p in fresh_points if "training_loss" in p][0]
    assert first < fresh_first - 0.1, (first, fresh_first)
