"""One step rule (services.common.steps) for the platform: the estimate's
total_steps, which CreateJob gives the job, are the steps the trainer runs,
from the statistics the real validator records, over one-turn and multi-turn
data, packed or not, on one process (micro-batches accumulated or not) and
on two."""

from __future__ import annotations

import io
import json
import random
import subprocess
from pathlib import Path

import pytest

from services.common.steps import steps_per_epoch, total_steps, training_conversations
from services.dataset_svc.statistics import load_tokenizer
from services.dataset_svc.validation import validate_dataset
from services.job_svc.catalogue import GPU_TYPES
from services.job_svc.estimate import estimate
from services.trainer_agent.launch import launch_command
from services.trainer_agent.recipe import LoRATrainingRecipe, TrainingConfig

WORDS = "the model data train learn loss token adapter rank hello world what how make one two three".split()
BATCH_SIZE, EPOCHS = 4, 2


def _write(path: Path, exchanges_of) -> Path:
    """30 conversations, the i-th with ``exchanges_of(i)`` user/assistant exchanges;
    the split is the hash rule's, as for an upload that names none."""
    rng = random.Random(5)
    with path.open("w") as out:
        for i in range(30):
            turns = [{"role": "system", "content": "answer in capitals"}] if i % 4 == 0 else []
            for _ in range(exchanges_of(i)):
                text = " ".join(rng.sample(WORDS, 1 + i % 4))
                turns += [{"role": "user", "content": text}, {"role": "assistant", "content": text.upper()}]
            out.write(json.dumps({"conversation_id": f"c{i}", "turns": turns}) + "\n")
    return path


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("data")
    return {
        "one_turn": _write(folder / "one_turn.jsonl", lambda i: 1),
        "multi_turn": _write(folder / "multi_turn.jsonl", lambda i: 1 + i % 3),
    }


def _planned(model: Path, data: Path, gpus: int) -> int:
    """The steps job_svc plans (its estimate, which CreateJob uses) from what the validator measured."""
    report = validate_dataset(io.BytesIO(data.read_bytes()), load_tokenizer(str(model)))
    assert report.ok, report.errors
    statistics = report.statistics
    assert statistics["validation_conversations"] > 0  # the split is part of the rule under test
    return estimate(GPU_TYPES["H100"], gpus, statistics, statistics["total_tokens"], BATCH_SIZE, EPOCHS).total_steps


def _in_one_process(model: Path, data: Path, **layout) -> tuple[int, int]:
    config = TrainingConfig(base_model=str(model), batch_size=BATCH_SIZE, epochs=EPOCHS, **layout)
    recipe = LoRATrainingRecipe(config, data)
    recipe.setup()
    summary = recipe.train()
    recipe.cleanup()
    return summary["total_steps"], summary["steps_completed"]


def _on_two_ranks(model: Path, data: Path, tmp_path: Path, **options) -> tuple[int, int]:
    """The worker as the agent launches it for 2 GPUs (2 gloo ranks on the CPU)."""
    assignment = tmp_path / "assignment.json"
    hyperparameters = {"base_model": str(model), "batch_size": BATCH_SIZE, "epochs": EPOCHS, **options}
    assignment.write_text(json.dumps({"job_id": "job-1", "hyperparameters": hyperparameters}))
    args = ["--assignment", str(assignment), "--dataset", str(data), "--output", str(tmp_path / "adapter")]
    done = subprocess.run(launch_command(2, args), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    [completed] = [line for line in map(json.loads, done.stdout.splitlines()) if line["type"] == "completed"]
    return completed["summary"]["total_steps"], completed["summary"]["steps_completed"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dataset", "layout"),
    [
        ("one_turn", {"packing": True}),
        ("one_turn", {"packing": False, "micro_batch_size": 1}),
        ("multi_turn", {"packing": True, "micro_batch_size": 2}),
        ("multi_turn", {"packing": False}),
    ],
)
def test_the_trainer_runs_the_steps_the_job_plans_on_one_process(tiny_model, datasets, dataset, layout):
    planned = _planned(tiny_model, datasets[dataset], gpus=1)

    assert _in_one_process(tiny_model, datasets[dataset], **layout) == (planned, planned)


@pytest.mark.slow
@pytest.mark.parametrize(("dataset", "packing"), [("multi_turn", True), ("one_turn", False)])
def test_the_trainer_runs_the_steps_the_job_plans_on_two_processes(tiny_model, datasets, dataset, packing, tmp_path):
    planned = _planned(tiny_model, datasets[dataset], gpus=2)

    assert _on_two_ranks(tiny_model, datasets[dataset], tmp_path, packing=packing) == (planned, planned)


def test_a_step_is_one_batch_of_training_conversations_and_the_last_may_be_short():
    assert (steps_per_epoch(28, 4), steps_per_epoch(29, 4), steps_per_epoch(3, 4)) == (7, 8, 1)
    assert total_steps(29, 4, 3) == 24


def test_the_training_conversations_are_the_counted_ones_less_those_held_out():
    assert training_conversations({"conversations": 30, "validation_conversations": 2}) == 28
    assert training_conversations({"conversations": 30}) == 30
    assert training_conversations({}) is None
