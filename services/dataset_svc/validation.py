"""Validate an uploaded JSONL dataset in one streaming pass.

Every bad line is reported, not only the first, because users fix a dataset
once per upload and a one-error-at-a-time loop wastes their day. Reading runs
one batch ahead on a worker thread (see ``reading``) while this thread
tokenizes, so the Python work hides behind the tokenizer's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO, TypeVar

from services.common.chat_template import chat_template_of
from services.common.errors import InvalidArgument
from services.common.formats import FORMATS, Conversation, Problem
from services.common.splits import DEFAULT_VALIDATION_FRACTION, MIN_CONVERSATIONS_FOR_VALIDATION, split_score
from services.dataset_svc.reading import BOM, Batch, Reader, read_lines
from services.dataset_svc.statistics import Totals, count_tokens, training_pairs

MAX_STORED_ERRORS = 100
BINARY_SNIFF_BYTES = 1024
T = TypeVar("T")


@dataclass(frozen=True)
class ValidationReport:
    ok: bool
    format: str | None
    errors: list[dict]  # the first MAX_STORED_ERRORS by line: {line, code, error, suggestion}
    error_counts: dict[str, int]  # every error found, by code
    statistics: dict
    sample_data: list[dict]


def validate_dataset(
    stream: BinaryIO,
    tokenizer,
    *,
    declared_format: str | None = None,
    max_seq_length: int = 2048,
    max_line_bytes: int = 8 << 20,
    chunk_size: int = 1 << 20,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
) -> ValidationReport:
    """Validate the JSONL dataset read from ``stream`` (anything with ``.read(n) -> bytes``).

    ``tokenizer`` is the base model's fast tokenizer (its Rust backend and
    offsets give the trained-token counts). Problems with the data never
    raise: they are in the report. Conversations are rendered with the
    template the trainer uses (``chat_template_of``: the model's own, else
    the documented default). Raises ``InvalidArgument`` for a
    ``declared_format`` that is not a known format, and ``ValueError`` when
    the tokenizer names several chat templates and none ``default``.
    """
    declared_format = declared_format or None
    if declared_format not in (None, *FORMATS):
        message = f"unknown dataset format {declared_format!r}; use one of {', '.join(FORMATS)} or leave it empty"
        raise InvalidArgument(message, {"format": [message]})
    reader = Reader(declared_format, chat_template_of(tokenizer), dict(tokenizer.special_tokens_map))
    tally = _Tally(tokenizer.backend_tokenizer, _Split(validation_fraction), Totals(max_seq_length))
    chunks = _chunks(stream, chunk_size)
    head = next(chunks, b"")
    if diagnosis := _diagnose_head(head):
        tally.errors.add(0, diagnosis)
    else:
        for batch in _one_ahead(reader.batches(read_lines(_prepend(head, chunks), max_line_bytes))):
            tally.add(batch)
        if not reader.any_record:
            hint = "upload a file with one JSON object per line"
            tally.errors.add(0, Problem("empty_file", "the file holds no records", hint))
    errors, counts = tally.errors.result()
    return ValidationReport(
        ok=not counts,
        format=reader.format,
        errors=errors,
        error_counts=counts,
        statistics=tally.totals.as_dict(*tally.split.validation()),
        sample_data=tally.totals.samples,
    )


def _one_ahead(items: Iterator[T]) -> Iterator[T]:
    """``items``, each made on a worker thread while the caller works on the one before."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dataset-reader") as worker:
        upcoming = worker.submit(next, items, None)
        while (item := upcoming.result()) is not None:
            upcoming = worker.submit(next, items, None)
            yield item


