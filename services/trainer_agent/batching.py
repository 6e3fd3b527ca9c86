"""Tokenized conversations to model inputs: rows, packed or one conversation
each, collated into tensors on the host and moved to the device.

A packed row holds several conversations one after the other. Nothing leaks
between them: position ids restart at 0 with each conversation, which is how
``transformers`` (sdpa, eager and flash attention alike) finds the segments and
confines attention to each, provided no attention mask and no KV cache are
passed; and targets are shifted per conversation, so that the first token of
one is never predicted from the last token of the one before. Padding at the
end of a row is a segment of its own, never trained.

Packing never changes what a step trains: the same conversations, in the same
order, only in fewer, fuller rows; the loss per trained token is the one of
the unpacked batch (tests/unit/test_packing.py).
"""

from __future__ import annotations

import torch

from services.trainer_agent.conversations import IGNORE_INDEX, TokenizedConversation


def rows_of(
    examples: list[TokenizedConversation], capacity: float, packed: bool
) -> list[list[TokenizedConversation]]:
    """``examples`` in rows of at most ``capacity`` tokens (``math.inf``: one
    row), or one a row unless ``packed``. Packed rows are as few as first-fit, longest first, finds, and
    as even in length as fits, since every row is padded to the longest.
    Deterministic, so that a resumed run builds the same rows."""
    if not packed:
        return [[example] for example in examples]
    longest_first = sorted(examples, key=lambda e: len(e.input_ids), reverse=True)
    fewest = _first_fit(longest_first, capacity)
    even = _balanced(longest_first, len(fewest))
    return even if max(_length(row) for row in even) <= capacity else fewest


def _first_fit(examples: list[TokenizedConversation], capacity: float) -> list[list[TokenizedConversation]]:
    rows: list[list[TokenizedConversation]] = []
    for example in examples:
        row = next((row for row in rows if _length(row) + len(example.input_ids) <= capacity), None)
        if row is None:
            rows.append([example])
        else:
            row.append(example)
    return rows


def _balanced(examples: list[TokenizedConversation], count: int) -> list[list[TokenizedConversation]]:
    # Each conversation, longest first, to the row shortest so far.
    rows: list[list[TokenizedConversation]] = [[] for _ in range(count)]
    for example in examples:
        min(rows, key=_length).append(example)
    return rows


def _length(row: list[TokenizedConversation]) -> int:
    return sum(len(e.input_ids) for e in row)


def collate(rows: list[list[TokenizedConversation]], pad_id: int) -> dict[str, torch.Tensor]:
    """Host tensors of ``rows``, right-padded to the longest row: input_ids,
    position_ids and targets (labels already shifted to the token that predicts them)."""
    width = max(sum(len(e.input_ids) for e in row) for row in rows)
    ids, positions, targets = [], [], []
    for row in rows:
        row_ids, row_positions, row_targets = [], [], []
        for example in row:
            row_ids += example.input_ids
            row_positions += range(len(example.input_ids))
            # Token t predicts label t + 1 of its own conversation; its last token predicts nothing.
            row_targets += example.labels[1:] + [IGNORE_INDEX]
        pad = width - len(row_ids)
        ids.append(row_ids + [pad_id] * pad)
        positions.append(row_positions + list(range(pad)))
        targets.append(row_targets + [IGNORE_INDEX] * pad)
    return {
        "input_ids": torch.tensor(ids, dtype=torch.long),
        "position_ids": torch.tensor(positions, dtype=torch.long),
        "targets": torch.tensor(targets, dtype=torch.long),
    }


def to_device(tensors: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """``tensors`` on ``device``; to a GPU through pinned memory, without waiting for the copy."""
    if device.type != "cuda":
        return tensors
    return {name: t.pin_memory().to(device, non_blocking=True) for name, t in tensors.items()}
