"""Records to trained tokens: the three formats, per-message masking checked
token by token against the tiny model's real tokenizer, truncation and drops."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from services.trainer_agent.conversations import (
    IGNORE_INDEX,
    InvalidRecordError,
    parse_record,
    read_training_data,
    tokenize_conversation,
)

CONVERSATION = [
    {"role": "system", "content": "Answer in capitals.", "weight": 1},
    {"role": "user", "content": "hello world", "weight": 1},
    {"role": "assistant", "content": "HELLO WORLD", "weight": 1},
    {"role": "user", "content": "one two", "weight": 1},
    {"role": "assistant", "content": "ONE TWO", "weight": 1},
]


@pytest.fixture
def tokenizer(tiny_model):
    # A fresh tokenizer per test: some tests change its chat template.
    return AutoTokenizer.from_pretrained(tiny_model)


def _pieces_to_expected(tokenizer, pieces: list[tuple[str, bool]]) -> tuple[list[int], list[int]]:
    """Ids and labels built independently of the chat template, piece by piece."""
    ids, labels = [], []
    for text, trained in pieces:
        piece = tokenizer.encode(text, add_special_tokens=False)
        ids += piece
        labels += piece if trained else [IGNORE_INDEX] * len(piece)
    return ids, labels


def _turn(role: str, content: str, trained: bool) -> list[tuple[str, bool]]:
    return [("<|im_start|>", False), (f"{role}\n", False), (content, trained), ("<|im_end|>", trained), ("\n", False)]


def test_only_assistant_tokens_are_trained_token_by_token(tokenizer):
    example = tokenize_conversation(tokenizer, CONVERSATION, max_seq_length=2048)

    pieces = [("<|begin_of_text|>", False)]
    for message in CONVERSATION:
        pieces += _turn(message["role"], message["content"], message["role"] == "assistant")
    ids, labels = _pieces_to_expected(tokenizer, pieces)
    assert example.input_ids == ids
    assert example.labels == labels
    assert not example.truncated
    trained = [i for i, label in zip(example.input_ids, example.labels) if label != IGNORE_INDEX]
    assert tokenizer.decode(trained) == "HELLO WORLD<|im_end|>ONE TWO<|im_end|>"


def test_assistant_message_with_weight_zero_is_not_trained(tokenizer):
    record = {"messages": [{k: v for k, v in m.items() if k != "weight"} for m in CONVERSATION]}
    record["messages"][2]["weight"] = 0
    example = tokenize_conversation(tokenizer, parse_record(record), max_seq_length=2048)

    trained = [i for i, label in zip(example.input_ids, example.labels) if label != IGNORE_INDEX]
    assert tokenizer.decode(trained) == "ONE TWO<|im_end|>"


def test_conversations_without_trained_tokens_are_dropped_and_counted(tokenizer, tmp_path):
    def chat(prompt: str, reply: str, weight: int = 1) -> dict:
        reply_message = {"role": "assistant", "content": reply, "weight": weight}
        return {"messages": [{"role": "user", "content": prompt}, reply_message]}

    all_weight_zero, prompt_too_long, kept = chat("hi", "HI", weight=0), chat("one two " * 40, "X"), chat("hi", "HI")
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in (all_weight_zero, prompt_too_long, kept, "not a record")) + "\n")

    data = read_training_data(path, tokenizer, max_seq_length=32)

    assert (len(data.train), len(data.validation), data.dropped, data.invalid) == (1, 0, 2, 1)
    weights_zero = [dict(m, weight=0) if m["role"] == "assistant" else m for m in CONVERSATION]
    assert tokenize_conversation(tokenizer, weights_zero, 2048).trained_tokens == 0


@pytest.mark.parametrize(
    "record",
    [
        {
            "conversation_id": "c-1",
            "turns": [
                {"role": "system", "content": "S"},
                {"role": "user", "content": "U"},
                {"role": "assistant", "content": "A"},
            ],
        },
        {
            "messages": [
                {"role": "system", "content": "S"},
                {"role": "user", "content": "U"},
                {"role": "assistant", "content": "A", "weight": 1},
            ]
        },
        {
            "conversations": [
                {"from": "system", "value": "S"},
                {"from": "human", "value": "U"},
                {"from": "gpt", "value": "A"},
            ]
        },
    ],
    ids=["brightrun_lora_v4", "openai_chat", "sharegpt"],
)
def test_each_format_parses_to_the_same_messages(record):
    assert parse_record(record) == [
        {"role": "system", "content": "S", "weight": 1},
        {"role": "user", "content": "U", "weight": 1},
        {"role": "assistant", "content": "A", "weight": 1},
    ]


def test_an_invalid_record_names_every_problem():
    with pytest.raises(InvalidRecordError) as caught:
        parse_record({"messages": [{"role": "robot", "content": "x"}, {"role": "assistant"}]})
    assert {p.code for p in caught.value.problems} == {"unknown_role", "missing_field"}


def test_truncation_drops_trailing_turns_whole(tokenizer):
    full = tokenize_conversation(tokenizer, CONVERSATION, max_seq_length=2048)
    first_exchange = tokenize_conversation(tokenizer, CONVERSATION[:3], max_seq_length=2048)
    limit = len(full.input_ids) - 1

    example = tokenize_conversation(tokenizer, CONVERSATION, max_seq_length=limit)

    assert example.truncated
    assert example.input_ids == first_exchange.input_ids
    assert example.labels == first_exchange.labels


def test_truncation_cuts_inside_the_first_reply_only_when_it_alone_is_too_long(tokenizer):
    first_exchange = tokenize_conversation(tokenizer, CONVERSATION[:3], max_seq_length=2048)
    limit = len(first_exchange.input_ids) - 3

    example = tokenize_conversation(tokenizer, CONVERSATION, max_seq_length=limit)

    assert example.truncated
    assert example.input_ids == first_exchange.input_ids[:limit]
    assert example.labels == first_exchange.labels[:limit]
    assert example.trained_tokens > 0


def test_template_without_generation_markers_trains_what_follows_the_assistant_header(tokenizer):
    tokenizer.chat_template = tokenizer.chat_template.replace("{% generation %}", "").replace("{% endgeneration %}", "")

    example = tokenize_conversation(tokenizer, CONVERSATION, max_seq_length=2048)

    trained = [i for i, label in zip(example.input_ids, example.labels) if label != IGNORE_INDEX]
    assert tokenizer.decode(trained) == "HELLO WORLD<|im_end|>\nONE TWO<|im_end|>\n"


def test_a_model_without_chat_template_gets_chatml(tokenizer):
    tokenizer.chat_template = None

    example = tokenize_conversation(tokenizer, CONVERSATION[1:3], max_seq_length=2048)

    pieces = _turn("user", "hello world", False) + _turn("assistant", "HELLO WORLD", True)
    ids, labels = _pieces_to_expected(tokenizer, pieces)
    assert (example.input_ids, example.labels) == (ids, labels)


def test_the_first_token_is_never_trained_as_nothing_comes_before_it(tokenizer):
    # A template that opens with the assistant's text, its first token included in {% generation %}.
    tokenizer.chat_template = (
        "{% for message in messages %}{% if message['role'] == 'assistant' %}"
        "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
        "{% else %}{{ '<|im_start|>' + message['content'] + '<|im_end|>' }}{% endif %}{% endfor %}"
    )

    example = tokenize_conversation(tokenizer, [{"role": "assistant", "content": "HELLO WORLD", "weight": 1}], 2048)

    assert example.labels[0] == IGNORE_INDEX
    assert example.labels[1:] == example.input_ids[1:]
    assert example.trained_tokens == len(example.input_ids) - 1
