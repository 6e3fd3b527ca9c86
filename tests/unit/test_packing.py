"""Packing: conversations share rows without leaking into each other, and a
packed step trains exactly what the unpacked step trains."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch
from transformers import AutoModelForCausalLM

from services.trainer_agent.batching import collate, rows_of
from services.trainer_agent.conversations import IGNORE_INDEX, TokenizedConversation
from services.trainer_agent.model import packs_one_row_only
from services.trainer_agent.recipe import LoRATrainingRecipe, TrainingConfig

WORDS = "the model data train learn loss token adapter rank hello world what how make one two three four five".split()


def _example(ids: list[int], trained_from: int) -> TokenizedConversation:
    return TokenizedConversation(ids, [IGNORE_INDEX] * trained_from + ids[trained_from:], truncated=False)


def _sizes(rows) -> list[list[int]]:
    return [[len(e.input_ids) for e in row] for row in rows]


def _examples(sizes: list[int]) -> list[TokenizedConversation]:
    return [_example(list(range(10, 10 + n)), 1) for n in sizes]


def test_packed_rows_are_as_few_as_first_fit_finds_and_even_in_length():
    examples = _examples([5, 7, 4, 3, 6, 1])

    # First-fit longest first needs 3 rows of 10: [7, 3], [6, 4], [5, 1]; spread evenly, none is longer than 9.
    assert _sizes(rows_of(examples, capacity=10, packed=True)) == [[7, 1], [6, 3], [5, 4]]
    assert rows_of(examples, capacity=10, packed=False) == [[e] for e in examples]
    # For flash attention, which reads packing from a batch of one row only.
    assert _sizes(rows_of(examples, capacity=math.inf, packed=True)) == [[7, 6, 5, 4, 3, 1]]


def test_rows_stay_first_fit_where_evening_them_out_would_overflow_one():
    # Spread evenly over 2 rows, the last 3 would make a row of 11.
    assert _sizes(rows_of(_examples([5, 5, 4, 3, 3]), capacity=10, packed=True)) == [[5, 5], [4, 3, 3]]


def test_positions_restart_and_targets_shift_within_each_conversation():
    first, second = _example([11, 12, 13], 1), _example([21, 22, 23, 24], 2)

    t = collate([[first, second], [second]], pad_id=0)

    assert t["input_ids"].tolist() == [[11, 12, 13, 21, 22, 23, 24], [21, 22, 23, 24, 0, 0, 0]]
    assert t["position_ids"].tolist() == [[0, 1, 2, 0, 1, 2, 3], [0, 1, 2, 3, 0, 1, 2]]
    # The last token of a conversation predicts nothing, least of all the next conversation's first token.
    assert t["targets"].tolist() == [
        [12, 13, IGNORE_INDEX, IGNORE_INDEX, 23, 24, IGNORE_INDEX],
        [IGNORE_INDEX, 23, 24, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX],
    ]


def _per_token_loss(model, rows, *, restart_positions=True) -> torch.Tensor:
    tensors = collate(rows, pad_id=0)
    positions = tensors["position_ids"]
    if not restart_positions:
        positions = torch.arange(positions.size(1)).expand_as(positions)
    with torch.no_grad():
        logits = model(input_ids=tensors["input_ids"], position_ids=positions, use_cache=False).logits
    return torch.nn.functional.cross_entropy(
        logits.transpose(1, 2), tensors["targets"], ignore_index=IGNORE_INDEX, reduction="none"
    )


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_a_conversation_is_blind_to_the_one_packed_before_it(tiny_model, attention):
    model = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation=attention, dtype=torch.float32)
    model.eval()
    a, other_a = _example([5, 6, 7, 8, 9, 10], 2), _example([40, 41, 42, 43, 44, 45], 2)
    b = _example([100, 101, 102, 103, 104], 1)

    after_a = _per_token_loss(model, [[a, b]])[0, 6:]
    after_other_a = _per_token_loss(model, [[other_a, b]])[0, 6:]
    alone = _per_token_loss(model, [[b]])[0]

    torch.testing.assert_close(after_a, after_other_a, rtol=0, atol=1e-6)
    torch.testing.assert_close(after_a, alone, rtol=0, atol=1e-5)
    # The check can see a leak: with positions running on across the row, A's tokens reach B.
    leaking = _per_token_loss(model, [[a, b]], restart_positions=False)[0, 6:]
    leaking_other = _per_token_loss(model, [[other_a, b]], restart_positions=False)[0, 6:]
    assert (leaking - leaking_other).abs().max() > 1e-3


@pytest.fixture
def mixed_lengths(tmp_path):
    """24 conversations of 1 to 12 words a turn, 4 of them held out."""
    rng = random.Random(5)
    path = tmp_path / "mixed.jsonl"
    with path.open("w") as out:
        for i in range(24):
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12)))
            record = {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": text.upper()}]}
            record["split"] = "validation" if i % 6 == 0 else "train"
            out.write(json.dumps(record) + "\n")
    return path


def _run(tiny_model, data, **overrides):
    points: list[dict] = []
    settings = {"learning_rate": 3e-3, "batch_size": 8, "micro_batch_size": 4, "epochs": 2, "dropout": 0.0, "seed": 1}
    recipe = LoRATrainingRecipe(
        TrainingConfig(base_model=str(tiny_model), max_seq_length=512, **settings | overrides),
        data,
        on_metrics=points.append,
    )
    recipe.setup()
    return recipe.train(), points


def test_packed_steps_train_what_unpacked_steps_train(tiny_model, mixed_lengths):
    packed, packed_points = _run(tiny_model, mixed_lengths, packing=True)
    unpacked, unpacked_points = _run(tiny_model, mixed_lengths, packing=False)

    assert [p["step"] for p in packed_points] == [p["step"] for p in unpacked_points]
    for key in ("training_loss", "validation_loss", "grad_norm"):
        torch.testing.assert_close(
            [p[key] for p in packed_points if key in p], [p[key] for p in unpacked_points if key in p],
            rtol=0, atol=1e-4,
        )
    assert packed["trained_tokens"] == unpacked["trained_tokens"]
    # Packing did happen: each micro-batch of 4 fits one row of 512 tokens, without padding.
    assert (packed["padding_fraction"], unpacked["padding_fraction"] > 0.2) == (0.0, True)


def test_only_flash_attention_packs_a_micro_batch_into_one_row(tiny_model):
    model = AutoModelForCausalLM.from_pretrained(tiny_model, attn_implementation="sdpa")
    assert not packs_one_row_only(model)
    # Flash attention needs CUDA to load: its name in the config is what the recipe reads.
    model.config._attn_implementation = "flash_attention_2"
    assert packs_one_row_only(model)
