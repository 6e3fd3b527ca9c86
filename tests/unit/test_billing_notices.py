"""The notification each event gives its user."""

from brightrun.artifact.v1 import artifact_pb2
from brightrun.dataset.v1 import dataset_pb2
from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2

from services.billing_svc.notices import notification_for

USER = "22222222-2222-2222-2222-222222222222"


def _job(**fields) -> job_pb2.Job:
    return job_pb2.Job(
        id="j1",
        user_id=USER,
        dataset_id="d1",
        dataset_name="Support chats",
        gpu_config=job_pb2.GpuConfig(type="H100", count=2),
        **fields,
    )


def _event(**payload) -> events_pb2.Event:
    return events_pb2.Event(event_id="e", user_id=USER, **payload)


def test_dataset_ready_in_the_spec_words():
    dataset = dataset_pb2.Dataset(id="d1", user_id=USER, name="Support chats")
    notice = notification_for(_event(dataset_validated=events_pb2.DatasetValidated(dataset=dataset)))
    assert (notice.type, notice.title, notice.priority) == ("dataset_ready", "Dataset Ready", "medium")
    assert notice.message == 'Your dataset "Support chats" is ready for training'
    assert notice.action_url == "/datasets/d1"
    assert notice.user_id == USER


def test_dataset_error_names_the_first_problem_and_counts_the_rest():
    dataset = dataset_pb2.Dataset(
        id="d1",
        name="Broken",
        validation_errors=[
            dataset_pb2.ValidationError(line=3, error="invalid JSON"),
            dataset_pb2.ValidationError(line=9, error="no assistant turn"),
        ],
    )
    notice = notification_for(_event(dataset_validation_failed=events_pb2.DatasetValidationFailed(dataset=dataset)))
    assert notice.type == "dataset_error" and notice.priority == "high"
    assert notice.message == 'Your dataset "Broken" failed validation: line 3: invalid JSON (and 1 more problems)'
    assert notice.user_id == USER  # from the envelope when the dataset lacks it
    assert notice.metadata == {"dataset_id": "d1", "error_count": 2}


def test_job_lifecycle_notifications():
    queued = notification_for(_event(job_queued=events_pb2.JobQueued(job=_job())))
    assert (queued.type, queued.title, queued.priority) == ("job_queued", "Training Job Queued", "low")
    assert queued.message == 'Your training job for "Support chats" has been queued and will start shortly'
    assert queued.action_url == "/training/jobs/j1"

    started = notification_for(_event(job_started=events_pb2.JobStarted(job=_job())))
    assert started.message == "Your training job has started on 2x H100"

    completed = notification_for(
        _event(job_completed=events_pb2.JobCompleted(job=_job(total_steps=120, current_cost=1, final_cost=3.456)))
    )
    assert completed.type == "job_completed"
    assert completed.message.endswith("completed after 120 steps. Total cost: $3.46")

    failed = notification_for(
        _event(job_failed=events_pb2.JobFailed(job=_job(error_message="out of memory", current_cost=1.2)))
    )
    assert (failed.type, failed.priority) == ("job_failed", "high")
    assert failed.message == "Your training job failed: out of memory. You were charged $1.20 for the time it ran"

    cancelled = notification_for(_event(job_cancelled=events_pb2.JobCancelled(job=_job(current_cost=0.5))))
    assert cancelled.type == "job_cancelled"
    assert cancelled.message.endswith("was cancelled. Cost so far: $0.50")


def test_model_ready_shows_the_stars():
    artifact = artifact_pb2.ModelArtifact(id="a1", user_id=USER, job_id="j1")
    artifact.quality_metrics.update({"overall_score": 4})
    notice = notification_for(_event(artifact_created=events_pb2.ArtifactCreated(artifact=artifact)))
    assert (notice.type, notice.title, notice.priority) == ("model_ready", "Model Ready for Download", "high")
    assert notice.message == "Your trained model is ready. Quality score: 4/5 stars"
    assert notice.action_url == "/models/a1"
    assert notice.metadata == {"artifact_id": "a1", "job_id": "j1"}


def test_events_users_are_not_told_about():
    assert notification_for(_event(job_progressed=events_pb2.JobProgressed(job=_job()))) is None
    assert notification_for(events_pb2.Event(event_id="e")) is None


def test_a_notice_is_keyed_by_what_it_tells_not_by_the_event():
    started = notification_for(_event(job_started=events_pb2.JobStarted(job=_job())))
    again = notification_for(events_pb2.Event(event_id="other", user_id=USER,
                                              job_started=events_pb2.JobStarted(job=_job())))
    assert started.key == again.key == "job:j1:job_started"
    completed = notification_for(_event(job_completed=events_pb2.JobCompleted(job=_job())))
    assert completed.key == "job:j1:job_completed"
    model = artifact_pb2.ModelArtifact(id="a1", user_id=USER, job_id="j1")
    assert notification_for(_event(artifact_created=events_pb2.ArtifactCreated(artifact=model))).key == (
        "job:j1:model_ready"
    )


def test_each_validation_of_a_dataset_is_its_own_notice():
    def ready(seconds: int):
        dataset = dataset_pb2.Dataset(id="d1", user_id=USER, name="Support chats")
        dataset.validated_at.FromSeconds(seconds)
        return notification_for(_event(dataset_validated=events_pb2.DatasetValidated(dataset=dataset)))

    assert ready(100).key == ready(100).key != ready(200).key


def test_a_job_waiting_for_an_agent_tells_its_owner_which_gpus_it_waits_for_once():
    waiting = events_pb2.JobWaitingForAgent(job=_job(), waited_seconds=16 * 60 + 5)
    notice = notification_for(_event(job_waiting_for_agent=waiting))
    assert (notice.type, notice.title, notice.priority) == ("job_waiting", "No Trainer Agent Yet", "medium")
    assert notice.message == ('Your training job for "Support chats" has been queued for 16 minutes: no trainer '
                              "agent has taken it. It waits for an agent with 2x H100.")
    assert notice.metadata == {"job_id": "j1", "dataset_id": "d1", "gpu_type": "H100", "gpu_count": 2}
    assert notice.key == "job:j1:job_waiting" and notice.user_id == USER
