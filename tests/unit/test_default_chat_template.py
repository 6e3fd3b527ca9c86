"""A base model without a chat template: the dataset validator and the trainer
both render with the documented default (one rule, services.common.chat_template),
so its dataset becomes ready with the token counts the trainer trains, and it trains."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from transformers import AutoTokenizer

from services.common.chat_template import DEFAULT_CHAT_TEMPLATE, chat_template_of
from services.common.tiny_model import CHAT_TEMPLATE
from services.dataset_svc.statistics import load_tokenizer
from services.dataset_svc.validation import validate_dataset
from services.trainer_agent.conversations import read_training_data
from services.trainer_agent.recipe import LoRATrainingRecipe, TrainingConfig

WORDS = "the model data train learn loss token adapter rank hello world what how make one two three".split()
MAX_SEQ_LENGTH = 96


@pytest.fixture(scope="module")
def templateless_model(tiny_model, tmp_path_factory):
    """The tiny model with its chat template removed, as a base model that never had one."""
    path = tmp_path_factory.mktemp("models") / "no-template"
    shutil.copytree(tiny_model, path)
    (path / "chat_template.jinja").unlink(missing_ok=True)
    config_path = path / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config.pop("chat_template", None)
    config_path.write_text(json.dumps(config))
    assert AutoTokenizer.from_pretrained(path).chat_template is None
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """30 conversations of one to three exchanges, some with a system prompt, some
    longer than MAX_SEQ_LENGTH; enough for the hash split to hold some out."""
    path = tmp_path_factory.mktemp("data") / "chats.jsonl"
    lines = []
    for i in range(30):
        turns = [{"role": "system", "content": "answer in capitals"}] if i % 3 == 0 else []
        for exchange in range(1 + i % 3):
            words = " ".join(WORDS[(i + exchange + k) % len(WORDS)] for k in range(2 + i % 5 * (i % 4)))
            turns += [{"role": "user", "content": words}, {"role": "assistant", "content": words.upper()}]
        lines.append(json.dumps({"conversation_id": f"c{i}", "turns": turns}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_template_is_the_models_own_else_the_default(tiny_model, templateless_model):
    assert chat_template_of(AutoTokenizer.from_pretrained(tiny_model)) == CHAT_TEMPLATE
    assert chat_template_of(load_tokenizer(str(templateless_model))) == DEFAULT_CHAT_TEMPLATE


def test_without_a_chat_template_the_dataset_is_ready_with_the_trainers_token_counts(templateless_model, dataset):
    report = validate_dataset(
        io.BytesIO(dataset.read_bytes()), load_tokenizer(str(templateless_model)), max_seq_length=MAX_SEQ_LENGTH
    )
    trained = read_training_data(dataset, AutoTokenizer.from_pretrained(templateless_model), 10_000, "", 0.05)

    assert report.ok, report.errors
    examples = trained.train + trained.validation
    stats = report.statistics
    assert (stats["conversations"], stats["validation_conversations"]) == (30, len(trained.validation))
    assert len(trained.validation) > 0
    assert stats["total_tokens"] == sum(len(e.input_ids) for e in examples)
    assert stats["trained_tokens"] == sum(e.trained_tokens for e in examples)
    assert stats["max_tokens"] == max(len(e.input_ids) for e in examples)
    assert stats["over_max_seq_length"] == sum(len(e.input_ids) > MAX_SEQ_LENGTH for e in examples) > 0


def test_without_a_chat_template_the_model_trains_with_the_default(templateless_model, dataset, tmp_path):
    config = TrainingConfig(base_model=str(templateless_model), batch_size=8, epochs=1, max_seq_length=MAX_SEQ_LENGTH)
    recipe = LoRATrainingRecipe(config, dataset)
    recipe.setup()
    summary = recipe.train()
    out = recipe.save_adapter(tmp_path / "adapter")
    recipe.cleanup()

    assert summary["steps_completed"] == summary["total_steps"] > 0
    assert summary["train_examples"] + summary["validation_examples"] == 30
    # Saved with the adapter, so that inference renders prompts as training did.
    assert AutoTokenizer.from_pretrained(out).chat_template == DEFAULT_CHAT_TEMPLATE
