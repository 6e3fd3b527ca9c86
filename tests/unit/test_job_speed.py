"""Measured training speed (services/job_svc/speed.py) and the estimate it calibrates."""

from datetime import datetime, timedelta, timezone

import pytest

from services.job_svc.catalogue import GPU_TYPES
from services.job_svc.estimate import estimate
from services.job_svc.speed import FinishedRun, MeasuredSpeed, blend, measure, size_class, speed_key, table_speedup

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _run(**changes) -> FinishedRun:
    # 10 steps of 100 tokens; the attempt starts at T0, the first point (step 1) 2 s in, the last (step 10)
    # 9 s later, completed 1 s after.
    values = dict(planned_tokens=1000, total_steps=10, resumed_from_step=0, first_step=1, first_at=T0 + timedelta(seconds=2),
                  last_step=10, last_at=T0 + timedelta(seconds=11), attempt_started_at=T0,
                  completed_at=T0 + timedelta(seconds=12))
    return FinishedRun(**{**values, **changes})


def test_the_speed_is_the_tokens_between_the_first_and_last_points_over_their_time():
    measured = measure(_run())
    assert measured.tokens_per_second == pytest.approx(900 / 9)
    # 12 s in all, of which 1000 tokens at 100 tokens/s are 10 s: 2 s load the model, save and report.
    assert measured.overhead_seconds == pytest.approx(2)


def test_an_identical_job_is_predicted_its_measured_duration():
    run = _run(completed_at=T0 + timedelta(seconds=30))
    assert measure(run).duration_seconds(run.planned_tokens) == pytest.approx(30)


def test_a_larger_job_adds_time_only_for_its_extra_tokens():
    measured = measure(_run(completed_at=T0 + timedelta(seconds=30)))
    assert measured.duration_seconds(3000) - measured.duration_seconds(1000) == pytest.approx(20)


def test_a_resumed_attempt_is_measured_on_the_steps_it_trained_and_its_own_time():
    # Resumed after step 6 (a checkpoint): steps 7 to 10, 400 tokens, the first point (step 7) 2 s after the
    # attempt's start, the last (step 10) 3 s later, completed 1 s after: 300 tokens in 3 s.
    run = _run(resumed_from_step=6, first_step=7, last_at=T0 + timedelta(seconds=5),
               completed_at=T0 + timedelta(seconds=6))
    measured = measure(run)
    assert measured.tokens_per_second == pytest.approx(100)
    # 6 s in all, of which its 400 tokens are 4 s: 2 s overhead, as a fresh attempt of the same speed has.
    assert measured.overhead_seconds == pytest.approx(2)
    assert measured.overhead_seconds == pytest.approx(measure(_run()).overhead_seconds)


@pytest.mark.parametrize("changes", [{"last_step": 1}, {"last_at": T0 + timedelta(seconds=2)}, {"total_steps": 0}])
def test_a_run_whose_points_cannot_tell_a_speed_measures_nothing(changes):
    assert measure(_run(**changes)) is None


def test_the_newest_run_counts_half():
    assert blend(MeasuredSpeed(100, 10), MeasuredSpeed(200, 20)) == MeasuredSpeed(150, 15)
    assert blend(None, MeasuredSpeed(200, 20)) == MeasuredSpeed(200, 20)


def test_runs_are_grouped_by_gpu_model_size_and_sequence_length_bucket():
    assert speed_key("H100", 2, 7_000_000_000, 2048) == "H100/2/<=8B/2048"
    assert speed_key("H100", 2, 7_000_000_000, 1500) == "H100/2/<=8B/2048"
    assert speed_key("H100", 2, 7_000_000_000, 2049) == "H100/2/<=8B/4096"
    assert speed_key("CPU", 1, None, 512) == "CPU/1/unknown/512"
    assert size_class(500_000_000) == "<=1B" and size_class(70_000_000_000) == "<=80B"


def test_the_table_trains_smaller_models_faster():
    assert table_speedup(None) == table_speedup(7_000_000_000) == 1.0
    assert table_speedup(1_000_000_000) > 1.0 > table_speedup(13_000_000_000)
    table = estimate(GPU_TYPES["H100"], 2, {"conversations": 1000}, 200_000, 8, 3, speedup=2.0)
    assert table.throughput_tokens_per_sec == 8800 and table.basis == "table"


def test_a_measured_speed_replaces_the_table_and_its_fixed_overheads():
    measured = MeasuredSpeed(tokens_per_second=400, overhead_seconds=5)
    # 6 steps of 8 conversations of 100 tokens (4800 over all 48): 4800 tokens at 400 tokens/s, plus 5 s.
    result = estimate(GPU_TYPES["CPU"], 1, {"conversations": 48}, 4800, 8, 1, measured=measured)
    assert result.basis == "measured" and result.trained_tokens == 4800
    assert result.estimated_duration_seconds == pytest.approx(17)
    assert result.throughput_tokens_per_sec == 400
