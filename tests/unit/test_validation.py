"""The dataset validator against files the tests build themselves: one per error and diagnosis,
valid files in every format checked against the tokenizer directly, and a huge line read in
bounded memory."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import tracemalloc
import zipfile

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from services.common.errors import InvalidArgument
from services.common.tiny_model import CHAT_TEMPLATE
from services.common.splits import is_validation, validation_indices
from services.dataset_svc.reading import BATCH_CHARACTERS, Reader, SeenIds, read_lines
from services.dataset_svc.statistics import histogram, percentile
from services.dataset_svc.validation import validate_dataset

BOM = b"\xef\xbb\xbf"
CONVERSATIONS = [
    [("user", "hello world"), ("assistant", "yes thanks")],
    [("system", "be a model"), ("user", "what is lora?"), ("assistant", "a low rank adapter"),
     ("user", "and the rank?"), ("assistant", "eight, or sixteen")],
    [("user", "one two three"), ("assistant", "four five six seven eight nine ten " * 20)],
    [("user", "reverse: abc"), ("assistant", "cba")],
]


@pytest.fixture(scope="module")
def tokenizer(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)


def as_record(fmt: str, turns: list[tuple[str, str]], index: int) -> dict:
    if fmt == "brightrun_lora_v4":
        return {"conversation_id": f"conv-{index}", "turns": [{"role": r, "content": c} for r, c in turns]}
    if fmt == "openai_chat":
        return {"messages": [{"role": r, "content": c} for r, c in turns]}
    sharegpt_role = {"system": "system", "user": "human", "assistant": "gpt"}
    return {"conversations": [{"from": sharegpt_role[r], "value": c} for r, c in turns]}


def jsonl(*records: object) -> bytes:
    return b"".join(json.dumps(r).encode() + b"\n" for r in records)


def good(index: int = 0) -> dict:
    return as_record("brightrun_lora_v4", CONVERSATIONS[0], index)


def check(data: bytes, tokenizer, **options):
    return validate_dataset(io.BytesIO(data), tokenizer, **options)


def assistant_runs(mask: list[int]) -> list[int]:
    """Lengths of the runs of 1s: the k-th run is the k-th assistant turn with this template."""
    runs, previous = [], 0
    for bit in mask:
        if bit and not previous:
            runs.append(0)
        if bit:
            runs[-1] += 1
        previous = bit
    return runs


def zip_bytes(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data.jsonl", data)
    return buffer.getvalue()


def with_turn(index: int, **changes) -> dict:
    record = good()
    record["turns"][index].update(changes)
    return record


BAD_FILES = {
    "invalid_json": (jsonl(good()) + b'{"turns": [\n', 2, {}),
    "not_an_object": (jsonl(good(), [good()]), 2, {}),
    "missing_field": (jsonl(good(), {"turns": good()["turns"]}), 2, {}),
    "wrong_type": (jsonl(good(0), with_turn(1, content=5)), 2, {}),
    "unknown_role": (jsonl(with_turn(0, role="bot")), 1, {}),
    "empty_content": (jsonl(good(0), good(1), with_turn(1, content="  ")), 3, {}),
    "no_assistant_turn": (jsonl({"conversation_id": "a", "turns": [{"role": "user", "content": "hi"}]}), 1, {}),
    "zero_trained_tokens": (
        jsonl({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo", "weight": 0}]}),
        1,
        {},
    ),
    "duplicate_conversation_id": (jsonl(good(7), good(8), good(7)), 3, {}),
    "line_too_long": (jsonl(good(0), {"x": "y" * 2000}, good(1)), 2, {"max_line_bytes": 1024}),
    "format_mismatch": (jsonl(good()), 1, {"declared_format": "openai_chat"}),
    "empty_file": (b"", 0, {}),
    "not_utf8": (jsonl(good()) + b'{"conversation_id": "caf\xe9"}\n', 2, {}),
    "binary_data": (jsonl(*(good(i) for i in range(20))) + b"\x00\x01\x02garbage\n", 21, {}),
    "compressed": (gzip.compress(jsonl(good())), 0, {}),
    "json_array": (json.dumps([good(0), good(1)], indent=2).encode(), 0, {}),
}


@pytest.mark.parametrize("code", sorted(BAD_FILES))
def test_each_bad_file_reports_its_code_and_line(tokenizer, code):
    data, line, options = BAD_FILES[code]
    report = check(data, tokenizer, **options)
    assert not report.ok
    assert report.error_counts == {code: 1}
    (error,) = report.errors
    assert (error["code"], error["line"]) == (code, line)
    assert error["error"] and error["suggestion"]


def test_messages_name_what_a_user_must_fix(tokenizer):
    def error_of(data: bytes, **options) -> dict:
        return check(data, tokenizer, **options).errors[0]

    assert "turns[1].content" in error_of(BAD_FILES["wrong_type"][0])["error"]
    duplicate = error_of(BAD_FILES["duplicate_conversation_id"][0])["error"]
    assert "line 1" in duplicate and "line 3" in duplicate
    assert "brightrun_lora_v4" in error_of(jsonl(good()), declared_format="openai_chat")["error"]
    offset = len(jsonl(good()) + b'{"conversation_id": "caf')
    assert f"byte offset {offset}" in error_of(jsonl(good()) + b'{"conversation_id": "caf\xe9"}\n')["error"]
    assert "jq -c '.[]'" in error_of(BAD_FILES["json_array"][0])["suggestion"]
    assert "decompress" in error_of(zip_bytes(jsonl(good())))["suggestion"]
    assert error_of(BOM + b"\n\r\n  \n")["code"] == "empty_file"
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    assert (error_of(png)["code"], error_of(png)["line"]) == ("binary_data", 0)
    assert "byte offset 8" in error_of(png)["error"]


def test_every_bad_line_is_found_and_the_stored_list_is_capped(tokenizer):
    mixed = jsonl(good(0), with_turn(1, role="bot"), good(1), {"turns": 3}) + b"nope\n"
    report = check(mixed, tokenizer)
    assert [(e["line"], e["code"]) for e in report.errors] == [
        (2, "unknown_role"), (4, "missing_field"), (4, "wrong_type"), (5, "invalid_json")
    ]
    assert report.statistics["conversations"] == 2

    report = check(b"nope\n" * 250, tokenizer)
    assert report.error_counts == {"invalid_json": 250}
    assert [e["line"] for e in report.errors] == list(range(1, 101))


def test_a_mixed_file_is_a_format_mismatch_at_the_odd_line(tokenizer):
    report = check(jsonl(good(0), as_record("sharegpt", CONVERSATIONS[0], 0)), tokenizer)
    assert report.format == "brightrun_lora_v4"
    assert [(e["line"], e["code"]) for e in report.errors] == [(2, "format_mismatch")]


@pytest.mark.parametrize("fmt", ["brightrun_lora_v4", "openai_chat", "sharegpt"])
def test_statistics_match_the_tokenizer_in_every_format(tokenizer, fmt):
    data = jsonl(*(as_record(fmt, turns, i) for i, turns in enumerate(CONVERSATIONS)))
    for declared in (None, fmt):
        report = check(data, tokenizer, declared_format=declared, max_seq_length=40)
        assert report.ok and report.format == fmt, report.errors

        encoded = [
            tokenizer.apply_chat_template(
                [{"role": r, "content": c} for r, c in turns],
                tokenize=True, return_dict=True, return_assistant_tokens_mask=True,
            )
            for turns in CONVERSATIONS
        ]
        lengths = sorted(len(e["input_ids"]) for e in encoded)
        stats = report.statistics
        assert stats["conversations"] == 4
        assert stats["total_training_pairs"] == 5
        assert stats["total_tokens"] == sum(lengths)
        assert stats["trained_tokens"] == sum(sum(e["assistant_masks"]) for e in encoded)
        assert stats["avg_turns_per_conversation"] == 2.75
        assert stats["avg_tokens_per_turn"] == round(sum(lengths) / 11, 3)
        assert (stats["p50_tokens"], stats["p90_tokens"], stats["p99_tokens"], stats["max_tokens"]) == (
            lengths[1], lengths[3], lengths[3], lengths[3]
        )
        assert stats["over_max_seq_length"] == sum(1 for n in lengths if n > 40)
        assert sum(bucket["count"] for bucket in stats["token_histogram"]) == 4


UNICODE_CONVERSATIONS = [
    [("user", "café? naïve résumé"), ("assistant", "🎉 oui — “quoted” 😀")],
    [("system", "日本語で"), ("user", "こんにちは"), ("assistant", "はい、元気です🙂"),
     ("user", "ok"), ("assistant", "Ωmega ≠ alpha")],
]


def trained_by_transformers(tokenizer, conversations) -> int:
    total = 0
    for turns in conversations:
        messages = [{"role": r, "content": c} for r, c in turns]
        encoded = tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        total += sum(encoded["assistant_masks"])
    return total


def test_trained_tokens_match_transformers_on_characters_split_into_byte_tokens(tokenizer):
    # Emoji and CJK become several byte-level tokens sharing one character's offsets.
    records = (as_record("brightrun_lora_v4", turns, i) for i, turns in enumerate(UNICODE_CONVERSATIONS))
    report = check(jsonl(*records), tokenizer)
    assert report.ok, report.errors
    assert report.statistics["trained_tokens"] == trained_by_transformers(tokenizer, UNICODE_CONVERSATIONS)


def test_spans_found_by_search_count_as_the_marked_template_would(tiny_model):
    # Marking only the content gives transformers the spans that the search finds in the unmarked template.
    marked = AutoTokenizer.from_pretrained(tiny_model)
    marked.chat_template = CHAT_TEMPLATE.replace(
        "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}",
        "{% generation %}{{ message['content'] }}{% endgeneration %}{{ '<|im_end|>' }}",
    )
    unmarked = AutoTokenizer.from_pretrained(tiny_model)
    unmarked.chat_template = marked.chat_template.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    # CONVERSATIONS[2] ends in a space, which the search leaves out (templates may trim it).
    conversations = UNICODE_CONVERSATIONS + [CONVERSATIONS[i] for i in (0, 1, 3)]
    report = check(jsonl(*(as_record("sharegpt", t, i) for i, t in enumerate(conversations))), unmarked)
    assert report.statistics["trained_tokens"] == trained_by_transformers(marked, conversations)


@pytest.mark.parametrize("after_span", ["<|im_end|>", "ed"])
def test_a_tokenizer_that_drops_whitespace_and_spans_ending_inside_a_token(tiny_model, after_span):
    # Whitespace splitting leaves the spaces in no token (char_to_token finds
    # nothing); "ed" right after "thanks" makes the BPE token "se" cross the span's end.
    words = sorted({w for turns in CONVERSATIONS for _, text in turns for w in text.split()})
    vocab = {w: i for i, w in enumerate(["[UNK]", "<|im_start|>", "<|im_end|>", "\n", *words, "ed"])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    whitespace = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    whitespace.chat_template = CHAT_TEMPLATE.replace("{{ bos_token }}", "").replace(
        "message['content'] + '<|im_end|>' }}{% endgeneration %}",
        f"message['content'] + '{after_span}' }}}}{{% endgeneration %}}",
    )
    bpe = AutoTokenizer.from_pretrained(tiny_model)
    bpe.chat_template = (
        "{% for m in messages %}{{ m['role'] + ':' }}{% if m['role'] == 'assistant' %}"
        "{% generation %}{{ m['content'] }}{% endgeneration %}{% else %}{{ m['content'] }}{% endif %}"
        f"{{{{ '{after_span}' }}}}{{% endfor %}}"
    )
    for tok in (whitespace, bpe):
        report = check(jsonl(*(as_record("openai_chat", t, i) for i, t in enumerate(CONVERSATIONS))), tok)
        assert report.ok, report.errors
        assert report.statistics["trained_tokens"] == trained_by_transformers(tok, CONVERSATIONS)


def test_the_validator_loads_its_tokenizer_without_torch(tiny_model):
    # torch would add about 280 MB to a process that never runs a model.
    code = (
        "import sys\n"
        "from services.dataset_svc.statistics import load_tokenizer\n"
        "from services.dataset_svc.validation import validate_dataset\n"
        f"tokenizer = load_tokenizer({str(tiny_model)!r})\n"
        "assert tokenizer.get_chat_template() and tokenizer.backend_tokenizer\n"
        "print('torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_weight_zero_turns_are_not_trained(tokenizer):
    turns = CONVERSATIONS[1]
    record = as_record("openai_chat", turns, 0)
    record["messages"][2]["weight"] = 0
    report = check(jsonl(record), tokenizer)
    messages = [{"role": r, "content": c} for r, c in turns]
    direct = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    assert report.statistics["total_training_pairs"] == 1
    assert report.statistics["trained_tokens"] == assistant_runs(direct["assistant_masks"])[1]


def test_samples_show_the_rendered_conversation_with_its_trained_parts(tokenizer):
    report = check(jsonl(*(as_record("sharegpt", turns, i) for i, turns in enumerate(CONVERSATIONS))), tokenizer)
    assert len(report.sample_data) == 3
    first = report.sample_data[0]
    messages = [{"role": r, "content": c} for r, c in CONVERSATIONS[0]]
    assert "".join(s["text"] for s in first["segments"]) == tokenizer.apply_chat_template(messages, tokenize=False)
    assert [s["text"] for s in first["segments"] if s["trained"]] == ["yes thanks<|im_end|>"]


def test_bom_crlf_and_blank_lines_are_accepted(tokenizer):
    lines = [json.dumps(good(i)).encode() for i in range(3)]
    data = BOM + lines[0] + b"\r\n\r\n" + lines[1] + b"\r\n   \r\n\n" + lines[2]
    report = check(data, tokenizer, chunk_size=7)
    assert report.ok, report.errors
    assert report.statistics["conversations"] == 3


class GeneratedStream:
    """head + `size` filler bytes + tail, made as it is read so that the test holds no big file either."""

    def __init__(self, head: bytes, size: int, tail: bytes):
        self.parts, self.position = [(head, len(head)), (None, size), (tail, len(tail))], 0

    def read(self, n: int) -> bytes:
        out, start = [], 0
        for data, length in self.parts:
            low, high = max(self.position, start), min(self.position + n, start + length)
            if low < high:
                out.append(b"y" * (high - low) if data is None else data[low - start : high - start])
            start += length
        self.position += sum(len(piece) for piece in out)
        return b"".join(out)


def test_a_huge_line_is_skipped_in_bounded_memory(tokenizer):
    stream = GeneratedStream(jsonl(good(0)) + b'{"x": "', 20 << 20, b'"}\n' + jsonl(good(1)))
    tracemalloc.start()
    try:
        report = validate_dataset(stream, tokenizer, max_line_bytes=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [(e["line"], e["code"]) for e in report.errors] == [(2, "line_too_long")]
    assert report.statistics["conversations"] == 2
    assert peak < 6 << 20, f"peak {peak / 2**20:.1f} MiB for a 20 MiB line"


def test_the_split_is_deterministic(tokenizer):
    key = "conv-3"
    score = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    assert is_validation(key, 0.5) == (score < 0.5)
    assert not is_validation(key, 0.0) and is_validation(key, 1.0)

    data = jsonl(*(good(i) for i in range(200)))
    first, second = check(data, tokenizer), check(data, tokenizer)
    expected = sum(is_validation(f"conv-{i}", 0.05) for i in range(200))
    assert first.statistics["total_validation_pairs"] == second.statistics["total_validation_pairs"] == expected > 0


def test_at_least_one_validation_conversation_from_twenty(tokenizer):
    def held_out(count: int) -> int:
        data = jsonl(*(good(i) for i in range(count)))
        return check(data, tokenizer, validation_fraction=1e-12).statistics["validation_conversations"]

    assert (held_out(19), held_out(20)) == (0, 1)


def test_explicit_splits_win_over_the_hash(tokenizer):
    records = [good(i) for i in range(30)]
    records[4]["split"], records[9]["split"], records[10]["split"] = "validation", "validation", "train"
    stats = check(jsonl(*records), tokenizer).statistics
    assert (stats["total_validation_pairs"], stats["validation_conversations"]) == (2, 2)
    assert check(jsonl(dict(good(), split="test")), tokenizer).errors[0]["code"] == "wrong_type"


def test_templates_without_generation_markers_and_refusing_templates(tiny_model):
    unmarked = AutoTokenizer.from_pretrained(tiny_model)
    unmarked.chat_template = CHAT_TEMPLATE.replace("{% generation %}", "").replace("{% endgeneration %}", "")
    stats = check(jsonl(good()), unmarked).statistics
    assert stats["trained_tokens"] == len(unmarked("yes thanks", add_special_tokens=False)["input_ids"])

    refusing = AutoTokenizer.from_pretrained(tiny_model)
    refusing.chat_template = "{{ raise_exception('roles must alternate') }}"
    report = check(jsonl(good()), refusing)
    assert report.error_counts == {"template_error": 1}
    assert "roles must alternate" in report.errors[0]["error"]


def test_a_template_that_drops_the_assistant_turns_trains_nothing(tiny_model):
    silent = AutoTokenizer.from_pretrained(tiny_model)
    silent.chat_template = (
        "{% for m in messages %}{% if m['role'] != 'assistant' %}{{ m['content'] }}{% endif %}{% endfor %}"
    )
    report = check(jsonl(good(0), good(1)), silent)
    assert [(e["line"], e["code"]) for e in report.errors] == [(1, "zero_trained_tokens"), (2, "zero_trained_tokens")]
    assert report.statistics["conversations"] == 0


def test_percentiles_are_nearest_rank_and_the_histogram_buckets_by_upper_bound():
    values = list(range(1, 101))
    assert [percentile(values, p) for p in (50, 90, 99, 100)] == [50, 90, 99, 100]
    assert percentile([7], 50) == 7 and percentile([], 50) == 0
    buckets = histogram([1, 32, 33, 64, 65, 32768, 32769, 10**6])
    counts = {bucket["upper_bound"]: bucket["count"] for bucket in buckets}
    assert [bucket["upper_bound"] for bucket in buckets] == [2**k for k in range(5, 16)] + [None]
    assert (counts[32], counts[64], counts[128], counts[32768], counts[None]) == (2, 2, 1, 1, 2)
    assert sum(counts.values()) == 8


def test_an_unknown_declared_format_is_a_caller_error(tokenizer):
    with pytest.raises(InvalidArgument):
        check(jsonl(good()), tokenizer, declared_format="alpaca")


@pytest.mark.parametrize("count", [19, 20, 200])
def test_the_trainers_split_holds_out_what_the_validator_counted(tokenizer, count):
    data = jsonl(*(good(i) for i in range(count)))
    report = check(data, tokenizer, validation_fraction=0.01)
    held = validation_indices(((f"conv-{i}", None) for i in range(count)), 0.01)
    assert report.statistics["validation_conversations"] == len(held)


def test_seen_ids_remember_first_lines_across_merges():
    seen = SeenIds(recent=4)
    assert [seen.first_use(f"id-{i}", i + 1) for i in range(30)] == [None] * 30
    # Ids merged into the sorted array long ago, and ones still waiting to be merged.
    assert [seen.first_use(f"id-{i}", 100 + i) for i in (0, 7, 13, 29, 28)] == [1, 8, 14, 30, 29]
    assert seen.first_use("id-30", 200) is None and seen.first_use("id-30", 201) == 200


def test_a_batch_holds_its_character_budget_or_one_long_conversation(tokenizer):
    # The tokenizer's memory grows with the characters it encodes at once.
    long = "word " * (BATCH_CHARACTERS // 8)
    records = [as_record("brightrun_lora_v4", [("user", "q"), ("assistant", long)], i) for i in range(3)] + [good(9)]
    reader = Reader(None, tokenizer.get_chat_template(), dict(tokenizer.special_tokens_map))
    batches = reader.batches(read_lines([jsonl(*records)], 8 << 20))
    assert [[item.line for item in batch.rendered] for batch in batches if batch.rendered] == [[1], [2], [3, 4]]
