"""Dataset records to training examples: a conversation rendered with the base
model's chat template, labelled only on the assistant tokens the user asked
to train.

Token positions are mapped to messages by rendering the conversation prefix
by prefix: message k owns the tokens between the end of the render of the
first k messages and the end of the render of the first k + 1. Within an
assistant message the trained tokens are those the template marks with
``{% generation %}`` (exact, via ``return_assistant_tokens_mask``); a
template without those markers trains everything after the assistant header
(the render with ``add_generation_prompt``) up to the message's end. A model
without any chat template gets the documented default
(``services.common.chat_template``), as the dataset validator does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from services.common.chat_template import chat_template_of
from services.common.formats import Conversation, Problem, detect_format, read_conversation
from services.common.splits import validation_indices

IGNORE_INDEX = -100

_GENERATION_MARKER = re.compile(r"\{%-?\s*generation\s*-?%\}")
# Problems that mean a record is well formed but has nothing to learn from.
_NOTHING_TO_TRAIN = frozenset({"no_assistant_turn", "zero_trained_tokens"})


class InvalidRecordError(ValueError):
    """A dataset record that cannot be read as a conversation; ``problems`` lists why."""

    def __init__(self, problems: list[Problem]):
        super().__init__("; ".join(p.error for p in problems))
        self.problems = problems

    @property
    def nothing_to_train(self) -> bool:
        """True when the record is well formed but no assistant message would be trained."""
        return all(p.code in _NOTHING_TO_TRAIN for p in self.problems)


class TemplateError(ValueError):
    """The chat template cannot tell trained tokens from the rest: it renders a
    conversation differently from the sum of its prefixes, or it has no
    ``{% generation %}`` markers and the conversation opens with the assistant."""


class TokenizedConversation(NamedTuple):
    input_ids: list[int]
    labels: list[int]  # IGNORE_INDEX where the token is not trained
    truncated: bool

    @property
    def trained_tokens(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


@dataclass
class TrainingData:
    train: list[TokenizedConversation] = field(default_factory=list)
    validation: list[TokenizedConversation] = field(default_factory=list)
    # The messages ({role, content}) of each validation example, in the same order: what smoke samples ask.
    validation_messages: list[list[dict]] = field(default_factory=list)
    dropped: int = 0  # conversations with no trained token (after truncation)
    truncated: int = 0  # kept conversations cut to max_seq_length
    invalid: int = 0  # lines that are not a readable conversation


def read_training_data(
    path: Path, tokenizer, max_seq_length: int, dataset_format: str = "", validation_fraction: float = 0.0
) -> TrainingData:
    """Read a JSONL dataset line by line into tokenized train and validation splits.

    The split is the one the dataset validator computed (services.common.splits),
    over the same conversations: every readable one, trained tokens or not.
    Unreadable lines are counted, not fatal: the validator has already told the
    user about them. Raises OSError when the file cannot be read and
    TemplateError when the chat template cannot be trained with.
    """
    data = TrainingData()
    readable: list[tuple[Conversation, TokenizedConversation]] = []
    with Path(path).open(encoding="utf-8-sig") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                conversation = read_record(json.loads(line), dataset_format)
            except json.JSONDecodeError:
                data.invalid += 1
                continue
            except InvalidRecordError as exc:
                data.dropped += exc.nothing_to_train
                data.invalid += not exc.nothing_to_train
                continue
            example = tokenize_conversation(tokenizer, _messages(conversation), max_seq_length)
            readable.append((conversation, example))
    held = validation_indices(((c.key, c.split) for c, _ in readable), validation_fraction)
    for i, (conversation, example) in enumerate(readable):
        if example.trained_tokens == 0:
            data.dropped += 1
            continue
        data.truncated += example.truncated
        (data.validation if i in held else data.train).append(example)
        if i in held:
            data.validation_messages.append([{"role": m.role, "content": m.content} for m in conversation.messages])
    return data


def read_record(record: object, dataset_format: str = "") -> Conversation:
    """One decoded JSONL record in any of the three formats (detected when
    ``dataset_format`` is empty) as a Conversation.

    Raises InvalidRecordError listing every problem of the record.
    """
    if not isinstance(record, dict):
        hint = "write one JSON object a line"
        raise InvalidRecordError([Problem("wrong_type", "the record is not a JSON object", hint)])
    fmt = dataset_format or detect_format(record)
    if not fmt:
        hint = "give the record `turns`, `messages` or `conversations`"
        raise InvalidRecordError([Problem("unknown_format", "the record is not a conversation", hint)])
    parsed = read_conversation(record, fmt)
    if isinstance(parsed, list):
        raise InvalidRecordError(parsed)
    return parsed


def parse_record(record: object, dataset_format: str = "") -> list[dict]:
    """The record's messages as ``[{role, content, weight}]``, roles being system, user or assistant.

    Raises InvalidRecordError listing every problem of the record.
    """
    return _messages(read_record(record, dataset_format))


def tokenize_conversation(tokenizer, messages: list[dict], max_seq_length: int) -> TokenizedConversation:
    """Token ids and labels of ``messages``, at most ``max_seq_length`` tokens.

    Labels are IGNORE_INDEX on every token of system and user messages, of the
    template's headers, of assistant messages with weight 0, and on the first
    token, which no token precedes to predict it from. A conversation
    that is too long loses its trailing messages, so that it ends after the last
    trained assistant message that fits; only when not even the first one fits
    is it cut inside that message.

    Raises TemplateError when the chat template cannot be mapped to messages.
    """
    template = chat_template_of(tokenizer)
    chat = [{"role": m["role"], "content": m["content"]} for m in messages]
    marked = _GENERATION_MARKER.search(template) is not None
    rendered = tokenizer.apply_chat_template(
        chat, chat_template=template, tokenize=True, return_dict=True, return_assistant_tokens_mask=marked
    )
    ids = list(rendered["input_ids"])
    everything_trained = all(m.get("weight", 1) for m in messages if m["role"] == "assistant")
    if marked and everything_trained and len(ids) <= max_seq_length:
        # The common case needs no message boundaries: one render, not one per message.
        labels = [i if m else IGNORE_INDEX for i, m in zip(ids, rendered["assistant_masks"])]
        return TokenizedConversation(ids, _first_untrained(labels), truncated=False)
    ends = [_prefix_length(tokenizer, template, chat[:k], ids) for k in range(1, len(chat))] + [len(ids)]
    starts = [0] + ends[:-1]
    labels = [IGNORE_INDEX] * len(ids)
    for k, message in enumerate(messages):
        if message["role"] != "assistant" or not message.get("weight", 1):
            continue
        if marked:
            trained = [i for i in range(starts[k], ends[k]) if rendered["assistant_masks"][i]]
        elif k == 0:
            raise TemplateError(
                "a conversation that opens with an assistant message needs a chat template with "
                "{% generation %} markers, to tell the assistant header from its text"
            )
        else:
            trained = range(_prefix_length(tokenizer, template, chat[:k], ids, add_generation_prompt=True), ends[k])
        for i in trained:
            labels[i] = ids[i]
    return _truncate(ids, _first_untrained(labels), list(zip(starts, ends)), max_seq_length)


def prompt_ids(tokenizer, messages: list[dict]) -> list[int]:
    """The tokens a model continues to answer ``messages`` (role and content):
    rendered with the template training renders with, then the assistant header."""
    chat = [{"role": m["role"], "content": m["content"]} for m in messages]
    return list(
        tokenizer.apply_chat_template(
            chat, chat_template=chat_template_of(tokenizer), tokenize=True, return_dict=False,
            add_generation_prompt=True,
        )
    )


def _first_untrained(labels: list[int]) -> list[int]:
    # Counted as trained, it would be a token the loss never sees: the loss per
    # trained token would be diluted, and an example could train nothing at all.
    return [IGNORE_INDEX, *labels[1:]]


def _messages(conversation: Conversation) -> list[dict]:
    return [{"role": m.role, "content": m.content, "weight": m.weight} for m in conversation.messages]


def _prefix_length(
    tokenizer, template: str, prefix: list[dict], ids: list[int], add_generation_prompt: bool = False
) -> int:
    prefix_ids = tokenizer.apply_chat_template(
        prefix, chat_template=template, tokenize=True, return_dict=False, add_generation_prompt=add_generation_prompt
    )
    if list(prefix_ids) != ids[: len(prefix_ids)]:
        raise TemplateError(
            "the chat template renders the first messages of a conversation differently on their own, "
            "so the trained tokens cannot be found; give the model a template with {% generation %} markers "
            "that renders each message independently"
        )
    return len(prefix_ids)


def _truncate(
    ids: list[int], labels: list[int], spans: list[tuple[int, int]], limit: int
) -> TokenizedConversation:
    if len(ids) <= limit:
        return TokenizedConversation(ids, labels, truncated=False)
    # Whole messages when possible: a model learns nothing useful from half a
    # reply, and a trailing prompt without its reply is only wasted compute.
    fitting = [end for start, end in spans if end <= limit and any(l != IGNORE_INDEX for l in labels[start:end])]
    cut = max(fitting, default=limit)
    return TokenizedConversation(ids[:cut], labels[:cut], truncated=True)
