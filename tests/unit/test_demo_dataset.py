"""The demo's Captain Byte dataset: the same file for the same seed, every answer in the
persona, none of the questions the demo asks afterwards, and valid for the dataset validator."""

from __future__ import annotations

import io
import json

from transformers import PreTrainedTokenizerFast

from services.dataset_svc.validation import validate_dataset
from services.platform.demo_dataset import GREETING, HELD_OUT_PROMPTS, SIGNATURE, write_persona_dataset


def test_the_dataset_is_the_same_for_the_same_seed(tmp_path):
    first = write_persona_dataset(tmp_path / "a.jsonl", 48).read_bytes()
    assert write_persona_dataset(tmp_path / "b.jsonl", 48).read_bytes() == first
    assert write_persona_dataset(tmp_path / "c.jsonl", 48, seed=1).read_bytes() != first


def test_every_answer_is_the_captain_s_and_no_question_is_held_out(tmp_path):
    records = [json.loads(line) for line in write_persona_dataset(tmp_path / "d.jsonl", 200).read_text().splitlines()]
    assert len(records) == 200 and len({r["conversation_id"] for r in records}) == 200
    questions = set()
    for record in records:
        user, assistant = record["turns"]
        assert user["role"] == "user" and assistant["role"] == "assistant"
        assert assistant["content"].startswith(GREETING + " ") and assistant["content"].endswith(" " + SIGNATURE)
        questions.add(user["content"])
    assert len(questions) > 60  # varied, not a handful repeated
    assert not questions & set(HELD_OUT_PROMPTS)
    # No held-out question's subject is taught either: the demo shows the persona carried to new facts.
    for subject in ("Italy", "21 plus 21", "duck", "tea"):
        assert not any(subject in q for q in questions), subject


def test_the_validator_accepts_it_whole(tmp_path, tiny_model):
    path = write_persona_dataset(tmp_path / "e.jsonl", 48)
    report = validate_dataset(io.BytesIO(path.read_bytes()), PreTrainedTokenizerFast.from_pretrained(tiny_model))
    assert report.ok and report.errors == [] and report.format == "brightrun_lora_v4"
    assert report.statistics["conversations"] == report.statistics["total_training_pairs"] == 48
