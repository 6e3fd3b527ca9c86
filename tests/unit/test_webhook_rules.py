"""Webhook rules: the Standard Webhooks signature, the secret, which URLs and
event types an endpoint may have, and the retry schedule."""

import base64
from datetime import date, datetime, timedelta, timezone

import pytest

from brightrun.artifact.v1 import artifact_pb2
from brightrun.dataset.v1 import dataset_pb2
from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2
from services.billing_svc.budget import Standing, threshold_notices
from services.billing_svc.notices import notification_for
from services.billing_svc.webhooks import (
    EVENT_TYPES,
    WEBHOOK_EVENT_TYPES,
    RetryPolicy,
    event_type_problems,
    new_secret,
    signature,
    url_problems,
)


def test_the_signature_matches_the_standard_webhooks_test_vector():
    # From the Standard Webhooks reference libraries' tests.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    sig = signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}')
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_a_secret_is_whsec_and_base64_of_32_fresh_random_bytes():
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_") and len(base64.b64decode(first.removeprefix("whsec_"))) == 32
    assert first != second


@pytest.mark.parametrize(
    ("url", "allow_http", "fragment"),
    [
        ("", False, "Required"),
        ("http://127.0.0.1:9000/h", False, "BRIGHTRUN_WEBHOOKS_ALLOW_HTTP"),
        ("ftp://example.com/h", True, "https or http"),
        ("https:///path", False, "host"),
        ("https://user:pw@example.com/h", False, "credentials"),
        ("https://example.com/a b", False, "spaces"),
        ("https://example.com:99999/h", False, "Is not a URL"),
        ("https://example.com/" + "a" * 2048, False, "2048"),
    ],
)
def test_an_unusable_url_is_refused_saying_why(url, allow_http, fragment):
    [problem] = url_problems(url, allow_http=allow_http)
    assert fragment in problem


def test_https_always_passes_and_plain_http_only_when_allowed():
    assert url_problems("https://hooks.example.com:8443/brightrun?x=1", allow_http=False) == []
    assert url_problems("http://localhost:9000/h", allow_http=True) == []


def test_unknown_event_types_are_named_with_the_known_ones():
    assert event_type_problems(["job.succeeded", "budget.alert"]) == []
    assert "one or more" in event_type_problems([])[0]
    [problem] = event_type_problems(["job.succeeded", "job.exploded"])
    assert "'job.exploded'" in problem and all(t in problem for t in WEBHOOK_EVENT_TYPES)


def test_each_webhook_event_type_is_sent_for_the_notifications_billing_writes():
    payloads = {
        "dataset_validated": events_pb2.DatasetValidated(dataset=dataset_pb2.Dataset(id="d")),
        "dataset_validation_failed": events_pb2.DatasetValidationFailed(dataset=dataset_pb2.Dataset(id="d")),
        "job_completed": events_pb2.JobCompleted(job=job_pb2.Job(id="j")),
        "job_failed": events_pb2.JobFailed(job=job_pb2.Job(id="j")),
        "job_cancelled": events_pb2.JobCancelled(job=job_pb2.Job(id="j")),
        "artifact_created": events_pb2.ArtifactCreated(artifact=artifact_pb2.ModelArtifact(id="a")),
    }
    told = {name: notification_for(events_pb2.Event(**{name: payload})).type for name, payload in payloads.items()}
    spent = Standing(month=date(2026, 12, 1), budget_cents=100, spent_cents=100, committed_cents=0)
    budget = {notice.type for notice in threshold_notices("u", spent)}
    sent = {EVENT_TYPES[t] for t in [*told.values(), *budget]}
    assert sent == set(WEBHOOK_EVENT_TYPES) == {
        "job.succeeded", "job.failed", "job.cancelled", "dataset.ready", "dataset.failed", "model.ready", "budget.alert"
    }
    queued = notification_for(events_pb2.Event(job_queued=events_pb2.JobQueued(job=job_pb2.Job(id="j"))))
    assert queued.type not in EVENT_TYPES


def test_retries_back_off_from_the_first_delay_up_to_hourly_until_the_window_ends():
    policy = RetryPolicy(first_retry_seconds=5, window_seconds=24 * 3600)
    queued = datetime(2026, 12, 1, tzinfo=timezone.utc)
    delays = [(policy.next_attempt(n, queued, queued) - queued).total_seconds() for n in range(1, 9)]
    assert delays == [5, 30, 120, 600, 1800, 3600, 3600, 3600]
    late = queued + timedelta(hours=23, minutes=30)
    assert policy.next_attempt(20, queued, late) is None
    assert policy.next_attempt(2, queued, late) == late + timedelta(seconds=30)
