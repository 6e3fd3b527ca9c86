"""The rules of a Generate request, in one place: how many prompts, how long,
how many tokens, what temperature. Pure: no I/O. Fields are named as the HTTP
body names them (``prompts[2]``, ``conversations[0][1].role``), since that is
what the caller wrote. artifact_svc checks them; the gateway only documents them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from brightrun.artifact.v1 import artifact_pb2

from services.common.errors import field_errors

MAX_ITEMS = 8
MAX_PROMPT_CHARACTERS = 4000
MAX_NEW_TOKENS = 512
DEFAULT_MAX_NEW_TOKENS = 128
MAX_TEMPERATURE = 2.0
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Sampling:
    """A checked request: conversations to answer (a prompt is one user message), and how."""

    conversations: list[list[dict]]
    max_new_tokens: int
    temperature: float
    seed: int | None
    include_base: bool


def read_request(request: artifact_pb2.GenerateRequest) -> Sampling:
    """The request as a Sampling; raises InvalidArgument naming every bad field and how to fix it."""
    problems: dict[str, list[str]] = {}
    if request.prompts and request.conversations:
        problems["prompts"] = ["Send either prompts or conversations, not both"]
    elif not request.prompts and not request.conversations:
        problems["prompts"] = ['Send prompts (a list of strings) or conversations (a list of [{"role", "content"}] lists)']
    name = "prompts" if request.prompts else "conversations"
    items = len(request.prompts) or len(request.conversations)
    if items > MAX_ITEMS:
        problems.setdefault(name, []).append(f"At most {MAX_ITEMS} items a request, not {items}; send the rest in another")
    conversations = [[{"role": "user", "content": p}] for p in request.prompts]
    for i, prompt in enumerate(request.prompts):
        problems[f"prompts[{i}]"] = _text_problems(prompt)
    for i, conversation in enumerate(request.conversations):
        messages = [{"role": m.role, "content": m.content} for m in conversation.messages]
        conversations.append(messages)
        problems[f"conversations[{i}]"] = _conversation_problems(messages)
        for j, message in enumerate(messages):
            if message["role"] not in ROLES:
                problems[f"conversations[{i}][{j}].role"] = [f"Must be one of: {', '.join(ROLES)}"]
    max_new_tokens = request.max_new_tokens if request.HasField("max_new_tokens") else DEFAULT_MAX_NEW_TOKENS
    if not 1 <= max_new_tokens <= MAX_NEW_TOKENS:
        problems["max_new_tokens"] = [f"Must be from 1 to {MAX_NEW_TOKENS}, not {max_new_tokens}"]
    temperature = request.temperature if request.HasField("temperature") else 0.0
    if not (math.isfinite(temperature) and 0.0 <= temperature <= MAX_TEMPERATURE):
        problems["temperature"] = [f"Must be from 0 (greedy) to {MAX_TEMPERATURE:g}, not {temperature:g}"]
    if request.HasField("seed") and request.seed < 0:
        problems["seed"] = ["Must be 0 or above"]
    field_errors(problems)
    return Sampling(
        conversations=conversations,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        seed=request.seed if request.HasField("seed") else None,
        include_base=request.include_base,
    )


def _text_problems(text: str) -> list[str]:
    if not text.strip():
        return ["Must not be empty"]
    if len(text) > MAX_PROMPT_CHARACTERS:
        return [f"At most {MAX_PROMPT_CHARACTERS} characters, not {len(text)}; shorten it"]
    return []


def _conversation_problems(messages: list[dict]) -> list[str]:
    if not messages:
        return ['Must hold at least one message, e.g. [{"role": "user", "content": "..."}]']
    problems = []
    if messages[-1]["role"] != "user":
        problems.append("Must end with a user message: the model answers it")
    characters = sum(len(m["content"]) for m in messages)
    if characters > MAX_PROMPT_CHARACTERS:
        problems.append(f"At most {MAX_PROMPT_CHARACTERS} characters of content in all, not {characters}; shorten it")
    if not any(m["content"].strip() for m in messages):
        problems.append("Must not be empty")
    return problems


def shown_prompt(messages: list[dict]) -> str:
    """What a result shows as its prompt: the last user message."""
    return next(m["content"] for m in reversed(messages) if m["role"] == "user")
