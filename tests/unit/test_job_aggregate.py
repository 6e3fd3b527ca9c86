"""The Job aggregate without I/O: every transition, legal and illegal, and every number it keeps."""

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from services.common.errors import FailedPrecondition
from services.job_svc import job as jobs, measures
from services.job_svc.job import MAX_RETRIES, Job

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
STATUSES = ("queued", "initializing", "running", "completed", "failed", "cancelled")
LEGAL = {
    ("queued", "initializing"), ("queued", "failed"), ("queued", "cancelled"),
    ("initializing", "running"), ("initializing", "queued"), ("initializing", "failed"), ("initializing", "cancelled"),
    ("running", "completed"), ("running", "queued"), ("running", "failed"), ("running", "cancelled"),
}


def _job(status="queued", **fields) -> Job:
    """A job as loaded: $8.40 an hour, 10 planned steps."""
    row = dict(
        id="j", status=status, current_stage=status, attempt=0, retry_count=0, total_steps=10, current_step=0,
        current_epoch=0, progress=0.0, gpu_config={"type": "H100", "count": 2, "cost_per_gpu_hour": 4.2},
        current_cost=0.0, final_cost=None, started_at=None, completed_at=None, estimated_completion_at=None,
        error_message=None, current_metrics=None, batch_layout=None, pace_step=None, pace_since=None,
        attempt_started_at=None, resumed_from_step=0, waiting_since=T0, waiting_alerted_at=None, queue_wait_seconds=None,
    )
    row.update(fields)
    return Job.from_row(SimpleNamespace(**row))


@pytest.mark.parametrize("current", STATUSES)
@pytest.mark.parametrize("target", STATUSES)
def test_the_state_machine_allows_exactly_its_moves(current, target):
    assert jobs.can_move(current, target) is ((current, target) in LEGAL)
    if (current, target) not in LEGAL:
        with pytest.raises(FailedPrecondition):
            jobs.check_move(current, target)


def test_the_numbers():
    assert measures.progress(25, 100) == 25.0
    assert measures.progress(1, 3) == 33.33
    assert measures.progress(150, 100) == 100.0
    assert measures.progress(5, 0) == 0.0
    assert measures.hourly_rate({"type": "H100", "count": 2, "cost_per_gpu_hour": 4.2}) == 8.4
    assert measures.cost_so_far(T0, T0 + timedelta(minutes=30), 8.4) == 4.2
    assert measures.cost_so_far(None, T0, 8.4) == 0.0
    assert measures.cost_so_far(T0, T0 - timedelta(minutes=1), 8.4) == 0.0  # a clock behind the start costs nothing


def test_the_eta_is_the_pace_between_points_not_since_the_start():
    # Step 1 done at T0, step 5 at T0+4 min: a minute a step, 5 steps left.
    at = T0 + timedelta(minutes=4)
    assert measures.estimated_completion(T0, 1, at, 5, 10) == at + timedelta(minutes=5)
    assert measures.estimated_completion(T0, 1, T0, 1, 10) is None  # one point times no step
    assert measures.estimated_completion(None, None, at, 5, 10) is None
    assert measures.estimated_completion(T0, 1, at, 10, 10) == at  # the last step: done now


def test_a_steady_pace_gives_one_completion_time_and_a_remaining_time_that_falls():
    job = _job()
    job.start_attempt(1, None, T0)
    etas = []
    for step in range(1, 11):
        at = T0 + timedelta(seconds=30 * step)
        job.record_point(step, 1, {}, at, at)
        etas.append((at, job.estimated_completion_at))
    assert etas[0][1] is None
    assert {eta for _, eta in etas[1:]} == {T0 + timedelta(seconds=300)}
    remaining = [eta - at for at, eta in etas[1:]]
    assert remaining == sorted(remaining, reverse=True) and remaining[-1] == timedelta(0)


def test_an_attempt_start_counts_a_redelivery_as_a_retry():
    job = _job()
    # Taken from the queue: watchers are told at once, before the model loads.
    assert job.start_attempt(1, {"micro_batch_size": 4}, T0) == ["job.initializing"]
    assert (job.status, job.current_stage, job.batch_layout) == ("initializing", "initializing", {"micro_batch_size": 4})
    assert job.attempt_started_at == T0 and job.queue_wait_seconds == 0.0  # _job() waits since T0
    # The agent died twice without a word.
    assert job.start_attempt(3, None, T0 + timedelta(minutes=1)) == []  # initializing already: nothing new to tell
    assert (job.attempt, job.retry_count) == (3, 2)
    assert job.changes["attempt_started_at"] == T0 + timedelta(minutes=1)  # a measured duration counts from the last
    assert job.changes["status"] == "initializing" and job.changes["retry_count"] == 2


