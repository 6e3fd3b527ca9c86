"""The deterministic train/validation split, shared by the dataset validator
(which counts it) and the trainer (which uses it), so both hold out exactly
the same conversations.

A conversation is held out when its record says ``"split": "validation"``;
when no record of the dataset names a split, when the sha256 of its key falls
below the fraction; and a dataset of at least MIN_CONVERSATIONS_FOR_VALIDATION
conversations with none below it holds out its lowest-scoring one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

DEFAULT_VALIDATION_FRACTION = 0.05
MIN_CONVERSATIONS_FOR_VALIDATION = 20


def split_score(conversation_key: str) -> float:
    """Where a conversation falls in [0, 1): the first 8 bytes of sha256 of its key."""
    digest = hashlib.sha256(conversation_key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_validation(conversation_key: str, fraction: float) -> bool:
    """The hash rule alone (see the module docstring for the whole rule)."""
    return split_score(conversation_key) < fraction


def validation_indices(conversations: Iterable[tuple[str, str | None]], fraction: float) -> set[int]:
    """Indices of the held-out conversations, given each one's (key, explicit split or None)."""
    items = list(conversations)
    if any(split is not None for _, split in items):
        return {i for i, (_, split) in enumerate(items) if split == "validation"}
    held = {i for i, (key, _) in enumerate(items) if is_validation(key, fraction)}
    if not held and fraction > 0 and len(items) >= MIN_CONVERSATIONS_FOR_VALIDATION:
        held = {min(range(len(items)), key=lambda i: split_score(items[i][0]))}
    return held
