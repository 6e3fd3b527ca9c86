"""A creating call's request id: its checks and the fingerprint of the request it came with."""

import pytest

from brightrun.job.v1 import job_pb2
from services.common.errors import IdempotencyKeyReused, InvalidArgument
from services.common.idempotency import check_replay, check_request_id, fingerprint


def _request(**changes) -> job_pb2.CreateJobRequest:
    fields = dict(
        dataset_id="6f1c7e1e-57a1-4a55-9c1c-7a0c1d2b8f10",
        preset_id="custom",
        gpu_config=job_pb2.GpuConfig(type="CPU", count=1),
        hyperparameters=job_pb2.Hyperparameters(learning_rate=0.001, batch_size=8, epochs=2, rank=8),
        request_id="key-1",
    )
    return job_pb2.CreateJobRequest(**{**fields, **changes})


def test_the_fingerprint_ignores_the_request_id_and_fields_left_at_their_default():
    assert fingerprint(_request()) == fingerprint(_request(request_id="key-2"))
    assert fingerprint(_request()) == fingerprint(_request(estimated_cost=0))


@pytest.mark.parametrize(
    "changed",
    [
        {"preset_id": "balanced"},
        {"estimated_cost": 1.5},
        {"gpu_config": job_pb2.GpuConfig(type="CPU", count=2)},
        {"hyperparameters": job_pb2.Hyperparameters(learning_rate=0.001, batch_size=8, epochs=3, rank=8)},
    ],
)
def test_any_other_change_is_another_request(changed):
    assert fingerprint(_request(**changed)) != fingerprint(_request())
    with pytest.raises(IdempotencyKeyReused) as info:
        check_replay(fingerprint(_request()), _request(**changed), "job")
    assert list(info.value.details) == ["Idempotency-Key"]


def test_the_same_request_replays_and_so_does_a_job_kept_without_a_fingerprint():
    check_replay(fingerprint(_request()), _request(), "job")
    check_replay(None, _request(preset_id="balanced"), "job")


@pytest.mark.parametrize("request_id", ["k" * 256, "nul\x00", "line\nbreak"])
def test_a_request_id_too_long_or_with_control_characters_is_refused(request_id):
    with pytest.raises(InvalidArgument) as info:
        check_request_id(request_id)
    assert list(info.value.details) == ["request_id"]
