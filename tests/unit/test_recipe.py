"""The LoRA recipe on the tiny offline model: it learns, it is reproducible,
its adapter reloads unchanged, and a bad configuration is refused whole."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

from services.trainer_agent.recipe import ConfigError, LoRATrainingRecipe, TrainingConfig
from services.trainer_agent.schedule import lr_factor

WORDS = "the model data train learn loss token adapter rank hello world what how make one two three four five".split()
# The tiny model's output head is random and frozen, which caps how sure it can
# become of any token; a LoRA on the head too lets the loss fall far enough to test.
WITH_HEAD = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head")


@pytest.fixture
def upper_casing(tmp_path):
    """64 short conversations in which the assistant repeats the user's words in capitals."""
    rng = random.Random(7)
    path = tmp_path / "upper.jsonl"
    with path.open("w") as out:
        for i in range(64):
            text = " ".join(rng.sample(WORDS, 2))
            record = {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": text.upper()}]}
            if i % 16 == 0:
                record["split"] = "validation"
            out.write(json.dumps(record) + "\n")
    return path


def _train(tiny_model, data, **overrides) -> tuple[LoRATrainingRecipe, dict, list[dict]]:
    points: list[dict] = []
    settings = {"learning_rate": 3e-3, "batch_size": 8, "dropout": 0.1, "target_modules": WITH_HEAD, "seed": 3}
    config = TrainingConfig(base_model=str(tiny_model), **settings | overrides)
    recipe = LoRATrainingRecipe(config, data, on_metrics=points.append)
    recipe.setup()
    return recipe, recipe.train(), points


@pytest.mark.slow
def test_the_loss_falls_on_a_learnable_task(tiny_model, upper_casing):
    recipe, summary, points = _train(tiny_model, upper_casing, epochs=25, warmup_steps=5, dropout=0.0)

    steps = [p for p in points if "training_loss" in p]
    assert recipe.total_steps == math.ceil(60 / 8) * 25 == summary["steps_completed"] == len(steps)
    assert set(steps[0]) == {"epoch", "step", "total_steps", "training_loss", "learning_rate", "grad_norm"} | {
        "tokens_per_second",
        "samples_per_second",
    }
    assert summary["final_loss"] < 0.6 * steps[0]["training_loss"]
    validations = [p for p in points if "validation_loss" in p]
    assert len(validations) == 25
    assert validations[-1]["perplexity"] == pytest.approx(math.exp(validations[-1]["validation_loss"]))
    assert summary["best_validation_loss"] == min(p["validation_loss"] for p in validations)
    assert (summary["train_examples"], summary["validation_examples"], summary["dropped_examples"]) == (60, 4, 0)


def _losses(points: list[dict]) -> list[float]:
    return [p.get("training_loss", p.get("validation_loss")) for p in points]


@pytest.mark.slow
def test_the_same_seed_gives_the_same_losses(tiny_model, upper_casing):
    _, first, first_points = _train(tiny_model, upper_casing, dropout=0.1)
    _, again, again_points = _train(tiny_model, upper_casing, dropout=0.1)

    assert _losses(first_points) == _losses(again_points)
    assert first["final_loss"] == again["final_loss"]


@pytest.mark.slow
def test_micro_batches_accumulate_to_the_whole_batch(tiny_model, upper_casing):
    # Without dropout, whose masks depend on the micro-batch shapes.
    _, _, whole = _train(tiny_model, upper_casing, dropout=0.0)
    _, _, micro = _train(tiny_model, upper_casing, dropout=0.0, micro_batch_size=3)

    torch.testing.assert_close(_losses(micro), _losses(whole), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_the_saved_adapter_reloads_with_the_trained_logits(tiny_model, upper_casing, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    recipe, _, _ = _train(tiny_model, upper_casing, target_modules=())
    out = recipe.save_adapter(tmp_path / "adapter")
    probe = torch.tensor([recipe.data.train[0].input_ids])
    recipe.model.eval()
    with torch.no_grad():
        trained = recipe.model(input_ids=probe).logits
    recipe.cleanup()

    base = AutoModelForCausalLM.from_pretrained(tiny_model)
    reloaded = PeftModel.from_pretrained(base, out).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=probe).logits, trained)
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "training_config.json"):
        assert (out / name).is_file()
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    targets = {name.rsplit(".", 1)[-1] for name in adapter_config["target_modules"]}
    assert targets == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert json.loads((out / "training_config.json").read_text())["seed"] == 3


def test_should_stop_ends_training_cleanly_between_steps(tiny_model, upper_casing):
    asked, epochs_ended = [], []
    recipe = LoRATrainingRecipe(
        TrainingConfig(base_model=str(tiny_model), batch_size=8, epochs=2),
        upper_casing,
        should_stop=lambda: asked.append(1) or len(asked) > 10,
        on_epoch_end=epochs_ended.append,
    )
    recipe.setup()

    summary = recipe.train()

    assert (summary["stopped"], summary["steps_completed"], summary["epochs"], recipe.total_steps) == (True, 10, 1, 16)
    assert epochs_ended == [1]


