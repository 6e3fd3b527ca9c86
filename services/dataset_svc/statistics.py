"""Token statistics of a dataset, counted with the base model's own tokenizer and chat template.

Conversations are rendered with the chat template and tokenized in batches:
one call of a fast tokenizer on a list of texts encodes them on Rust threads,
which is what makes validating a large upload take seconds, not minutes.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from array import array
from dataclasses import dataclass, field

from jinja2 import TemplateError
from transformers import PreTrainedTokenizerFast
from transformers.utils.chat_template_utils import render_jinja_template

from services.common.formats import Conversation
from services.common.gguf_import import pretrained_source
from services.common.steps import CONVERSATIONS, VALIDATION_CONVERSATIONS

HISTOGRAM_BOUNDS = tuple(2**k for k in range(5, 16))  # 32 .. 32768 tokens; one more bucket above
SAMPLE_COUNT = 3
SAMPLE_PREVIEW_CHARS = 4096  # a preview is for a person to read; whole conversations can be megabytes
_GENERATION_TAG = re.compile(r"\{%-?\s*generation\s*-?%\}")


@dataclass(frozen=True)
class Rendered:
    """One conversation after the chat template."""

    line: int
    conversation: Conversation
    text: str
    trained_spans: list[tuple[int, int]]  # character spans of the text that carry loss


@dataclass(frozen=True)
class Encoded:
    """One rendered conversation's token counts."""

    rendered: Rendered
    tokens: int
    trained_tokens: int


@dataclass
class Totals:
    """Running sums over the valid conversations; token counts kept as 4-byte ints for percentiles."""

    max_seq_length: int
    conversations: int = 0
    turns: int = 0
    training_pairs: int = 0
    total_tokens: int = 0
    trained_tokens: int = 0
    lengths: array = field(default_factory=lambda: array("I"))
    samples: list[dict] = field(default_factory=list)

    def add(self, item: Encoded) -> None:
        self.conversations += 1
        self.turns += len(item.rendered.conversation.messages)
        self.training_pairs += training_pairs(item.rendered.conversation)
        self.total_tokens += item.tokens
        self.trained_tokens += item.trained_tokens
        self.lengths.append(item.tokens)
        if len(self.samples) < SAMPLE_COUNT:
            self.samples.append(sample(item))

    def as_dict(self, validation_pairs: int, validation_conversations: int) -> dict:
        lengths = sorted(self.lengths)
        return {
            CONVERSATIONS: self.conversations,
            "total_training_pairs": self.training_pairs,
            "total_validation_pairs": validation_pairs,
            VALIDATION_CONVERSATIONS: validation_conversations,
            "total_tokens": self.total_tokens,
            "trained_tokens": self.trained_tokens,
            "avg_turns_per_conversation": round(self.turns / self.conversations, 3) if self.conversations else 0.0,
            "avg_tokens_per_turn": round(self.total_tokens / self.turns, 3) if self.turns else 0.0,
            "p50_tokens": percentile(lengths, 50),
            "p90_tokens": percentile(lengths, 90),
            "p99_tokens": percentile(lengths, 99),
            "max_tokens": lengths[-1] if lengths else 0,
            "max_seq_length": self.max_seq_length,
            "over_max_seq_length": sum(1 for n in lengths if n > self.max_seq_length),
            "token_histogram": histogram(lengths),
        }


def load_tokenizer(base_model: str) -> PreTrainedTokenizerFast:
    """The base model's fast tokenizer and chat template, from its ``tokenizer.json``
    (or, for a GGUF file, from the file: transformers imports torch for that one).

    Not ``AutoTokenizer``: resolving the class imports model configurations,
    which import torch, and torch alone adds about 280 MB to the validator's
    memory. Raises what ``from_pretrained`` raises for a model it cannot load.
    """
    source, options = pretrained_source(base_model)
    return PreTrainedTokenizerFast.from_pretrained(source, **options)


def training_pairs(conversation: Conversation) -> int:
    return sum(1 for m in conversation.messages if m.role == "assistant" and m.weight)


