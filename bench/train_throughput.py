"""Training throughput: BrightRun's recipe beside a plain ``transformers.Trainer``
+ PEFT baseline, on the same model, data, LoRA config, sequence length and
effective batch, measured in one run. Each method runs in its own process so
that peak memory is its own.

    python bench/train_throughput.py                  # CPU smoke: the tiny offline model
    python bench/train_throughput.py --model llama-7b # GPU: a Llama-2-7B-shaped model, random bf16 weights

The recipe runs with its defaults: packing on, and activation checkpointing
on CUDA only (``--gradient-checkpointing on|off`` overrides); ``--fused-kernels``
adds Liger's (CUDA with liger-kernel installed). ``--lengths
varied`` draws each turn's length at random, as real conversations are, which
is where packing saves the padding the baseline computes on; ``uniform`` (the
default) makes every conversation about as long, leaving nothing to save.
The padding column is the share of the tokens computed on that were padding:
unlike the timings, it does not depend on what else the machine is running.

MFU counts FLOPs per trained token as 4·N_frozen + 6·N_lora (frozen weights
need the activation gradient but no weight gradient) plus attention,
12·layers·hidden·seq_len, against the device's peak (``--peak-tflops``;
default 989 for an H100's dense bf16; not shown on CPU).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa".split()


def write_dataset(path: Path, conversations: int, words_per_turn: int, varied: bool = False, seed: int = 0) -> None:
    """``conversations`` of one exchange, ``words_per_turn`` words a turn, or 1 to that many when ``varied``."""
    rng = random.Random(seed)

    def words() -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, words_per_turn) if varied else words_per_turn))

    with path.open("w") as out:
        for i in range(conversations):
            question, answer = words(), words()
            turns = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
            out.write(json.dumps({"conversation_id": f"c{i}", "turns": turns, "split": "train"}) + "\n")


def build_model(kind: str, directory: Path) -> Path:
    from services.common.tiny_model import build_tiny_model

    tiny = build_tiny_model(directory / "tiny")
    if kind == "tiny":
        return tiny
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    # Llama-2-7B's shape with random bf16 weights: no download, same FLOPs.
    config = LlamaConfig(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                         num_key_value_heads=32, vocab_size=len(AutoTokenizer.from_pretrained(tiny)),
                         max_position_embeddings=4096)
    out = directory / "llama-7b"
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny).save_pretrained(out)
    return out


def flops_per_token(model, seq_len: int) -> float:
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    lora = sum(p.numel() for p in model.parameters() if p.requires_grad)
    cfg = model.config
    return 4 * frozen + 6 * lora + 12 * cfg.num_hidden_layers * cfg.hidden_size * seq_len


def _peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_recipe(args) -> dict:
    from services.trainer_agent.recipe import LoRATrainingRecipe, TrainingConfig

    checkpointing = {"auto": None, "on": True, "off": False}[args.gradient_checkpointing]
    config = TrainingConfig(base_model=str(args.model_dir), learning_rate=2e-4, batch_size=args.batch, epochs=1,
                            rank=args.rank, alpha=2 * args.rank, dropout=0.0, max_seq_length=args.seq_len,
                            gradient_checkpointing=checkpointing, fused_kernels=args.fused_kernels)
    stops = {"steps": 0}
    recipe = LoRATrainingRecipe(config, args.data, on_metrics=lambda m: stops.update(steps=m["step"]),
                                should_stop=lambda: stops["steps"] >= args.steps)
    recipe.setup()
    tokens = sum(len(e.input_ids) for e in recipe.data.train[: args.steps * args.batch])
    started = time.perf_counter()
    summary = recipe.train()
    elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "tokens": tokens, "flops_per_token": flops_per_token(recipe.model, args.seq_len),
            "padding": summary["padding_fraction"]}


def run_baseline(args) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

    from services.trainer_agent.conversations import read_training_data

    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    data = read_training_data(args.data, tokenizer, args.seq_len)
    examples = [{"input_ids": e.input_ids, "labels": e.labels} for e in data.train[: args.steps * args.batch]]
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=dtype),
        LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.0, target_modules="all-linear",
                   task_type="CAUSAL_LM"),
    )

    computed = {"rows": 0, "real": 0}

    def collate(batch):
        width = max(len(b["input_ids"]) for b in batch)
        pad = tokenizer.pad_token_id or 0
        computed["rows"] += width * len(batch)
        computed["real"] += sum(len(b["input_ids"]) for b in batch)
        return {
            "input_ids": torch.tensor([b["input_ids"] + [pad] * (width - len(b["input_ids"])) for b in batch]),
            "labels": torch.tensor([b["labels"] + [-100] * (width - len(b["labels"])) for b in batch]),
            "attention_mask": torch.tensor([[1] * len(b["input_ids"]) + [0] * (width - len(b["input_ids"])) for b in batch]),
        }

    training = TrainingArguments(output_dir=str(args.data.parent / "baseline"), per_device_train_batch_size=args.batch,
                                 max_steps=args.steps, learning_rate=2e-4, report_to=[], save_strategy="no",
                                 logging_strategy="no", bf16=dtype == torch.bfloat16, use_cpu=not torch.cuda.is_available(),
                                 dataloader_num_workers=0, remove_unused_columns=False)
    trainer = Trainer(model=model, args=training, train_dataset=examples, data_collator=collate)
    tokens = sum(len(e["input_ids"]) for e in examples)
    started = time.perf_counter()
    trainer.train()
    elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "tokens": tokens, "flops_per_token": flops_per_token(model, args.seq_len),
            "padding": 1 - computed["real"] / computed["rows"]}


def measure(method: str, args) -> dict:
    """Run one method in a fresh process; returns its figures."""
    cmd = [sys.executable, __file__, "--_method", method, "--_model-dir", str(args.model_dir), "--_data", str(args.data),
           "--steps", str(args.steps), "--batch", str(args.batch), "--seq-len", str(args.seq_len), "--rank", str(args.rank),
           "--gradient-checkpointing", args.gradient_checkpointing, *(["--fused-kernels"] if args.fused_kernels else [])]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"{method} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def table(rows: dict[str, dict], steps: int, peak_tflops: float | None) -> str:
    lines = [f"{'method':<34}{'padding':>8}{'tokens/s':>12}{'step ms':>10}{'peak MB':>10}{'MFU':>8}"]
    for name, r in rows.items():
        rate = r["tokens"] / r["elapsed"]
        mfu = f"{rate * r['flops_per_token'] / (peak_tflops * 1e12) * 100:.1f}%" if peak_tflops else "n/a"
        cells = f"{r['padding']:>8.1%}{rate:>12.0f}{r['elapsed'] / steps * 1000:>10.1f}{r['peak_mb']:>10.0f}{mfu:>8}"
        lines.append(f"{name:<34}{cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["tiny", "llama-7b"], default="tiny")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--lengths", choices=["uniform", "varied"], default="uniform")
    parser.add_argument("--gradient-checkpointing", choices=["auto", "on", "off"], default="auto")
    parser.add_argument("--fused-kernels", action="store_true")
    parser.add_argument("--_method", help=argparse.SUPPRESS)
    parser.add_argument("--_model-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--_data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args._method:
        args.model_dir, args.data = args._model_dir, args._data
        figures = (run_recipe if args._method == "recipe" else run_baseline)(args)
        print(json.dumps({**figures, "peak_mb": _peak_memory_mb()}))
        return ""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        args.model_dir = build_model(args.model, Path(tmp))
        args.data = Path(tmp) / "data.jsonl"
        # About 3 tokens per word with the tiny tokenizer: both turns fill most of the sequence.
        write_dataset(args.data, args.steps * args.batch, max(4, args.seq_len // 7), varied=args.lengths == "varied")
        rows = {
            "brightrun recipe": measure("recipe", args),
            "transformers.Trainer + PEFT": measure("baseline", args),
        }
    peak = args.peak_tflops or (989.0 if torch.cuda.is_available() and "H100" in torch.cuda.get_device_name(0) else None)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    report = (
        f"train throughput on {device}: model {args.model}, seq_len {args.seq_len}, effective batch {args.batch}, "
        f"LoRA rank {args.rank}, {args.lengths} lengths, {args.steps} steps each\n" + table(rows, args.steps, peak)
    )
    print(report)
    return report


if __name__ == "__main__":
    main()
