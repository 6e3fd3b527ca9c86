"""The product journey through the ``brightrun`` CLI against the real embedded platform: PostgreSQL,
NATS JetStream, SeaweedFS, the four services, a CPU trainer agent and the gateway, each in its own process.

Commands run in-process through ``main(argv)``; their ``--json`` output is parsed and checked.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid

import pytest

from brightrun_client.cli import main
from gateway.auth import mint_token
from services.common.config import DEV_JWT_SECRET
from services.platform.journey import wait_for, write_demo_dataset
from services.platform.launcher import Platform

pytestmark = pytest.mark.slow

# The preset's values with a faster learning rate, rank and batch, as the HTTP journey trains: 12 steps.
JOB_ARGS = ["--preset", "custom", "--gpu", "CPU", "--set", "learning_rate=0.001", "--set", "batch_size=8",
            "--set", "epochs=2", "--set", "rank=8", "--set", "alpha=16", "--set", "dropout=0.0"]


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIGHTRUN_")}
    with Platform(tmp_path_factory.mktemp("brightrun-home"), env, http_port=0) as running:
        yield running


@pytest.fixture
def brightrun(platform, monkeypatch, capsys, tmp_path):
    """Runs one CLI command as a fresh user; returns (exit status, stdout, stderr)."""
    monkeypatch.setenv("BRIGHTRUN_URL", platform.gateway_url)
    monkeypatch.setenv("BRIGHTRUN_TOKEN", mint_token(str(uuid.uuid4()), DEV_JWT_SECRET))
    monkeypatch.setenv("BRIGHTRUN_CONFIG", str(tmp_path / "no-config.toml"))

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        status = main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err

    return run


def _json(result: tuple[int, str, str]):
    status, out, err = result
    assert status == 0, err
    return json.loads(out)


def test_the_whole_journey_through_the_cli(brightrun, tmp_path):
    path = write_demo_dataset(tmp_path / "reverse.jsonl", conversations=48, exchanges=3)
    status, out, err = brightrun("datasets", "upload", str(path), "--name", "reverse words", "--wait", "--json")
    assert status == 0, err
    dataset = json.loads(out)
    assert dataset["status"] == "ready" and dataset["training_ready"] is True
    assert dataset["name"] == "reverse words" and dataset["total_training_pairs"] == 48 * 3
    assert f"{path.stat().st_size / 1e6:.2f} MB" in err and "100.0%" in err  # the progress bar reached the end
    listed = _json(brightrun("datasets", "list", "--json"))
    assert [d["id"] for d in listed] == [dataset["id"]]

    estimate = _json(brightrun("jobs", "estimate", "--dataset", dataset["id"], *JOB_ARGS, "--json"))
    assert estimate["hourly_rate"] == 0
    assert estimate["training_details"]["total_steps"] == 12  # ceil(48 / 8) * 2 epochs

    status, out, err = brightrun("jobs", "create", "--dataset", dataset["id"], *JOB_ARGS, "--wait", "--json")
    assert status == 0, err
    job = json.loads(out)
    assert job["status"] == "completed" and job["current_step"] == job["total_steps"] == 12
    assert job["hyperparameters"]["learning_rate"] == 0.001 and job["hyperparameters"]["rank"] == 8
    assert "step 12/12" in err and "loss " in err  # the live progress line

    events = [json.loads(line) for line in brightrun("jobs", "events", job["id"], "--json")[1].splitlines()]
    assert [e["data"]["status"] for e in events if e["event"] == "status"][-1] == "completed"
    assert [e["data"]["step"] for e in events if e["event"] == "metric"] == list(range(1, 13))
    detail = _json(brightrun("jobs", "get", job["id"], "--json"))
    assert [m["step"] for m in detail["metrics"]] == list(range(1, 13))
    assert [j["id"] for j in _json(brightrun("jobs", "list", "--json"))] == [job["id"]]

    models = wait_for(lambda: {"models": _json(brightrun("models", "list", "--json"))}, lambda m: m["models"], 60,
                      "the job's model")["models"]
    (model,) = models
    assert model["job_id"] == job["id"]
    target = tmp_path / "adapter"
    downloaded = _json(brightrun("models", "download", model["id"], "--dir", str(target), "--json"))
    assert downloaded["directory"] == str(target)
    stored = _json(brightrun("models", "get", model["id"], "--json"))["artifacts"]
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(stored)
    assert sorted(downloaded["files"]) == sorted(str(target / name) for name in stored)
    for name, meta in stored.items():
        assert hashlib.sha256((target / name).read_bytes()).hexdigest() == meta["sha256"], name
    assert json.loads((target / "adapter_config.json").read_text())["r"] == 8

    # Try it: a trainer agent answers with the adapter, and with the base model alone.
    generated = _json(brightrun("models", "generate", model["id"], "hello world", "one two", "--max-new-tokens", "6",
                                "--include-base", "--json"))
    assert generated["model_id"] == model["id"]
    assert [r["prompt"] for r in generated["results"]] == ["hello world", "one two"]
    assert all({"completion", "base_completion"} <= set(r) for r in generated["results"])
    # The merged model, made by the CPU agent, with a URL for each of its files.
    exported = _json(brightrun("models", "export", model["id"], "--wait", "--json"))
    assert exported["status"] == "completed", exported["error"]
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {u["file"] for u in exported["download_urls"]}
    # A continued job must keep the parent's rank: refused, naming the field and the rank to use.
    status, _, err = brightrun("jobs", "create", "--dataset", dataset["id"], *JOB_ARGS, "--set", "rank=16",
                              "--parent-model", model["id"])
    assert status == 1 and "parent_model_id" in err and "rank 8" in err, err

    records = _json(brightrun("jobs", "get", job["id"], "--json"))["cost_records"]
    costs = _json(brightrun("costs", "--json"))
    assert {"compute", "storage"} <= set(costs["by_type"])
    assert costs["total"] == pytest.approx(sum(r["amount"] for r in records))

    wanted = {"dataset_ready", "job_queued", "job_started", "job_completed", "model_ready"}
    notes = wait_for(lambda: _json(brightrun("notifications", "--limit", "50", "--json")),
                     lambda n: wanted <= {x["type"] for x in n["notifications"]}, 30, "notifications")
    assert notes["unread_count"] >= len(wanted)
    marked = brightrun("notifications", "--limit", "50", "--mark-read", "--json")
    assert f"Marked {notes['unread_count']} notification(s) read" in marked[2]
    unread = _json(brightrun("notifications", "--unread", "--json"))
    assert unread["notifications"] == [] and unread["unread_count"] == 0

    # The same reads for people: tables that name what the JSON held.
    for argv, shown in [
        (("datasets", "get", dataset["id"]), "reverse words"),
        (("datasets", "list"), dataset["id"]),
        (("jobs", "estimate", "--dataset", dataset["id"], *JOB_ARGS), "estimated cost"),
        (("jobs", "get", job["id"]), "step 12/12"),
        (("jobs", "list"), job["id"]),
        (("jobs", "events", job["id"]), "metric  step 12"),
        (("models", "get", model["id"]), "adapter_model.safetensors"),
        (("models", "list"), model["id"]),
        (("models", "generate", model["id"], "hello world", "--max-new-tokens", "4"), "> hello world"),
        (("costs",), f"${costs['total']:.4f}"),
        (("notifications",), "job_completed"),
    ]:
        status, out, err = brightrun(*argv)
        assert status == 0 and shown in out, (argv, out, err)


def test_budget_and_webhooks_through_the_cli(brightrun):
    budget = _json(brightrun("budget", "--set", "25", "--json"))
    assert budget["amount"] == 25 and budget["remaining"] <= 25
    assert _json(brightrun("budget", "--json"))["amount"] == 25
    assert "$25" in brightrun("budget")[1]

    created = _json(brightrun("webhooks", "create", "https://example.com/hook", "--event", "job.succeeded",
                              "--event", "budget.alert", "--description", "ci", "--json"))
    hook = created["webhook"]
    assert created["secret"].startswith("whsec_") and hook["event_types"] == ["job.succeeded", "budget.alert"]
    assert [h["id"] for h in _json(brightrun("webhooks", "list", "--json"))] == [hook["id"]]
    assert hook["id"] in brightrun("webhooks", "list")[1]
    status, out, err = brightrun("webhooks", "create", "https://example.com/hook", "--event", "job.exploded")
    assert status == 1 and "job.exploded" in err, (out, err)
    assert brightrun("webhooks", "delete", hook["id"])[0] == 0
    assert _json(brightrun("webhooks", "list", "--json")) == []


def test_a_broken_dataset_shows_its_validation_report_and_fails(brightrun, tmp_path):
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    good = {"conversation_id": "a", "turns": turns}
    path = tmp_path / "broken.jsonl"
    path.write_text("\n".join([json.dumps(good), "{not json", json.dumps(good)]) + "\n")
    status, out, err = brightrun("datasets", "upload", str(path), "--wait")
    assert status == 3, (out, err)
    report = out.splitlines()
    assert "status            error" in report
    header = next(i for i, line in enumerate(report) if line.split() == ["line", "code", "message"])
    rows = [re.split(r"\s{2,}", line, maxsplit=2) for line in report[header + 1:]]
    assert [row[:2] for row in rows] == [["2", "invalid_json"], ["3", "duplicate_conversation_id"]]
    assert rows[0][2].startswith("invalid JSON") and "already used on line 1" in rows[1][2]


def test_an_api_error_is_reported_with_its_details(brightrun):
    status, out, err = brightrun("jobs", "create", "--dataset", str(uuid.uuid4()), *JOB_ARGS, "--set", "rank=2")
    assert status == 1 and out == ""
    assert err.startswith("error: 400 Validation error") and "hyperparameters.rank" in err