def test_progress_counts_against_the_plan_the_recipe_reported_not_the_jobs_estimate():
    job = _job()  # the estimate planned 10 steps
    job.start_attempt(1, None, T0)
    assert job.plan_attempt(1, 12, 0) == []
    job.record_point(6, 1, {}, T0, T0)
    assert (job.total_steps, job.current_step, job.progress) == (12, 6, 50.0)


def test_a_resumed_attempts_plan_says_where_it_resumed_and_a_stale_plan_changes_nothing():
    job = _job("running", current_step=6, attempt=1)
    job.start_attempt(2, None, T0)
    assert job.resumed_from_step == 0
    job.plan_attempt(2, 12, 5)
    assert (job.total_steps, job.resumed_from_step, job.progress) == (12, 5, 50.0)
    job.plan_attempt(1, 20, 0)  # the first attempt's plan, delivered late
    assert (job.total_steps, job.resumed_from_step) == (12, 5)
    job.start_attempt(3, None, T0)
    assert job.resumed_from_step == 0  # until the new attempt's plan says otherwise


def test_an_ended_job_takes_no_plan():
    with pytest.raises(FailedPrecondition):
        _job("completed").plan_attempt(1, 12, 0)


def test_the_first_point_starts_the_job_once():
    job = _job("initializing")
    assert job.record_point(1, 1, {"training_loss": 2.0}, T0, T0) == ["job.started", "job.progressed"]
    assert (job.status, job.current_stage, job.started_at) == ("running", "training", T0)
    assert (job.current_step, job.current_epoch, job.progress, job.current_metrics) == (1, 1, 10.0, {"training_loss": 2.0})
    assert job.record_point(2, 1, {}, T0 + timedelta(seconds=1), T0) == ["job.progressed"]


def test_a_point_reaching_a_queued_job_passes_through_initializing():
    job = _job()
    assert job.record_point(1, 1, {}, T0, T0) == ["job.started", "job.progressed"]
    assert job.status == "running"


def test_a_requeued_job_runs_again_without_a_second_start_and_times_its_pace_afresh():
    job = _job("queued", started_at=T0, current_step=4, pace_step=1, pace_since=T0)
    job.start_attempt(2, None, T0)
    assert (job.pace_step, job.pace_since) == (None, None)
    resumed = T0 + timedelta(hours=1)
    assert job.record_point(5, 1, {}, resumed, resumed) == ["job.progressed"]
    assert job.status == "running" and job.started_at == T0
    # The hour the job spent queued is no step's time: the new attempt's first point has no pace yet.
    assert (job.pace_step, job.pace_since, job.estimated_completion_at) == (5, resumed, None)


def test_cost_so_far_runs_from_the_start_at_the_jobs_rate():
    job = _job("running", started_at=T0, current_step=1, pace_step=1, pace_since=T0)
    job.record_point(2, 1, {}, T0 + timedelta(minutes=30), T0 + timedelta(minutes=30))
    assert job.current_cost == 4.2


def test_a_late_point_of_an_earlier_step_moves_nothing_back():
    job = _job("running", started_at=T0, current_step=5, progress=50.0)
    assert job.record_point(3, 1, {}, T0, T0) == []
    assert (job.current_step, job.progress, job.changes) == (5, 50.0, {})


def test_a_validation_point_of_the_current_step_progresses_again():
    job = _job("running", started_at=T0, current_step=5, progress=50.0)
    assert job.record_point(5, 1, {"validation_loss": 0.5}, T0, T0) == ["job.progressed"]
    assert job.current_metrics == {"validation_loss": 0.5}


def test_completion_shows_every_number_final():
    job = _job("running", started_at=T0, current_step=9)
    now = T0 + timedelta(minutes=30)
    assert job.complete(None, now) == ["job.completed"]
    assert (job.status, job.current_stage, job.progress, job.current_step) == ("completed", "completed", 100.0, 10)
    assert (job.completed_at, job.estimated_completion_at, job.current_cost, job.final_cost) == (now, now, 4.2, 4.2)


def test_an_early_stop_completes_at_the_step_it_reached():
    job = _job("running", started_at=T0)
    job.complete(4, T0)
    assert (job.current_step, job.total_steps, job.progress) == (4, 10, 100.0)


def test_a_job_completed_before_its_first_point_arrived_still_moves_legally():
    job = _job("initializing")
    assert job.complete(None, T0) == ["job.completed"]
    assert (job.status, job.started_at, job.final_cost) == ("completed", T0, 0.0)


