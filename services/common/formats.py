"""The three record formats a dataset line may use, read into one conversation shape.

Each reader checks one decoded JSON object and returns either a
``Conversation`` or every problem it found in that record, so that one upload
tells the user about all of a record's mistakes at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

BRIGHTRUN = "brightrun_lora_v4"
OPENAI_CHAT = "openai_chat"
SHAREGPT = "sharegpt"
FORMATS = (BRIGHTRUN, OPENAI_CHAT, SHAREGPT)

# The key that holds the messages identifies the format: the three never share it.
_MESSAGES_KEY = {BRIGHTRUN: "turns", OPENAI_CHAT: "messages", SHAREGPT: "conversations"}
_ROLE_KEY = {BRIGHTRUN: "role", OPENAI_CHAT: "role", SHAREGPT: "from"}
_CONTENT_KEY = {BRIGHTRUN: "content", OPENAI_CHAT: "content", SHAREGPT: "value"}
_ROLES = {
    BRIGHTRUN: {"system": "system", "user": "user", "assistant": "assistant"},
    OPENAI_CHAT: {"system": "system", "user": "user", "assistant": "assistant"},
    SHAREGPT: {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"},
}
SPLITS = ("train", "validation")


@dataclass(frozen=True)
class Message:
    role: str  # always system, user or assistant, whatever the format called it
    content: str
    weight: int  # 0 excludes an assistant message from the loss


@dataclass(frozen=True)
class Conversation:
    key: str  # conversation_id, or the canonical JSON of a record that has none
    messages: tuple[Message, ...]
    split: str | None  # the split the record asked for, None when it left it to the hash
    has_id: bool


@dataclass(frozen=True)
class Problem:
    code: str
    error: str
    suggestion: str


def detect_format(record: dict) -> str | None:
    """The format whose messages key the record carries, or None."""
    for name, key in _MESSAGES_KEY.items():
        if key in record:
            return name
    return None


def read_conversation(record: dict, fmt: str) -> Conversation | list[Problem]:
    """Read ``record`` as format ``fmt``; a list of problems when it is not valid."""
    problems: list[Problem] = []
    key, has_id = _conversation_key(record, fmt, problems)
    split = _split(record, problems)
    messages = _messages(record, fmt, problems)
    if messages and not any(m.role == "assistant" for m in messages):
        hint = "add at least one assistant reply to learn from"
        problems.append(Problem("no_assistant_turn", "the conversation has no assistant turn", hint))
    elif messages and not any(m.role == "assistant" and m.weight for m in messages):
        problems.append(
            Problem(
                "zero_trained_tokens",
                "every assistant turn has weight 0, so nothing would be trained",
                "set weight 1 on at least one assistant message, or drop the record",
            )
        )
    if problems or messages is None:
        return problems
    return Conversation(key=key, messages=tuple(messages), split=split, has_id=has_id)


def _conversation_key(record: dict, fmt: str, problems: list[Problem]) -> tuple[str, bool]:
    if fmt != BRIGHTRUN:
        # Without an id the record itself names the conversation, so the same
        # record always lands in the same split.
        return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False), False
    if "conversation_id" not in record:
        problems.append(_missing("conversation_id", "give every record a unique string conversation_id"))
    elif not isinstance(record["conversation_id"], str) or not record["conversation_id"]:
        problems.append(_wrong_type("conversation_id", "a non-empty string", record["conversation_id"]))
    else:
        return record["conversation_id"], True
    return "", True


def _split(record: dict, problems: list[Problem]) -> str | None:
    split = record.get("split")
    if split is None or split in SPLITS:
        return split
    problems.append(_wrong_type("split", '"train" or "validation"', split))
    return None


def _messages(record: dict, fmt: str, problems: list[Problem]) -> list[Message] | None:
    list_key = _MESSAGES_KEY[fmt]
    if list_key not in record:
        problems.append(_missing(list_key, f"a {fmt} record holds its messages in `{list_key}`"))
        return None
    items = record[list_key]
    if not isinstance(items, list):
        problems.append(_wrong_type(list_key, "a list of messages", items))
        return None
    if not items:
        problems.append(Problem("empty_content", f"`{list_key}` is empty", "add the conversation's messages"))
        return None
    messages = [_message(item, f"{list_key}[{i}]", fmt, problems) for i, item in enumerate(items)]
    return None if None in messages else messages


def _message(item: object, path: str, fmt: str, problems: list[Problem]) -> Message | None:
    if not isinstance(item, dict):
        problems.append(_wrong_type(path, "an object", item))
        return None
    role_key, content_key = _ROLE_KEY[fmt], _CONTENT_KEY[fmt]
    found = len(problems)
    role = item.get(role_key)
    if role_key not in item:
        problems.append(_missing(f"{path}.{role_key}", f"say who speaks: one of {', '.join(_ROLES[fmt])}"))
    elif not isinstance(role, str):
        problems.append(_wrong_type(f"{path}.{role_key}", "a string", role))
    elif role not in _ROLES[fmt]:
        problems.append(
            Problem(
                "unknown_role",
                f"{path}.{role_key} is {role!r}, not one of {', '.join(_ROLES[fmt])}",
                f"use one of {', '.join(_ROLES[fmt])}",
            )
        )
    content = item.get(content_key)
    if content_key not in item:
        problems.append(_missing(f"{path}.{content_key}", "give every message its text"))
    elif not isinstance(content, str):
        problems.append(_wrong_type(f"{path}.{content_key}", "a string", content))
    elif not content.strip():
        hint = "remove the message or give it text"
        problems.append(Problem("empty_content", f"{path}.{content_key} is empty", hint))
    weight = item.get("weight", 1)
    # bool is an int in Python, but `true` in the file is a mistake worth naming.
    if fmt == OPENAI_CHAT and (isinstance(weight, bool) or weight not in (0, 1)):
        problems.append(_wrong_type(f"{path}.weight", "0 or 1", weight))
    if len(problems) > found:
        return None
    return Message(role=_ROLES[fmt][role], content=content, weight=int(weight) if fmt == OPENAI_CHAT else 1)


def _missing(path: str, suggestion: str) -> Problem:
    return Problem("missing_field", f"missing field `{path}`", suggestion)


def _wrong_type(path: str, expected: str, value: object) -> Problem:
    shown = json.dumps(value, ensure_ascii=False)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return Problem("wrong_type", f"`{path}` must be {expected}, got {shown}", f"make `{path}` {expected}")
