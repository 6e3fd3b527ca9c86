"""The control of the fault-injection suite: with nothing done to the platform,
a job completes and leaves exactly what the fault tests expect of every job."""

from __future__ import annotations

from faultkit import assert_consumers_drain, assert_job_accounted, ready_dataset, start_job, trainer_plans, wait_ended


def test_a_job_without_faults_is_accounted_exactly_once(platform, api, tmp_path):
    job = start_job(api, ready_dataset(api, tmp_path))
    done = wait_ended(api, job)
    assert done["status"] == "completed", done
    assert_job_accounted(platform, api, done)
    assert_consumers_drain(platform)
    # The job counted its progress against the plan its one attempt's recipe reported.
    assert trainer_plans(platform, done) == [done["total_steps"]]
