import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds the tiny model and starts three interpreters
BENCH = Path(__file__).resolve().parents[2] / "bench" / "validate_throughput.py"


def test_the_validation_benchmark_prints_the_three_methods_side_by_side():
    spec = importlib.util.spec_from_file_location("validate_throughput", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    report = bench.main(["--size-mb", "0.5", "--repeat", "2"])
    lines = report.splitlines()
    rows = {line[:26].strip(): line[26:].split() for line in lines[2:5]}
    assert set(rows) == {"validate_dataset", "naive (spec)", "tokenizer only (ceiling)"}
    for cells in rows.values():
        assert all(float(cell) > 0 for cell in cells[:3])  # MB/s, conversations/s, peak RSS MB
    # CPU s; the naive pass over 0.5 MB may round to 0.0.
    assert float(rows["validate_dataset"][3]) > 0 and float(rows["tokenizer only (ceiling)"][3]) > 0
    assert rows["validate_dataset"][4].endswith("%")
    assert lines[5] == "targets:" and len(lines) == 9
