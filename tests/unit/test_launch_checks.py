"""Launch checks: the base model can be loaded, the job fits its GPUs, some agent takes it.
The hub is an injected lookup: these tests never reach a network."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from services.common.errors import InvalidArgument
from services.job_svc.hyperparameters import resolve
from services.job_svc.launch_checks import (
    AgentSighting,
    HubModel,
    check_hub_model,
    check_launch,
    no_agent_warning,
    read_model_config,
    refuse_unless_fits,
)

LLAMA_2_7B = "meta-llama/Llama-2-7b-hf"


def _config(base_model: str, gpu: str = "A100-40GB", count: int = 1, model_dirs=(), **given):
    chosen = {"learning_rate": 2e-4, "batch_size": 8, "epochs": 5, "rank": 16, **given}
    return resolve("custom", chosen, gpu, count, base_model, model_dirs)


def _refusal(call) -> list[str]:
    with pytest.raises(InvalidArgument) as info:
        call()
    return info.value.details["hyperparameters.base_model"]


def test_a_local_base_model_must_be_a_directory_with_a_readable_config(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "config.json").write_text(json.dumps({"hidden_size": 64}))

    assert "does not exist" in _refusal(lambda: read_model_config(str(tmp_path / "missing")))[0]
    assert "has no config.json" in _refusal(lambda: read_model_config(str(tmp_path / "empty")))[0]
    assert "cannot be read" in _refusal(lambda: read_model_config(str(tmp_path / "broken")))[0]
    assert read_model_config(str(tmp_path / "good")) == {"hidden_size": 64}
    assert read_model_config(LLAMA_2_7B) is None

def test_a_model_config_is_read_once_per_version_of_its_file(tmp_path):
    """EstimateJob reads it on every request: an unchanged file is not read again, a rewritten one is."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"hidden_size": 64}))
    first = read_model_config(str(model))
    assert read_model_config(str(model)) is first  # the same dict: the file was not parsed again

    (model / "config.json").write_text(json.dumps({"hidden_size": 128}))
    assert read_model_config(str(model)) == {"hidden_size": 128}
    (model / "config.json").unlink()
    assert "has no config.json" in _refusal(lambda: read_model_config(str(model)))[0]



def test_the_hub_refuses_unknown_ids_and_gated_models_without_a_token():
    def hub(answer):
        return lambda model_id: answer

    assert "no model" in _refusal(lambda: check_hub_model("org/nope", hub(HubModel(exists=False)), True))[0]
    gated = hub(HubModel(exists=True, gated=True))
    assert "HF_TOKEN" in _refusal(lambda: check_hub_model(LLAMA_2_7B, gated, False))[0]
    assert check_hub_model(LLAMA_2_7B, gated, True) == []
    assert check_hub_model("org/open", hub(HubModel(exists=True)), False) == []


def test_an_unreachable_hub_is_a_warning_and_no_hub_means_no_lookup():
    def unreachable(model_id):
        raise OSError("timed out")

    def never(model_id):
        raise AssertionError("the hub was asked")

    [warning] = check_hub_model("org/open", unreachable, False)
    assert "could not be reached" in warning and "org/open" in warning
    assert check_launch(_config("org/open"), None, False).warnings  # not asked; unknown, so memory not checked
    with pytest.raises(AssertionError):
        check_launch(_config("org/open"), never, False)


def test_a_job_that_does_not_fit_is_refused_with_the_figure_the_gpu_and_what_to_lower():
    config = _config(LLAMA_2_7B, batch_size=8, max_seq_length=2048, gradient_checkpointing=False)
    report = check_launch(config, None, False)
    assert not report.fits and report.memory_per_gpu_gb > 40
    assert "cannot be created" in report.warnings[0]

    with pytest.raises(InvalidArgument) as info:
        refuse_unless_fits(report)

    details = info.value.details
    assert f"{report.memory_per_gpu_gb:.1f} GB" in details["gpu_config"][0] and "40 GB" in details["gpu_config"][0]
    assert any("hyperparameters.gradient_checkpointing" in line for line in details["hyperparameters"])


