"""The GPU catalogue is configuration: one file, one loader, every price and memory figure read from it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.common import gpu_catalogue
from services.common.gpu_catalogue import DEFAULT_PATH, CatalogueError, load

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, document) -> Path:
    path = tmp_path / "catalogue.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    return path


def _valid() -> dict:
    return json.loads(DEFAULT_PATH.read_text())


def test_the_shipped_catalogue_holds_todays_gpus_and_prices():
    catalogue = load(DEFAULT_PATH)
    assert {t: (g.memory_gb, g.price_per_gpu_hour) for t, g in catalogue.gpus.items()} == {
        "A100-80GB": (80, 3.50), "A100-40GB": (40, 2.80), "H100": (80, 4.20), "V100-32GB": (32, 2.10), "CPU": (0, 0),
    }
    assert catalogue.storage_price_per_model == 0.50
    assert gpu_catalogue.CATALOGUE == catalogue  # no BRIGHTRUN_GPU_CATALOGUE here: the shipped file


def _break(document: dict, change) -> dict:
    change(document)
    return document


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d["gpus"][2].update(price_per_gpu_hour="4.20"), "gpus[2] (H100): price_per_gpu_hour"),
        (lambda d: d["gpus"][0].update(memory_gb=-1), "gpus[0] (A100-80GB): memory_gb"),
        (lambda d: d["gpus"][1].update(max_count=0), "gpus[1] (A100-40GB): max_count"),
        (lambda d: d["gpus"][3].update(throughput_tokens_per_second=0), "gpus[3] (V100-32GB): throughput"),
        (lambda d: d["gpus"][3].pop("type"), "gpus[3]: type"),
        (lambda d: d["gpus"].append(dict(d["gpus"][2])), "gpus[5] (H100): type is listed twice"),
        (lambda d: d["gpus"].pop(), "must list type 'CPU'"),
        (lambda d: d.pop("storage_price_per_model"), "storage_price_per_model"),
        (lambda d: d.update(gpus=[]), "gpus must be a non-empty list"),
    ],
)
def test_a_bad_entry_is_refused_naming_the_file_and_the_entry(tmp_path, change, named):
    path = _write(tmp_path, _break(_valid(), change))
    with pytest.raises(CatalogueError) as refused:
        load(path)
    assert str(path) in str(refused.value) and named in str(refused.value)


def test_a_file_that_is_missing_or_not_json_is_refused_naming_it(tmp_path):
    for path in (tmp_path / "absent.json", _write(tmp_path, "{not json")):
        with pytest.raises(CatalogueError, match=str(path)):
            load(path)


def _python(code: str, catalogue: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "BRIGHTRUN_GPU_CATALOGUE": str(catalogue), "PYTHONPATH": f"{ROOT / 'gen'}:{ROOT}"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_every_price_and_memory_figure_comes_from_the_configured_file(tmp_path):
    document = _valid()
    document["storage_price_per_model"] = 0.75
    document["gpus"][2].update(price_per_gpu_hour=9.0, memory_gb=94)
    code = (
        "from services.job_svc.catalogue import GPU_TYPES\n"
        "from services.job_svc.estimate import estimate\n"
        "from services.billing_svc import accrual\n"
        "from services.common.gpu_catalogue import CATALOGUE\n"
        "h100 = GPU_TYPES['H100']\n"
        "e = estimate(h100, 2, {'conversations': 1000}, 200_000, 8, 1)\n"
        "print(h100.price_per_gpu_hour, h100.memory_gb, e.hourly_rate, e.storage, CATALOGUE.storage_price_per_model)\n"
    )
    ran = _python(code, _write(tmp_path, document))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["9.0", "94.0", "18.0", "0.75", "0.75"]


def test_a_bad_catalogue_stops_a_service_at_start_up_naming_the_file_and_entry(tmp_path):
    document = _valid()
    document["gpus"][2]["price_per_gpu_hour"] = -4.2
    path = _write(tmp_path, document)
    ran = _python("import runpy; runpy.run_module('services.billing_svc', run_name='__main__')", path)
    assert ran.returncode != 0
    assert f"GPU catalogue {path}: gpus[2] (H100): price_per_gpu_hour must be a number of at least 0, got -4.2" \
        in ran.stderr
