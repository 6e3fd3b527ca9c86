"""What the CLI sends for its options and what it exits with, against a real local HTTP server."""

from __future__ import annotations

import json

import pytest

from brightrun_client.cli import main
from scripted import Answer, ok, status_frame, write_events

PRESET = {"id": "balanced", "name": "Balanced", "hyperparameters": {
    "base_model": "/srv/models/default", "learning_rate": 0.0002, "batch_size": 8, "epochs": 5, "rank": 16,
    "alpha": 32.0, "dropout": 0.1, "warmup_steps": None}}


@pytest.fixture
def brightrun(server, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("BRIGHTRUN_CONFIG", str(tmp_path / "config.toml"))
    (tmp_path / "config.toml").write_text(f'url = "{server.url}"\ntoken = "from-file"\ngpu = "A100x2"\n')
    monkeypatch.delenv("BRIGHTRUN_URL", raising=False)
    monkeypatch.delenv("BRIGHTRUN_TOKEN", raising=False)
    monkeypatch.delenv("BRIGHTRUN_GPU", raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        status = main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err

    return run


def _platform(events: list[str]):
    def respond(seen, handler):
        if seen.path == "/api/jobs/presets":
            return ok({"presets": [PRESET]})
        if seen.path == "/api/jobs":
            return Answer(201, {"success": True, "data": {"job": {"id": "job-1", "status": "queued"}}, "warnings": ["slow"]})
        write_events(handler, events, complete=True)

    return respond


def test_create_sends_the_presets_values_under_each_set_and_the_configured_gpu(server, brightrun):
    server.respond = _platform([status_frame("completed", 3)])
    status, out, err = brightrun("jobs", "create", "--dataset", "d-1", "--preset", "balanced", "--set", "epochs=2",
                                 "--set", "lr_scheduler=linear", "--set", "packing=false", "--wait", "--json")
    assert status == 0, err
    assert json.loads(out)["status"] == "completed"
    assert "warning: slow" in err
    create = next(r for r in server.requests if r.path == "/api/jobs")
    assert create.headers["authorization"] == "Bearer from-file"
    assert json.loads(create.body) == {
        "dataset_id": "d-1", "preset_id": "balanced", "gpu_config": {"type": "A100", "count": 2},
        "hyperparameters": {"learning_rate": 0.0002, "batch_size": 8, "epochs": 2, "rank": 16, "alpha": 32.0,
                            "dropout": 0.1, "lr_scheduler": "linear", "packing": False},
    }


def test_a_job_that_fails_while_waited_for_exits_3(server, brightrun):
    server.respond = _platform([status_frame("running", 1), status_frame("failed", 1)])
    status, out, err = brightrun("jobs", "create", "--dataset", "d-1", "--preset", "balanced", "--gpu", "CPU",
                                 "--wait")
    assert status == 3
    assert "failed" in out
    assert json.loads(next(r for r in server.requests if r.path == "/api/jobs").body)["gpu_config"] == {
        "type": "CPU", "count": 1}


def test_an_unknown_preset_or_a_bad_set_is_a_usage_error(server, brightrun):
    server.respond = _platform([])
    assert brightrun("jobs", "estimate", "--dataset", "d-1", "--preset", "wild")[0] == 2
    status, _, err = brightrun("jobs", "estimate", "--dataset", "d-1", "--preset", "balanced", "--set", "epochs")
    assert status == 2 and "key=value" in err
    assert not [r for r in server.requests if r.path.startswith("/api/jobs/estimate")]
