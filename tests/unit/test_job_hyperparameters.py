"""The job's training options: unset unless given, checked with errors naming
the field, and read back by the trainer as the user set them."""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format

from brightrun.job.v1 import job_pb2
from services.common.errors import InvalidArgument
from services.job_svc.hyperparameters import resolve
from services.trainer_agent.worker import config_from_assignment

OPTIONS = {
    "packing": False,
    "gradient_checkpointing": True,
    "warmup_ratio": 0.1,
    "lr_scheduler": "linear",
    "eval_steps": 0,
    "early_stopping_patience": 3,
    "quantization": "nf4",
    "zero_stage": 3,
    "fused_kernels": True,
}


def _given(**fields) -> dict:
    # As job_svc receives them: the request's message, in proto JSON form.
    return json_format.MessageToDict(job_pb2.Hyperparameters(**fields), preserving_proto_field_name=True)


def test_given_options_are_kept_even_when_false_or_zero_and_unset_ones_stay_unset():
    stored = resolve("balanced", _given(**OPTIONS), "H100", 2, "b").hyperparameters()
    message = job_pb2.Hyperparameters(**stored)

    assert {name: getattr(message, name) for name in OPTIONS} == pytest.approx(OPTIONS)
    assert all(message.HasField(name) for name in OPTIONS)
    unset = job_pb2.Hyperparameters(**resolve("balanced", _given(), "H100", 1, "b").hyperparameters())
    assert not any(unset.HasField(name) for name in OPTIONS)


def test_bad_options_are_reported_together_by_field():
    bad = {"warmup_ratio": 1.5, "lr_scheduler": "step", "eval_steps": -1, "early_stopping_patience": 500,
           "quantization": "int8", "zero_stage": 1}

    with pytest.raises(InvalidArgument) as info:
        resolve("balanced", _given(**bad), "H100", 1, "b")

    assert set(info.value.details) == {f"hyperparameters.{name}" for name in bad}
    assert "must be one of cosine, linear" in info.value.details["hyperparameters.lr_scheduler"][0]


def test_nf4_and_fused_kernels_need_a_gpu_and_warmup_comes_one_way():
    given = _given(quantization="nf4", fused_kernels=True, warmup_steps=10, warmup_ratio=0.2)

    with pytest.raises(InvalidArgument) as info:
        resolve("balanced", given, "CPU", 1, "b")

    assert info.value.details == {
        "hyperparameters.quantization": ["nf4 needs a GPU: choose a GPU type, or quantization none"],
        "hyperparameters.fused_kernels": ["fused kernels need a GPU: choose a GPU type, or leave them off"],
        "hyperparameters.warmup_ratio": ["give warmup_steps or warmup_ratio, not both"],
    }


def test_the_batch_must_split_evenly_across_the_gpus():
    with pytest.raises(InvalidArgument) as info:
        resolve("conservative", _given(batch_size=6), "H100", 4, "b")

    assert info.value.details == {
        "hyperparameters.batch_size": ["must be a multiple of the GPU count (4) to split evenly across the GPUs"]
    }
    assert resolve("conservative", _given(batch_size=8), "H100", 4, "b").batch_size == 8


def test_the_trainer_reads_the_options_of_the_assignment():
    stored = resolve("balanced", _given(**OPTIONS), "H100", 2, "base").hyperparameters()
    assignment = job_pb2.TrainingAssignment(job_id="j", hyperparameters=job_pb2.Hyperparameters(**stored))

    config = config_from_assignment(json.loads(json_format.MessageToJson(assignment, preserving_proto_field_name=True)))

    assert {name: getattr(config, name) for name in OPTIONS} == pytest.approx(OPTIONS)
    defaults = config_from_assignment({"hyperparameters": {"base_model": "base"}})
    assert (defaults.packing, defaults.gradient_checkpointing, defaults.lr_scheduler) == (True, None, "cosine")
    assert (defaults.warmup_ratio, defaults.eval_steps, defaults.quantization) == (0.0, 0, "none")
    assert (defaults.fused_kernels, defaults.zero_stage) == (False, 2)
