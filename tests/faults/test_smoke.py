from faultkit import ready_dataset, start_job, wait_ended, assert_job_accounted, assert_consumers_drain

def test_smoke(platform, api, tmp_path):
    job = start_job(api, ready_dataset(api, tmp_path))
    done = wait_ended(api, job)
    assert done["status"] == "completed", done
    assert_job_accounted(api, done)
    assert_consumers_drain(platform)
