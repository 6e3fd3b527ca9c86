"""Continued training's check of the parent model against the new job's configuration."""

from __future__ import annotations

from brightrun.artifact.v1 import artifact_pb2

from services.job_svc.hyperparameters import resolve
from services.job_svc.lineage import mismatches


def _parent(base_model: str, rank: int) -> artifact_pb2.ModelArtifact:
    parent = artifact_pb2.ModelArtifact(id="p")
    parent.configuration.update({"base_model": base_model, "hyperparameters": {"rank": rank, "base_model": base_model}})
    return parent


def _config(rank: int, base_model: str = "org/model"):
    return resolve("balanced", {"rank": rank, "base_model": base_model}, "CPU", 1, "org/model")


def test_the_same_base_model_and_rank_continue():
    assert mismatches(_parent("org/model", 16), _config(16)) == []


def test_another_rank_is_named_with_the_rank_to_set():
    [problem] = mismatches(_parent("org/model", 8), _config(16))
    assert "rank 8" in problem and "hyperparameters.rank to 8" in problem


def test_another_base_model_is_named():
    problems = mismatches(_parent("org/other", 8), _config(16))
    assert len(problems) == 2 and "'org/other'" in problems[0] and "'org/model'" in problems[0]