def test_a_bad_configuration_names_every_bad_field():
    with pytest.raises(ConfigError) as caught:
        TrainingConfig(
            base_model="",
            learning_rate=0.0,
            batch_size=0,
            epochs=-1,
            rank=0,
            alpha=-2.0,
            dropout=1.0,
            warmup_steps=-1,
            weight_decay=-0.1,
            max_grad_norm=0.0,
            max_seq_length=1,
            seed=-5,
            micro_batch_size=0,
            log_every=0,
            validation_fraction=1.5,
            dataset_format="csv",
            target_modules=("",),
            warmup_ratio=1.5,
            lr_scheduler="step",
            packing="yes",
            gradient_checkpointing=1,
            eval_steps=-1,
            early_stopping_patience=0.5,
            quantization="int8",
            fused_kernels="yes",
        )
    named = {problem.split(":")[0] for problem in caught.value.problems}
    assert named == {
        "base_model", "learning_rate", "batch_size", "epochs", "rank", "alpha", "dropout", "warmup_steps",
        "weight_decay", "max_grad_norm", "max_seq_length", "seed", "micro_batch_size", "log_every",
        "validation_fraction", "dataset_format", "target_modules", "warmup_ratio", "lr_scheduler", "packing",
        "gradient_checkpointing", "eval_steps", "early_stopping_patience", "quantization", "fused_kernels",
    }


def test_warmup_comes_in_steps_or_as_a_ratio_not_both():
    with pytest.raises(ConfigError, match="warmup_ratio: give warmup_steps or warmup_ratio, not both"):
        TrainingConfig(base_model="m", warmup_steps=10, warmup_ratio=0.1)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal of a machine without CUDA")
def test_nf4_quantization_and_fused_kernels_are_refused_without_cuda(tiny_model, upper_casing):
    config = TrainingConfig(base_model=str(tiny_model), quantization="nf4", fused_kernels=True)
    recipe = LoRATrainingRecipe(config, upper_casing)

    with pytest.raises(ConfigError) as caught:
        recipe.setup()

    assert caught.value.problems == [
        "quantization: nf4 weights need a CUDA GPU; train without quantization on this machine",
        "fused_kernels: Liger's kernels need a CUDA GPU; train without them on this machine",
    ]


def test_the_learning_rate_follows_the_chosen_schedule(tiny_model, upper_casing):
    recipe, _, points = _train(tiny_model, upper_casing, epochs=2, lr_scheduler="linear", warmup_ratio=0.25)

    # 60 examples in batches of 8 over 2 epochs: 16 steps, the first 4 warming up.
    factors = [lr_factor(step, total_steps=16, warmup=4, kind="linear") for step in range(16)]
    logged = [p["learning_rate"] for p in points if "learning_rate" in p]
    assert recipe.log_every == 1
    assert logged == pytest.approx([3e-3 * f for f in factors])
    assert logged[3] == pytest.approx(3e-3) and logged[10] == pytest.approx(3e-3 * 0.5)


@pytest.mark.slow
def test_activation_checkpointing_trains_the_same_steps(tiny_model, upper_casing):
    plain, _, plain_points = _train(tiny_model, upper_casing, gradient_checkpointing=False)
    checkpointed, _, checkpointed_points = _train(tiny_model, upper_casing, gradient_checkpointing=True)

    assert checkpointed.model.base_model.model.is_activation_checkpointing
    assert not plain.model.base_model.model.is_activation_checkpointing
    # Dropout on: non-reentrant recomputation replays the random draws of the first forward pass.
    for key in ("training_loss", "grad_norm", "validation_loss"):
        torch.testing.assert_close(
            [p[key] for p in checkpointed_points if key in p], [p[key] for p in plain_points if key in p],
            rtol=1e-5, atol=1e-6,
        )


def test_micro_batch_larger_than_the_batch_is_refused():
    with pytest.raises(ConfigError, match="micro_batch_size"):
        TrainingConfig(base_model="m", batch_size=4, micro_batch_size=8)


def test_a_metric_point_averages_the_steps_since_the_last_and_the_last_step_has_one(tiny_model, upper_casing):
    recipe, _, every_step = _train(tiny_model, upper_casing, dropout=0.0)
    _, _, every_third = _train(tiny_model, upper_casing, dropout=0.0, log_every=3)

    assert recipe.log_every == 1  # unset: every step of a job this small
    steps = [p for p in every_step if "training_loss" in p]
    points = [p for p in every_third if "training_loss" in p]
    assert [p["step"] for p in points] == [3, 6, 8]
    windows = [steps[0:3], steps[3:6], steps[6:8]]
    assert [p["training_loss"] for p in points] == [sum(s["training_loss"] for s in w) / len(w) for w in windows]
    assert [p["grad_norm"] for p in points] == [w[-1]["grad_norm"] for w in windows]
