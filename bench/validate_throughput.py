"""Dataset validation throughput: ``validate_dataset`` beside the naive baseline
the spec describes and the tokenizer-only ceiling, on one generated file,
measured in one run. Each method runs in its own process so that peak RSS is
its own.

    python bench/validate_throughput.py               # 500 MB, the issue's size
    python bench/validate_throughput.py --size-mb 20  # a quick look

MB/s is always the JSONL file's size over the method's time, so the share of
the ceiling is the ratio of times: what validation costs beyond the tokenizer.
The ceiling times only the fast tokenizer's batch encode of the texts the chat
template renders; rendering is done beforehand, outside the timed region.
CPU s is the CPU time of all the method's threads: on a machine shared with
other work it moves less than wall time does. ``--repeat N`` runs the three
methods N times in turn and keeps each one's fastest run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_SHARE = 0.80
TARGET_SECONDS_500MB = 120.0
TARGET_PEAK_MB = 400.0
WORDS = (
    "the a an of to in is it that for on with as was be by this are or from at have not but what all "
    "model data train learn loss token adapter rank alpha user assistant system question answer hello "
    "world how do you make reverse upper lower number please thanks yes no because platform dataset job "
    "gpu cost fine tune lora weight layer attention python code function return value list string error "
    "customer order refund shipping address invoice account password reset email support ticket Monday "
    "Paris London 2024 42 3.14 100% (see above) e.g. i.e. don't can't it's naïve café résumé — “quoted”"
).split()


def write_dataset(path: Path, size_bytes: int, seed: int = 0) -> int:
    """Write brightrun_lora_v4 conversations until the file reaches ``size_bytes``; returns their count.

    Written line by line so a 500 MB file never sits in memory. Turn lengths are
    log-normal (most short, a long tail) and turn counts vary, as in real uploads.
    """
    rng = random.Random(seed)

    def text() -> str:
        words = rng.choices(WORDS, k=min(int(rng.lognormvariate(3.6, 1.0)) + 1, 3000))
        return " ".join(words) + rng.choice([".", "?", "!", "\n\n```python\nprint('ok')\n```"])

    written = count = 0
    with path.open("wb") as out:
        while written < size_bytes:
            turns = [{"role": "system", "content": text()}] if rng.random() < 0.3 else []
            for _ in range(min(int(rng.expovariate(0.5)) + 1, 8)):
                turns += [{"role": "user", "content": text()}, {"role": "assistant", "content": text()}]
            record = {"conversation_id": f"c{count}", "turns": turns}
            written += out.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
            count += 1
    return count


def render_texts(data: Path, model_dir: Path, out: Path) -> None:
    """Render every conversation with the chat template, one JSON string a line, for the ceiling."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with data.open(encoding="utf-8") as src, out.open("w", encoding="utf-8") as dst:
        for line in src:
            text = tokenizer.apply_chat_template(json.loads(line)["turns"], tokenize=False)
            dst.write(json.dumps(text) + "\n")


def run_validator(args) -> dict:
    from services.dataset_svc.statistics import load_tokenizer
    from services.dataset_svc.validation import validate_dataset

    tokenizer = load_tokenizer(str(args.model_dir))
    with args.data.open("rb") as stream:
        started, cpu = time.perf_counter(), time.process_time()
        report = validate_dataset(stream, tokenizer)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if not report.ok:
        raise RuntimeError(f"the generated dataset did not validate: {report.error_counts}")
    return {"elapsed": elapsed, "cpu": cpu, "conversations": report.statistics["conversations"]}


def run_naive(args) -> dict:
    # The spec's approach: the whole file in memory, words x 1.3 as the token estimate.
    started, cpu = time.perf_counter(), time.process_time()
    conversations = tokens = 0
    for line in args.data.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        tokens += int(sum(len(t["content"].split()) for t in record["turns"]) * 1.3)
        conversations += 1
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"elapsed": elapsed, "cpu": cpu, "conversations": conversations, "estimated_tokens": tokens}


def run_tokenizer(args) -> dict:
    from services.dataset_svc.reading import BATCH_CONVERSATIONS
    from services.dataset_svc.statistics import load_tokenizer

    # The validator's batch size, so that the ceiling encodes the same way.
    rust = load_tokenizer(str(args.model_dir)).backend_tokenizer
    elapsed = cpu = conversations = 0
    with args.rendered.open(encoding="utf-8") as src:
        while batch := [json.loads(line) for _, line in zip(range(BATCH_CONVERSATIONS), src)]:
            # Only the encode: reading the texts is not the tokenizer's work.
            started, cpu_started = time.perf_counter(), time.process_time()
            rust.encode_batch(batch, add_special_tokens=False)
            elapsed += time.perf_counter() - started
            cpu += time.process_time() - cpu_started
            conversations += len(batch)
    return {"elapsed": elapsed, "cpu": cpu, "conversations": conversations}