def percentile(sorted_values: list[int], p: int) -> int:
    """Nearest-rank percentile: always a length some conversation really has."""
    if not sorted_values:
        return 0
    rank = -(-p * len(sorted_values) // 100)  # ceil without floats
    return sorted_values[max(rank, 1) - 1]


def histogram(sorted_values: list[int]) -> list[dict]:
    """Conversations per token-length bucket; ``upper_bound`` None is the bucket above the last bound."""
    counts = [0] * (len(HISTOGRAM_BOUNDS) + 1)
    bucket = 0
    for n in sorted_values:
        while bucket < len(HISTOGRAM_BOUNDS) and n > HISTOGRAM_BOUNDS[bucket]:
            bucket += 1
        counts[bucket] += 1
    return [{"upper_bound": b, "count": c} for b, c in zip((*HISTOGRAM_BOUNDS, None), counts)]


def render_batch(
    batch: list[tuple[int, Conversation]], template: str, special_tokens: dict[str, str]
) -> tuple[list[Rendered], list[tuple[int, str]]]:
    """Apply the chat template; returns the rendered conversations and (line, template error) pairs."""
    rendered, failed = [], []
    for line, conversation in batch:
        try:
            text, spans = _render(conversation, template, special_tokens)
        except TemplateError as exc:
            # Templates may refuse a conversation (e.g. roles that do not
            # alternate); that is the data's problem, not ours.
            failed.append((line, str(exc)))
            continue
        rendered.append(Rendered(line, conversation, text, spans))
    return rendered, failed


def count_tokens(rendered: list[Rendered], backend) -> list[Encoded]:
    """Tokenize a batch with the fast tokenizer's Rust ``backend`` (which encodes on every core).

    The Rust encodings are used directly: transformers' wrapper would turn
    every token's ids and offsets into Python objects, which cost as much as
    the tokenization itself.
    """
    encodings = backend.encode_batch([item.text for item in rendered], add_special_tokens=False)
    return [
        Encoded(item, len(encoding), _trained_token_count(encoding, item))
        for item, encoding in zip(rendered, encodings)
    ]


def _render(
    conversation: Conversation, template: str, special_tokens: dict[str, str]
) -> tuple[str, list[tuple[int, int]]]:
    messages = [{"role": m.role, "content": m.content} for m in conversation.messages]
    marked = bool(_GENERATION_TAG.search(template))
    texts, generation = render_jinja_template(
        conversations=[messages],
        chat_template=template,
        return_assistant_tokens_mask=marked,
        **special_tokens,
    )
    text = texts[0]
    assistants = [m for m in conversation.messages if m.role == "assistant"]
    if marked and len(generation[0]) == len(assistants):
        return text, [tuple(span) for span, m in zip(generation[0], assistants) if m.weight]
    return text, _spans_by_search(text, conversation)


def _spans_by_search(text: str, conversation: Conversation) -> list[tuple[int, int]]:
    """Trained spans of a template without one ``{% generation %}`` block per assistant turn.

    Templates render messages in order and keep their text (some trim it), so
    searching forward from the previous message finds each assistant reply.
    """
    spans, position = [], 0
    for message in conversation.messages:
        content = message.content.strip()
        found = text.find(content, position)
        if found < 0:
            continue
        position = found + len(content)
        if message.role == "assistant" and message.weight:
            spans.append((found, position))
    return spans


def _trained_token_count(encoding, item: Rendered) -> int:
    """Tokens that overlap a trained span, counted as transformers' assistant mask counts them.

    ``char_to_token`` finds each span's first and last token inside Rust, so
    no per-token Python object is made. A tokenizer whose tokens leave some
    characters out (trimmed offsets, whitespace splitting) has no token for
    them; those encodings are counted from their offsets instead.
    """
    count, covered = 0, 0
    for start, end in item.trained_spans:
        first = encoding.char_to_token(start)
        after = len(encoding) if end >= len(item.text) else _first_token_at_or_after(encoding, end)
        if first is None or after is None:
            return _trained_token_count_by_offsets(encoding.offsets, item.trained_spans)
        first = max(first, covered)  # a token shared by two spans counts once
        if after > first:
            count, covered = count + after - first, after
    return count


def _first_token_at_or_after(encoding, char: int) -> int | None:
    token = encoding.char_to_token(char)
    if token is None:
        return None
    # The token holding ``char`` may start before it, inside the span: then it overlaps the span.
    return token + 1 if encoding.token_to_chars(token)[0] < char else token


def _trained_token_count_by_offsets(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> int:
    # Offsets and spans are both in order, so binary search finds each span's tokens.
    starts = [start for start, _ in offsets]
    ends = [end for _, end in offsets]
    count, covered = 0, 0
    for span_start, span_end in spans:
        first = max(bisect_right(ends, span_start), covered)
        last = bisect_left(starts, span_end)
        if last > first:
            count, covered = count + last - first, last
    return count


def sample(item: Encoded) -> dict:
    """A preview of one conversation as rendered, cut into trained and untrained segments."""
    rendered = item.rendered
    limit = min(len(rendered.text), SAMPLE_PREVIEW_CHARS)
    segments, cursor = [], 0
    for start, end in rendered.trained_spans:
        if start >= limit:
            break
        if start > cursor:
            segments.append({"text": rendered.text[cursor:start], "trained": False})
        segments.append({"text": rendered.text[start : min(end, limit)], "trained": True})
        cursor = min(end, limit)
    if cursor < limit:
        segments.append({"text": rendered.text[cursor:limit], "trained": False})
    return {
        "line": rendered.line,
        "conversation_id": rendered.conversation.key if rendered.conversation.has_id else None,
        "tokens": item.tokens,
        "trained_tokens": item.trained_tokens,
        "segments": segments,
        "truncated": limit < len(rendered.text),
    }
