import importlib.util
import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts the whole platform and trains three small jobs
BENCH = Path(__file__).resolve().parents[2] / "bench" / "control_plane.py"
ENDPOINTS = ("GET /api/jobs/{id}", "GET /api/datasets", "POST /api/jobs/estimate")


def test_the_control_plane_benchmark_prints_every_row_with_a_figure(monkeypatch):
    spec = importlib.util.spec_from_file_location("control_plane", BENCH)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "control_plane", bench)  # its dataclasses look their module up there
    spec.loader.exec_module(bench)
    lines = bench.main(["--smoke"]).splitlines()
    header = lines[1]
    assert header.split() == ["measure", "measured", "goal", "met"]
    measured, goal = header.index("measured"), header.index("goal")
    rows = [(line[:measured].strip(), line[measured:goal].strip()) for line in lines[2:]]
    for name, figure in rows:
        assert re.match(r"\d+(\.\d+)? ", figure + " "), (name, figure)  # a figure, not a blank or an error
    names = [name for name, _ in rows]
    assert names[:5] == [
        "load generator: /healthz @ 1000/s achieved",
        "idle RSS: launcher",
        "idle RSS: trainer agent",
        "POST /api/jobs -> first initializing/running p50 / p99",
        "PostgreSQL transactions/s of the idle platform",
    ]
    # Each API row at the smoke rate, then what its requests cost; then the job detail while a job trains;
    # then a dataset's confirm -> ready beside the validator alone; last, the flow of training data:
    # ingestion (published from several processes; a backlog drained by the consumer alone) and live
    # watchers (points published steadily; a burst).
    assert len(names) == 5 + 3 * (len(ENDPOINTS) + 1) + 6
    assert "while a job trains" in names[-9]
    assert re.fullmatch(r"dataset \d+ MB confirm -> ready, beside validate_dataset alone", names[-6]), names[-6]
    assert re.fullmatch(r"\d+\.\d\d vs \d+\.\d\d MB/s \(\d+%\)", rows[-6][1]), rows[-6]
    assert names[-5] == "ingestion: trainer metric points persisted/s (200 points, 2 jobs, 2 publishers)"
    assert re.match(r"\d+ points/s \(published \d+/s, drained \d+\.\d s after the last\)$", rows[-5][1]), rows[-5]
    assert names[-4] == "ingestion: consumer drain of a 200-point backlog (2 jobs)"
    assert re.match(r"\d+ points/s$", rows[-4][1]), rows[-4]  # every point stored
    assert names[-3] == "CPU us/point of the drain, until quiet (all processes; top ones)"
    assert re.fullmatch(r"\d+ \(\w+ \d+( \w+ \d+)*\)", rows[-3][1]), rows[-3]  # the total, then by process
    assert names[-2] == "watchers: publish -> SSE metric p50 / p99, steady 3 points/s (3 watchers of as many jobs)"
    assert names[-1] == "watchers: publish -> SSE metric p50 / p99, a burst of 3 (3 watchers of as many jobs)"
    for _, figure in rows[-2:]:
        assert re.match(r"\d+ / \d+ ms$", figure), figure  # every watcher saw its point
    for i, endpoint in enumerate((*ENDPOINTS, ENDPOINTS[0])):
        latency, cpu, transactions = names[5 + 3 * i : 8 + 3 * i]
        assert latency.startswith(endpoint) and latency.endswith("@ 20/s p50 / p99"), latency
        assert cpu.startswith("CPU ms/req") and transactions == "PostgreSQL transactions/req"
    assert re.search(r"\(\d+ metric points\)", names[5])
