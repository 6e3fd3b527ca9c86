"""The first half of validation: bytes to lines to records to rendered batches.

Everything here is Python work that holds the GIL (splitting lines, JSON,
checking records, the Jinja chat template), so it runs on its own thread one
batch ahead of the Rust tokenizer, which releases the GIL while it encodes.
Lines are split here from fixed-size chunks, so memory stays bounded by the
chunk size, the line cap and one batch whatever the upload's size. The line
cap also bounds the tokenizer, which encodes a conversation longer than a
batch on its own: at about 170 bytes per character (measured with a
byte-level BPE), one at the default 8 MB cap costs it over a gigabyte, while
lines up to about 1.5 MB keep the whole validator under 400 MB.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from services.common.formats import FORMATS, Conversation, Problem, detect_format, read_conversation
from services.dataset_svc.statistics import Rendered, render_batch

# A batch is cut at whichever comes first; both bound memory. The tokenizer
# needs about 170 bytes per character it encodes at once, so a batch of 1M
# characters costs it about 170 MB.
BATCH_CONVERSATIONS = 256
BATCH_CHARACTERS = 1 << 20
BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Line:
    number: int  # 1-based
    offset: int  # byte offset of the line's first byte in the file
    data: bytes | None  # None when the line is longer than the cap


def read_lines(chunks: Iterable[bytes], max_line_bytes: int) -> Iterator[Line]:
    """Split chunks into lines without ever holding more than ``max_line_bytes`` of one line."""
    number, offset, length, pending = 1, 0, 0, bytearray()
    for chunk in chunks:
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            length += end - start
            if length <= max_line_bytes:
                pending += chunk[start:end]
            yield Line(number, offset, bytes(pending) if length <= max_line_bytes else None)
            number, offset, length, start = number + 1, offset + length + 1, 0, end + 1
            pending.clear()
        length += len(chunk) - start
        if length <= max_line_bytes:
            pending += chunk[start:]
        else:
            pending.clear()  # the line is already too long: drop it and skip to the next newline
    if length:
        yield Line(number, offset, bytes(pending) if length <= max_line_bytes else None)


@dataclass
class Batch:
    """What one batch of lines produced, in the order found."""

    problems: list[tuple[int, Problem]] = field(default_factory=list)  # (line, problem)
    rendered: list[Rendered] = field(default_factory=list)
    refused: list[tuple[int, str]] = field(default_factory=list)  # (line, the chat template's error)


class SeenIds:
    """Every conversation_id seen and its first line, in about 12 bytes per id.

    A 500 MB upload can hold five million short conversations; as a dict of
    strings (or even of digests) their ids would cost 600 MB and more. Here
    an id is an 8-byte blake2b digest kept in a sorted numpy array beside its
    line; only the latest ``recent`` ids wait in a dict until they are merged
    in. Two different ids share a digest with odds of about 1 in 10^6 for
    five million ids.
    """

    def __init__(self, recent: int = 1 << 16):
        self._recent_limit = recent
        self._recent: dict[int, int] = {}  # digest -> line
        self._digests = np.empty(0, dtype=np.uint64)
        self._lines = np.empty(0, dtype=np.uint32)

    def first_use(self, conversation_id: str, line: int) -> int | None:
        """The line that used ``conversation_id`` before, or None after recording this use."""
        digest = int.from_bytes(hashlib.blake2b(conversation_id.encode("utf-8"), digest_size=8).digest(), "big")
        if (first := self._recent.get(digest)) is not None:
            return first
        # np.uint64 explicitly: a Python int this large makes numpy convert the whole array.
        at = int(self._digests.searchsorted(np.uint64(digest)))
        if at < len(self._digests) and int(self._digests[at]) == digest:
            return int(self._lines[at])
        self._recent[digest] = line
        if len(self._recent) >= self._recent_limit:
            self._merge()
        return None

    def _merge(self) -> None:
        digests = np.fromiter(self._recent, dtype=np.uint64, count=len(self._recent))
        lines = np.fromiter(self._recent.values(), dtype=np.uint32, count=len(self._recent))
        order = digests.argsort()
        digests, lines = digests[order], lines[order]
        at = self._digests.searchsorted(digests)
        self._digests = np.insert(self._digests, at, digests)
        self._lines = np.insert(self._lines, at, lines)
        self._recent.clear()


@dataclass
class Reader:
    """Reads records into batches; remembers the format and every conversation_id seen."""

    declared: str | None
    template: str
    special_tokens: dict[str, str]
    detected: str | None = None
    any_record: bool = False
    seen_ids: SeenIds = field(default_factory=SeenIds)
    _pending: list[tuple[int, Conversation]] = field(default_factory=list)
    _pending_characters: int = 0
    _batch: Batch = field(default_factory=Batch)
    _stopped: bool = False  # the rest of the file is not worth reading

    @property
    def format(self) -> str | None:
        return self.declared or self.detected

    def batches(self, lines: Iterator[Line]) -> Iterator[Batch]:
        for line in lines:
            if (conversation := self._read(line)) is not None:
                size = sum(len(m.content) for m in conversation.messages)
                # Cut before a conversation that would overflow the batch, so a
                # batch holds BATCH_CHARACTERS or one long conversation, not both.
                if self._pending and self._pending_characters + size > BATCH_CHARACTERS:
                    yield self._cut()
                self._pending.append((line.number, conversation))
                self._pending_characters += size
            if self._stopped:
                break
            if self._full():
                yield self._cut()
        yield self._cut()

    def _full(self) -> bool:
        # Problems count too: a file of bad lines must not pile them up unbounded.
        waiting = len(self._pending) + len(self._batch.problems)
        return waiting >= BATCH_CONVERSATIONS or self._pending_characters >= BATCH_CHARACTERS

    def _cut(self) -> Batch:
        batch, self._batch = self._batch, Batch()
        batch.rendered, batch.refused = render_batch(self._pending, self.template, self.special_tokens)
        self._pending, self._pending_characters = [], 0
        return batch

    def _problem(self, line: int, problem: Problem) -> None:
        self._batch.problems.append((line, problem))

    def _read(self, line: Line) -> Conversation | None:
        """Check one line: its conversation when it is valid."""
        if line.data is None:
            hint = "shorten or split the conversation: one line holds one record"
            self._problem(line.number, Problem("line_too_long", "the line is longer than the line size limit", hint))
            self.any_record = True
            return None
        data = line.data.removesuffix(b"\r")
        skipped = 0
        if line.number == 1 and data.startswith(BOM):
            data, skipped = data[len(BOM) :], len(BOM)
        if not data.strip():
            return None
        self.any_record = True
        # Binary and wrongly encoded files are diagnosed once: every later line
        # would repeat the same error, and the fix is to the whole file.
        if b"\0" in data:
            binary = f"line {line.number} holds NUL bytes: this is not a text file"
            self._problem(line.number, Problem("binary_data", binary, "upload a UTF-8 JSON Lines file"))
            self._stopped = True
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            at = line.offset + skipped + exc.start
            bad = f"line {line.number} is not UTF-8: byte 0x{data[exc.start]:02x} at byte offset {at}"
            hint = "re-save the file as UTF-8, e.g. iconv -f latin1 -t utf-8 in.jsonl > out.jsonl"
            self._problem(line.number, Problem("not_utf8", bad, hint))
            self._stopped = True
            return None
        return self._check_record(line.number, text)

    def _check_record(self, number: int, text: str) -> Conversation | None:
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            invalid = f"invalid JSON: {exc.msg} at column {exc.colno}"
            self._problem(number, Problem("invalid_json", invalid, "write one complete JSON object per line"))
            return None
        if not isinstance(record, dict):
            not_object = f"the line is a JSON {type(record).__name__}, not an object"
            self._problem(number, Problem("not_an_object", not_object, "write one JSON object per line"))
            return None
        found = detect_format(record)
        if self.format is None:
            self.detected = found
        expected = self.format
        if expected is None:
            unknown = "the record has none of `turns`, `messages` or `conversations`"
            self._problem(number, Problem("missing_field", unknown, "use one of the formats " + ", ".join(FORMATS)))
            return None
        if found is not None and found != expected:
            self._problem(number, _mismatch(found, expected, declared=self.declared is not None))
            return None
        result = read_conversation(record, expected)
        if isinstance(result, list):
            for problem in result:
                self._problem(number, problem)
            return None
        if result.has_id and (first := self.seen_ids.first_use(result.key, number)) is not None:
            again = f"conversation_id {result.key!r} on line {number} was already used on line {first}"
            hint = "give every conversation its own conversation_id"
            self._problem(number, Problem("duplicate_conversation_id", again, hint))
            return None
        return result



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
