import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
BENCH = Path(__file__).resolve().parents[2] / "bench" / "train_throughput.py"


def test_the_training_benchmark_prints_both_methods_side_by_side():
    spec = importlib.util.spec_from_file_location("train_throughput", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = bench.main(["--steps", "2", "--batch", "2", "--seq-len", "64", "--rank", "4"])
    rows = {line.split("  ")[0]: line.split() for line in report.splitlines()[2:]}
    assert set(rows) == {"brightrun recipe", "transformers.Trainer + PEFT"}
    for cells in rows.values():
        assert float(cells[-4]) > 0 and float(cells[-3]) > 0  # tokens/s and step time