def peak_rss_mb() -> float:
    # VmHWM, not getrusage: Linux carries ru_maxrss across exec, so a child
    # would report the parent's peak (torch and transformers loaded) as its own.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status: peak RSS needs Linux")


METHODS = {"validator": run_validator, "naive": run_naive, "tokenizer": run_tokenizer}
ROW_NAMES = {"validator": "validate_dataset", "naive": "naive (spec)", "tokenizer": "tokenizer only (ceiling)"}


def measure(method: str, args) -> dict:
    """Run one method in a fresh process; returns its figures."""
    cmd = [sys.executable, __file__, "--_method", method, "--_model-dir", str(args.model_dir),
           "--_data", str(args.data), "--_rendered", str(args.rendered)]
    # Both cores for the Rust tokenizer; the validator gets the same setting, to be fair.
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "true"}
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def table(rows: dict[str, dict], file_mb: float) -> str:
    ceiling = file_mb / rows["tokenizer"]["elapsed"]
    lines = [f"{'method':<26}{'MB/s':>9}{'conv/s':>11}{'peak RSS MB':>13}{'CPU s':>9}{'share of ceiling':>18}"]
    for method, r in rows.items():
        rate = file_mb / r["elapsed"]
        share = f"{rate / ceiling:.0%}" if method == "validator" else "-"
        lines.append(f"{ROW_NAMES[method]:<26}{rate:>9.2f}{r['conversations'] / r['elapsed']:>11.0f}"
                     f"{r['peak_mb']:>13.0f}{r['cpu']:>9.1f}{share:>18}")
    return "\n".join(lines)


def targets(rows: dict[str, dict], file_mb: float) -> str:
    validator = rows["validator"]
    share = rows["tokenizer"]["elapsed"] / validator["elapsed"]
    cpu_share = rows["tokenizer"]["cpu"] / validator["cpu"]
    seconds_500 = validator["elapsed"] * 500 / file_mb  # linear: the validator streams
    ceiling_500 = rows["tokenizer"]["elapsed"] * 500 / file_mb
    measured = "measured" if round(file_mb) == 500 else f"projected from {file_mb:.0f} MB"
    checks = [
        (f"validator >= {TARGET_SHARE:.0%} of the tokenizer-only ceiling: {share:.0%} "
         f"(by CPU time: {cpu_share:.0%})", share >= TARGET_SHARE),
        (f"500 MB within {TARGET_SECONDS_500MB:.0f} s: {seconds_500:.0f} s ({measured}; "
         f"the tokenizer alone: {ceiling_500:.0f} s)", seconds_500 <= TARGET_SECONDS_500MB),
        (f"peak RSS <= {TARGET_PEAK_MB:.0f} MB: {validator['peak_mb']:.0f} MB", validator["peak_mb"] <= TARGET_PEAK_MB),
    ]
    return "\n".join(f"  [{'met' if ok else 'NOT met'}] {text}" for text, ok in checks)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=500)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each method; the fastest is kept")
    parser.add_argument("--out", type=Path, help="keep the dataset and model here (default: a temp dir)")
    parser.add_argument("--_method", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--_model-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--_data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--_rendered", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._method:
        args.model_dir, args.data, args.rendered = args._model_dir, args._data, args._rendered
        figures = METHODS[args._method](args)
        print(json.dumps({**figures, "peak_mb": peak_rss_mb()}))
        return ""

    from services.common.tiny_model import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        work = args.out or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        args.model_dir = build_tiny_model(work / "tiny")
        args.data, args.rendered = work / "data.jsonl", work / "rendered.jsonl"
        conversations = write_dataset(args.data, int(args.size_mb * 2**20))
        render_texts(args.data, args.model_dir, args.rendered)
        file_mb = args.data.stat().st_size / 2**20
        rows: dict[str, dict] = {}
        for _ in range(args.repeat):
            for method in METHODS:
                run = measure(method, args)
                if method in rows:  # the fastest run's times, the highest peak RSS of all
                    run["peak_mb"] = max(run["peak_mb"], rows[method]["peak_mb"])
                if method not in rows or run["elapsed"] < rows[method]["elapsed"]:
                    rows[method] = run
    report = (
        f"validate throughput on {os.cpu_count()} cores: {file_mb:.1f} MB, {conversations} conversations "
        f"(brightrun_lora_v4, tiny model tokenizer)\n"
        + table(rows, file_mb)
        + "\ntargets:\n"
        + targets(rows, file_mb)
    )
    print(report)
    return report


if __name__ == "__main__":
    main()
