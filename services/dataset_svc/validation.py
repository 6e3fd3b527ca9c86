"""Validate an uploaded JSONL dataset in one streaming pass.

The file is read in chunks and split into lines here, so memory stays bounded
by the chunk size, the line cap and one tokenizer batch whatever the upload's
size. Every bad line is reported, not only the first, because users fix a
dataset once per upload and a one-error-at-a-time loop wastes their day.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from services.common.errors import InvalidArgument
from services.common.splits import MIN_CONVERSATIONS_FOR_VALIDATION, split_score
from services.common.formats import FORMATS, Conversation, Problem, detect_format, read_conversation
from services.dataset_svc.statistics import Totals, encode_batch, training_pairs

MAX_STORED_ERRORS = 100
# A tokenizer batch is flushed at whichever comes first; both bound memory.
BATCH_CONVERSATIONS = 256
BATCH_CHARACTERS = 4 << 20
_BOM = b"\xef\xbb\xbf"


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
    validation_fraction: float = 0.05,
) -> ValidationReport:
    """Validate the JSONL dataset read from ``stream`` (anything with ``.read(n) -> bytes``).

    ``tokenizer`` is the base model's fast tokenizer (offsets are needed for the
    trained-token mask). Problems with the data never raise: they are in the
    report. Raises ``InvalidArgument`` for a ``declared_format`` that is not a
    known format, and lets the tokenizer's ``ValueError`` through when it has no
    chat template.
    """
    declared_format = declared_format or None
    if declared_format not in (None, *FORMATS):
        message = f"unknown dataset format {declared_format!r}; use one of {', '.join(FORMATS)} or leave it empty"
        raise InvalidArgument(message, {"format": [message]})
    tokenizer.get_chat_template()  # fail before reading anything when there is no template
    run = _Run(tokenizer, declared_format, validation_fraction, Totals(max_seq_length))
    chunks = _chunks(stream, chunk_size)
    head = next(chunks, b"")
    diagnosis = _diagnose_head(head)
    if diagnosis:
        run.errors.add(0, diagnosis)
    else:
        _scan(run, _read_lines(_prepend(head, chunks), max_line_bytes))
    errors, counts = run.errors.result()
    return ValidationReport(
        ok=not counts,
        format=run.format,
        errors=errors,
        error_counts=counts,
        statistics=run.totals.as_dict(*run.split.validation()),
        sample_data=run.totals.samples,
    )


@dataclass(frozen=True)
class _Line:
    number: int  # 1-based
    offset: int  # byte offset of the line's first byte in the file
    data: bytes | None  # None when the line is longer than the cap


def _read_lines(chunks: Iterable[bytes], max_line_bytes: int) -> Iterator[_Line]:
    """Split chunks into lines without ever holding more than ``max_line_bytes`` of one line."""
    number, offset, length, pending = 1, 0, 0, bytearray()
    for chunk in chunks:
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            length += end - start
            if length <= max_line_bytes:
                pending += chunk[start:end]
            yield _Line(number, offset, bytes(pending) if length <= max_line_bytes else None)
            number, offset, length, start = number + 1, offset + length + 1, 0, end + 1
            pending.clear()
        length += len(chunk) - start
        if length <= max_line_bytes:
            pending += chunk[start:]
        else:
            pending.clear()  # the line is already too long: drop it and skip to the next newline
    if length:
        yield _Line(number, offset, bytes(pending) if length <= max_line_bytes else None)


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
    if head.removeprefix(_BOM).lstrip().startswith(b"["):
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
class _Run:
    tokenizer: object
    declared: str | None
    fraction: float
    totals: Totals
    detected: str | None = None
    errors: _Errors = field(default_factory=_Errors)
    split: _Split = field(init=False)
    seen_ids: dict[str, int] = field(default_factory=dict)  # conversation_id -> first line
    batch: list[tuple[int, Conversation]] = field(default_factory=list)
    batch_characters: int = 0

    def __post_init__(self) -> None:
        self.split = _Split(self.fraction)

    @property
    def format(self) -> str | None:
        return self.declared or self.detected

    def queue(self, line: int, conversation: Conversation) -> None:
        self.batch.append((line, conversation))
        self.batch_characters += sum(len(m.content) for m in conversation.messages)
        if len(self.batch) >= BATCH_CONVERSATIONS or self.batch_characters >= BATCH_CHARACTERS:
            self.flush()

    def flush(self) -> None:
        encoded, failed = encode_batch(self.batch, self.tokenizer)
        self.batch, self.batch_characters = [], 0
        for line, message in failed:
            refused = f"the chat template refused the conversation: {message}"
            self.errors.add(line, Problem("template_error", refused, "order the turns as the base model expects"))
        for item in encoded:
            if not item.trained_tokens:
                nothing = "no token of this conversation would be trained"
                hint = "check that the assistant turns have text the chat template keeps"
                self.errors.add(item.line, Problem("zero_trained_tokens", nothing, hint))
                continue
            self.totals.add(item)
            self.split.add(item.conversation)


def _scan(run: _Run, lines: Iterator[_Line]) -> None:
    any_record = False
    for line in lines:
        if line.data is None:
            hint = "shorten or split the conversation: one line holds one record"
            run.errors.add(line.number, Problem("line_too_long", "the line is longer than the line size limit", hint))
            any_record = True
            continue
        data = line.data.removesuffix(b"\r")
        skipped = 0
        if line.number == 1 and data.startswith(_BOM):
            data, skipped = data[len(_BOM) :], len(_BOM)
        if not data.strip():
            continue
        any_record = True
        # Binary and wrongly encoded files are diagnosed once: every later line
        # would repeat the same error, and the fix is to the whole file.
        if b"\0" in data:
            binary = f"line {line.number} holds NUL bytes: this is not a text file"
            run.errors.add(line.number, Problem("binary_data", binary, "upload a UTF-8 JSON Lines file"))
            break
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            at = line.offset + skipped + exc.start
            bad = f"line {line.number} is not UTF-8: byte 0x{data[exc.start]:02x} at byte offset {at}"
            hint = "re-save the file as UTF-8, e.g. iconv -f latin1 -t utf-8 in.jsonl > out.jsonl"
            run.errors.add(line.number, Problem("not_utf8", bad, hint))
            break
        _check_record(run, line.number, text)
    if run.batch:
        run.flush()
    if not any_record:
        hint = "upload a file with one JSON object per line"
        run.errors.add(0, Problem("empty_file", "the file holds no records", hint))


def _check_record(run: _Run, number: int, text: str) -> None:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        invalid = f"invalid JSON: {exc.msg} at column {exc.colno}"
        run.errors.add(number, Problem("invalid_json", invalid, "write one complete JSON object per line"))
        return
    if not isinstance(record, dict):
        not_object = f"the line is a JSON {type(record).__name__}, not an object"
        run.errors.add(number, Problem("not_an_object", not_object, "write one JSON object per line"))
        return
    found = detect_format(record)
    if run.format is None:
        run.detected = found
    expected = run.format
    if expected is None:
        unknown = "the record has none of `turns`, `messages` or `conversations`"
        run.errors.add(number, Problem("missing_field", unknown, "use one of the formats " + ", ".join(FORMATS)))
        return
    if found is not None and found != expected:
        run.errors.add(number, _mismatch(found, expected, declared=run.declared is not None))
        return
    result = read_conversation(record, expected)
    if isinstance(result, list):
        for problem in result:
            run.errors.add(number, problem)
        return
    if result.has_id:
        first = run.seen_ids.setdefault(result.key, number)
        if first != number:
            again = f"conversation_id {result.key!r} on line {number} was already used on line {first}"
            hint = "give every conversation its own conversation_id"
            run.errors.add(number, Problem("duplicate_conversation_id", again, hint))
            return
    run.queue(number, result)


def _mismatch(found: str, expected: str, *, declared: bool) -> Problem:
    if declared:
        return Problem(
            "format_mismatch",
            f"the dataset is declared {expected} but the record is {found}",
            f"declare the format {found}, or leave it empty to detect it",
        )
    return Problem(
        "format_mismatch",
        f"the record is {found} but the file's first records are {expected}",
        "use one format for the whole file",
    )