def _chunks(stream: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    while chunk := stream.read(chunk_size):
        yield chunk


def _prepend(head: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield head
    yield from chunks


def _diagnose_head(head: bytes) -> Problem | None:
    """File-level problems visible in the first bytes, where reading lines would only add noise."""
    if head.startswith(b"\x1f\x8b") or head.startswith(b"PK\x03\x04"):
        kind = "gzip" if head.startswith(b"\x1f\x8b") else "zip"
        return Problem("compressed", f"the file is {kind}-compressed", "decompress it and upload the .jsonl file")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        hint = "re-save it as UTF-8, e.g. iconv -f utf-16 -t utf-8 in.jsonl > out.jsonl"
        return Problem("not_utf8", "the file is UTF-16 (a UTF-16 byte order mark at byte offset 0)", hint)
    # Images, archives and executables carry NUL bytes in their headers; a
    # text file with a bad line further on is reported at that line instead.
    if (nul := head.find(b"\0", 0, BINARY_SNIFF_BYTES)) >= 0:
        binary = f"the file holds binary data (a NUL byte at byte offset {nul}), not text"
        return Problem("binary_data", binary, "upload a UTF-8 JSON Lines file")
    if head.removeprefix(BOM).lstrip().startswith(b"["):
        return Problem(
            "json_array",
            "the file is one JSON array, not JSON Lines (one object per line)",
            "convert it with: jq -c '.[]' in.json > out.jsonl",
        )
    return None


@dataclass
class _Errors:
    """Counts every error; keeps the first MAX_STORED_ERRORS by line, since batches report lines late."""

    kept: list[tuple[int, int, dict]] = field(default_factory=list)  # (line, order found, error)
    counts: Counter = field(default_factory=Counter)
    found: int = 0

    def add(self, line: int, problem: Problem) -> None:
        self.counts[problem.code] += 1
        self.found += 1
        error = {"line": line, "code": problem.code, "error": problem.error, "suggestion": problem.suggestion}
        self.kept.append((line, self.found, error))
        if len(self.kept) > 2 * MAX_STORED_ERRORS:
            self.kept = sorted(self.kept)[:MAX_STORED_ERRORS]

    def result(self) -> tuple[list[dict], dict[str, int]]:
        return [e for _, _, e in sorted(self.kept)[:MAX_STORED_ERRORS]], dict(self.counts)


@dataclass
class _Split:
    """Validation pairs by explicit ``split`` fields and by hash; the explicit ones win if any record has one."""

    fraction: float
    explicit: bool = False
    explicit_pairs: int = 0
    explicit_conversations: int = 0
    hashed_pairs: int = 0
    hashed_conversations: int = 0
    conversations: int = 0
    lowest: tuple[float, int] = (1.0, 0)  # (score, pairs) of the conversation held out if none falls below

    def add(self, conversation: Conversation) -> None:
        pairs = training_pairs(conversation)
        self.conversations += 1
        if conversation.split is not None:
            self.explicit = True
            if conversation.split == "validation":
                self.explicit_pairs += pairs
                self.explicit_conversations += 1
        score = split_score(conversation.key)
        self.lowest = min(self.lowest, (score, pairs))
        if score < self.fraction:
            self.hashed_pairs += pairs
            self.hashed_conversations += 1

    def validation(self) -> tuple[int, int]:
        """(validation pairs, validation conversations)."""
        if self.explicit:
            return self.explicit_pairs, self.explicit_conversations
        enough = self.conversations >= MIN_CONVERSATIONS_FOR_VALIDATION
        if enough and not self.hashed_conversations and self.fraction > 0:
            return self.lowest[1], 1
        return self.hashed_pairs, self.hashed_conversations


@dataclass
class _Tally:
    """Tokenizes each batch and adds it up: errors, statistics, the split."""

    backend: object  # the fast tokenizer's Rust tokenizer
    split: _Split
    totals: Totals
    errors: _Errors = field(default_factory=_Errors)

    def add(self, batch: Batch) -> None:
        for line, problem in batch.problems:
            self.errors.add(line, problem)
        for line, message in batch.refused:
            refused = f"the chat template refused the conversation: {message}"
            self.errors.add(line, Problem("template_error", refused, "order the turns as the base model expects"))
        for item in count_tokens(batch.rendered, self.backend) if batch.rendered else []:
            if not item.trained_tokens:
                nothing = "no token of this conversation would be trained"
                hint = "check that the assistant turns have text the chat template keeps"
                self.errors.add(item.rendered.line, Problem("zero_trained_tokens", nothing, hint))
                continue
            self.totals.add(item)
            self.split.add(item.rendered.conversation)