def test_a_job_that_fits_a_known_or_local_model_gets_its_figure(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps({
        "hidden_size": 4096, "num_hidden_layers": 32, "intermediate_size": 11008, "vocab_size": 32000,
        "num_attention_heads": 32}))
    for base_model in (LLAMA_2_7B, str(tmp_path / "m")):
        report = check_launch(_config(base_model, "H100", 8, (tmp_path,), batch_size=8), None, False)
        assert report.fits and 14 < report.memory_per_gpu_gb < 80
        refuse_unless_fits(report)


def test_cpu_jobs_and_unknown_architectures_are_not_checked(tmp_path):
    assert check_launch(_config(LLAMA_2_7B, "CPU"), None, False).memory_per_gpu_gb == 0
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").write_text(json.dumps({"model_type": "odd"}))
    report = check_launch(_config(str(tmp_path / "odd"), model_dirs=(tmp_path,)), None, False)
    assert report.fits and report.memory_per_gpu_gb == 0
    assert "not checked" in report.warnings[0] and "num_hidden_layers" in report.warnings[0]


NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
WINDOW = timedelta(minutes=10)


def _seen(subjects=("assign.H100.1", "assign.H100.2"), waiting=0, in_hand=0, last=None) -> AgentSighting:
    return AgentSighting(tuple(subjects), waiting, in_hand, last)


def test_an_agent_is_seen_while_polling_working_or_recently_handed_work():
    for sighting in (_seen(waiting=1), _seen(in_hand=1), _seen(last=NOW - timedelta(minutes=9))):
        assert no_agent_warning([sighting], "H100", 2, NOW, WINDOW) is None


def test_no_agent_of_the_type_and_count_within_the_window_is_a_warning():
    stale = _seen(last=NOW - timedelta(minutes=11))
    busy_elsewhere = _seen(subjects=("assign.A100-80GB.1",), waiting=1)
    for sightings, count in (([], 1), ([stale], 1), ([busy_elsewhere], 1), ([_seen(waiting=1)], 4)):
        warning = no_agent_warning(sightings, "H100", count, NOW, WINDOW)
        assert warning and f"{count} x H100" in warning and "10 minutes" in warning


def test_the_hub_lookup_reads_the_hubs_answers_and_errors(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError
    from types import SimpleNamespace

    from services.job_svc.hub import hub_lookup

    # Their constructors want an HTTP response; the lookup reads only their type.
    answers = {
        "org/open": SimpleNamespace(gated=False), "org/manual": SimpleNamespace(gated="manual"),
        "org/missing": RepositoryNotFoundError.__new__(RepositoryNotFoundError),
        "org/locked": GatedRepoError.__new__(GatedRepoError), "org/offline": ConnectionError("no route to host"),
    }
    seen = []

    def model_info(model_id, *, token, timeout):
        seen.append((token, timeout))
        answer = answers[model_id]
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(huggingface_hub, "model_info", model_info)
    lookup = hub_lookup("")
    assert lookup("org/open") == HubModel(exists=True, gated=False)
    assert lookup("org/manual") == HubModel(exists=True, gated=True)
    assert lookup("org/missing") == HubModel(exists=False)
    assert lookup("org/locked") == HubModel(exists=True, gated=True)
    with pytest.raises(OSError, match="no route to host"):
        lookup("org/offline")
    assert seen[0] == (False, 5.0)  # anonymous, bounded


def test_the_model_size_is_read_for_every_gpu_type_cpu_included_and_is_unknown_without_a_config(tmp_path):
    # Llama-2-7B's config: 6.74 billion parameters, as published.
    assert check_launch(_config(LLAMA_2_7B, "CPU"), None, False).model_parameters == pytest.approx(6.74e9, rel=0.01)
    assert check_launch(_config(LLAMA_2_7B, "H100"), None, False).model_parameters == pytest.approx(6.74e9, rel=0.01)
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "config.json").write_text(json.dumps({"model_type": "odd"}))
    assert check_launch(_config(str(tmp_path / "odd"), model_dirs=(tmp_path,)), None, False).model_parameters is None