def test_a_retryable_failure_requeues_until_the_retries_are_spent():
    job = _job("running", started_at=T0)
    for retry in range(1, MAX_RETRIES + 1):
        assert job.attempt_failed("node lost", True, False, T0) == []
        assert (job.status, job.current_stage, job.retry_count, job.error_message) == ("queued", "retrying", retry,
                                                                                     "node lost")
        job.start_attempt(retry + 1, None, T0)
    now = T0 + timedelta(minutes=30)
    assert job.attempt_failed("node lost", True, False, now) == ["job.failed"]
    assert (job.status, job.retry_count, job.completed_at, job.final_cost) == ("failed", MAX_RETRIES, now, 4.2)


def test_a_failure_reported_to_a_queued_job_counts_its_attempt():
    job = _job()
    job.attempt_failed("node lost", True, False, T0)
    assert (job.status, job.retry_count) == ("queued", 1)


def test_a_user_error_fails_at_once_with_its_reason():
    job = _job("initializing")
    assert job.attempt_failed("rank too large", False, False, T0) == ["job.failed"]
    assert (job.status, job.error_message, job.retry_count, job.final_cost) == ("failed", "rank too large", 0, 0.0)


def test_an_attempt_stopped_by_a_cancel_changes_nothing():
    for status in ("running", "cancelled"):
        job = _job(status)
        assert job.attempt_failed("cancelled", False, True, T0) == [] and job.changes == {}


def test_cancel_ends_a_job_that_has_not_ended_and_bills_its_time():
    for status in ("queued", "initializing", "running"):
        job = _job(status, started_at=T0 if status == "running" else None)
        now = T0 + timedelta(minutes=30)
        assert job.cancel(now) == ["job.cancelled"]
        expected = 4.2 if status == "running" else 0.0
        assert (job.status, job.completed_at, job.current_cost, job.final_cost) == ("cancelled", now, expected, expected)


def test_abandoning_fails_the_job_at_the_cost_last_reported():
    job = _job("running", started_at=T0, current_cost=1.5)
    assert job.abandon("agents kept dying", T0 + timedelta(hours=5)) == ["job.failed"]
    assert (job.status, job.error_message, job.final_cost, job.current_cost) == ("failed", "agents kept dying", 1.5, 1.5)


@pytest.mark.parametrize("status", sorted(jobs.TERMINAL))
@pytest.mark.parametrize(
    "report",
    [
        lambda j: j.start_attempt(2, None, T0),
        lambda j: j.record_point(3, 1, {}, T0, T0),
        lambda j: j.complete(None, T0),
        lambda j: j.attempt_failed("late", True, False, T0),
        lambda j: j.attempt_failed("late", False, False, T0),
        lambda j: j.abandon("late", T0),
        lambda j: j.cancel(T0),
    ],
    ids=["start", "point", "complete", "retryable failure", "failure", "abandon", "cancel"],
)
def test_an_ended_job_takes_no_move_and_changes_nothing(status, report):
    job = _job(status)
    with pytest.raises(FailedPrecondition):
        report(job)
    assert job.status == status and job.changes == {}


def test_the_clock_brings_a_running_jobs_cost_up_to_now_and_nothing_else_ticks():
    job = _job("running", started_at=T0, current_cost=1.0)
    assert job.tick(T0 + timedelta(minutes=30)) == ["job.progressed"]
    assert job.current_cost == 4.2 and job.changes == {"current_cost": 4.2}  # $8.40 an hour
    for status in ("queued", "initializing", "completed", "failed", "cancelled"):
        assert _job(status, started_at=T0).tick(T0 + timedelta(hours=1)) == []


def test_a_job_that_waited_too_long_in_the_queue_says_so_once_and_only_while_queued():
    job = _job()
    assert job.waited_too_long(T0) == ["job.waiting_for_agent"]
    assert job.waiting_alerted_at == T0
    assert job.waited_too_long(T0 + timedelta(minutes=1)) == []
    assert _job("initializing").waited_too_long(T0) == []


def test_a_job_handed_back_for_a_retry_waits_again_from_then():
    job = _job("running", waiting_since=T0 - timedelta(hours=1))
    job.attempt_failed("agent stopping", retryable=True, cancelled=False, now=T0)
    assert (job.status, job.waiting_since) == ("queued", T0)


def test_the_queue_wait_is_recorded_when_an_agent_takes_the_job_and_a_retry_counts_its_own_wait():
    job = _job()  # queued since T0
    job.start_attempt(1, None, T0 + timedelta(seconds=3))
    assert job.changes["queue_wait_seconds"] == 3.0
    job.attempt_failed("the node went away", True, False, T0 + timedelta(minutes=1))
    job.start_attempt(2, None, T0 + timedelta(minutes=1, seconds=5))
    assert job.queue_wait_seconds == 5.0  # from the requeue, not from the first queueing
    job.start_attempt(3, None, T0 + timedelta(minutes=9))  # a redelivery finds it initializing: no new wait
    assert job.queue_wait_seconds == 5.0
