"""billing_svc against real PostgreSQL and NATS JetStream: notifications and
cost records from platform events, once each; the cost dashboard; reading
and marking notifications, scoped by user.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime, timedelta, timezone

import grpc
import pytest
import pytest_asyncio
from brightrun.artifact.v1 import artifact_pb2
from brightrun.billing.v1 import billing_pb2, billing_pb2_grpc
from brightrun.dataset.v1 import dataset_pb2
from brightrun.events.v1 import events_pb2
from brightrun.job.v1 import job_pb2

from services.billing_svc.handlers import BillingHandlers
from services.billing_svc.server import start
from services.common import events
from services.common.gpu_catalogue import DEFAULT_PATH, load
from services.common.grpc import as_user, channel, create_server

JOURNEY = {"dataset_ready", "job_queued", "job_started", "job_completed", "model_ready"}


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def service(settings):
    runtime = await start(settings, address="127.0.0.1:0")
    async with channel(f"127.0.0.1:{runtime.port}") as ch:
        yield billing_pb2_grpc.BillingServiceStub(ch)
    await runtime.stop()


def _job(user: str, **fields) -> job_pb2.Job:
    job = job_pb2.Job(
        id=str(uuid.uuid4()),
        user_id=user,
        dataset_id=str(uuid.uuid4()),
        dataset_name="Support chats",
        gpu_config=job_pb2.GpuConfig(type="H100", count=2, cost_per_gpu_hour=3.0),
        total_steps=12,
        **fields,
    )
    job.started_at.FromDatetime(datetime.now(timezone.utc) - timedelta(hours=1))
    return job


def _journey(user: str) -> tuple[job_pb2.Job, list[events_pb2.Event]]:
    """The events of one dataset trained into one model."""
    dataset = dataset_pb2.Dataset(id=str(uuid.uuid4()), user_id=user, name="Support chats")
    dataset.validated_at.FromDatetime(datetime.now(timezone.utc))
    job = _job(user, current_cost=5.9, final_cost=6.0)
    job.completed_at.FromDatetime(datetime.now(timezone.utc))
    manifest = artifact_pb2.AdapterManifest(files=[artifact_pb2.ArtifactFile(name="a", size_bytes=2048)])
    artifact = artifact_pb2.ModelArtifact(id=str(uuid.uuid4()), user_id=user, job_id=job.id)
    artifact.quality_metrics.update({"overall_score": 4})

    def event(type_, subject, **payload):
        return events.new_event(type_, producer="test", user_id=user, subject_id=subject, **payload)

    return job, [
        event("dataset.validated", dataset.id, dataset_validated=events_pb2.DatasetValidated(dataset=dataset)),
        event("job.queued", job.id, job_queued=events_pb2.JobQueued(job=job)),
        event("job.started", job.id, job_started=events_pb2.JobStarted(job=job)),
        event("job.completed", job.id, job_completed=events_pb2.JobCompleted(job=job, manifest=manifest)),
        event("artifact.created", artifact.id, artifact_created=events_pb2.ArtifactCreated(artifact=artifact)),
    ]


def _fresh(event: events_pb2.Event) -> events_pb2.Event:
    """The same payload under a new event id."""
    again = events_pb2.Event()
    again.CopyFrom(event)
    again.event_id = str(uuid.uuid4())
    return again


async def _publish(js, event: events_pb2.Event, msg_id: str | None = None) -> None:
    await events.publish(js, event.type, event.SerializeToString(), msg_id or event.event_id)


async def _notifications(service, user: str, *, count: int, **request) -> billing_pb2.ListNotificationsResponse:
    """The user's notifications once there are ``count`` of them (bounded wait)."""
    deadline = time.monotonic() + 20
    while True:
        response = await service.ListNotifications(
            billing_pb2.ListNotificationsRequest(**request), metadata=as_user(user)
        )
        if len(response.notifications) >= count or time.monotonic() > deadline:
            assert len(response.notifications) == count
            return response
        await asyncio.sleep(0.1)


async def test_journey_notifies_and_records_costs_once(service, nats):
    nc, js = nats
    user = str(uuid.uuid4())
    job, journey = _journey(user)
    recorded: list[events_pb2.Event] = []

    async def collect(msg):
        event = events_pb2.Event.FromString(msg.data)
        if event.user_id == user:
            recorded.append(event)

    sub = await nc.subscribe("billing.cost_recorded", cb=collect)
    for event in journey:
        await _publish(js, event)
    journey_notes = await _notifications(service, user, count=5)
    assert {n.type for n in journey_notes.notifications} == JOURNEY
    assert journey_notes.unread_count == 5
    model_ready = next(n for n in journey_notes.notifications if n.type == "model_ready")
    assert model_ready.message == "Your trained model is ready. Quality score: 4/5 stars"
    assert model_ready.action_url == f"/models/{journey[-1].subject_id}"

    # Redelivered envelopes under new message ids write nothing new. Each
    # stream has its own consumer, so a later event on every stream shows
    # that the repeats before it were handled.
    for event in journey:
        await _publish(js, event, msg_id=str(uuid.uuid4()))
    cancelled = _job(user, current_cost=0.0)
    revalidated = _fresh(journey[0])
    revalidated.dataset_validated.dataset.validated_at.FromDatetime(datetime.now(timezone.utc) + timedelta(hours=1))
    other_model = artifact_pb2.ModelArtifact(id=str(uuid.uuid4()), user_id=user, job_id=cancelled.id)
    later = [
        # The same happenings again under new event ids tell the user nothing new...
        *(_fresh(event) for event in journey),
        # ...but a new validation of the dataset, and other jobs' events, do.
        revalidated,
        events.new_event(
            "job.cancelled",
            producer="test",
            user_id=user,
            subject_id=cancelled.id,
            job_cancelled=events_pb2.JobCancelled(job=cancelled),
        ),
        events.new_event(
            "artifact.created",
            producer="test",
            user_id=user,
            subject_id=other_model.id,
            artifact_created=events_pb2.ArtifactCreated(artifact=other_model),
        ),
    ]
    for event in later:
        await _publish(js, event)
    notes = await _notifications(service, user, count=8)
    again = ["dataset_ready", "job_cancelled", "model_ready"]
    assert sorted(n.type for n in notes.notifications) == sorted([*JOURNEY, *again])

    # ...but the job is billed once, and the cancelled job cost nothing.
    records = (await service.ListCostRecords(billing_pb2.ListCostRecordsRequest(), metadata=as_user(user))).cost_records
    assert sorted((r.cost_type, r.amount, r.job_id) for r in records) == [
        ("compute", 6.0, job.id),
        ("storage", 0.5, job.id),
    ]
    for job_id, count in ((job.id, 2), (cancelled.id, 0)):
        only = await service.ListCostRecords(billing_pb2.ListCostRecordsRequest(job_id=job_id), metadata=as_user(user))
        assert len(only.cost_records) == count
    compute = next(r for r in records if r.cost_type == "compute")
    assert compute.details["gpu_type"] == "H100" and compute.details["hourly_rate"] == 6.0
    assert compute.billing_period == datetime.now(timezone.utc).date().replace(day=1).isoformat()

    summary = await service.GetCostSummary(billing_pb2.GetCostSummaryRequest(period="week"), metadata=as_user(user))
    assert (summary.total, summary.record_count, summary.period) == (6.5, 2, "week")
    assert dict(summary.by_type) == {"compute": 6.0, "storage": 0.5}
    assert [(d.date, d.amount) for d in summary.by_day] == [(datetime.now(timezone.utc).date().isoformat(), 6.5)]
    assert sorted(r.amount for r in summary.records) == [0.5, 6.0]
    today = datetime.now(timezone.utc).date()
    days = {"start_date": today.isoformat(), "end_date": today.isoformat()}
    dated = await service.GetCostSummary(billing_pb2.GetCostSummaryRequest(**days), metadata=as_user(user))
    assert (dated.total, dated.period, len(dated.records)) == (6.5, "custom", 2)
    before = (today - timedelta(days=3)).isoformat()
    earlier = billing_pb2.GetCostSummaryRequest(start_date=before, end_date=before)
    assert (await service.GetCostSummary(earlier, metadata=as_user(user))).record_count == 0

    for _ in range(100):
        if len(recorded) == 2:
            break
        await asyncio.sleep(0.1)
    await sub.unsubscribe()
    assert sorted(e.cost_recorded.cost_record.id for e in recorded) == sorted(r.id for r in records)


async def test_stopped_jobs_record_the_cost_so_far(service, nats):
    _, js = nats
    user = str(uuid.uuid4())
    failed = _job(user, current_cost=1.25, error_message="CUDA out of memory")
    await _publish(
        js,
        events.new_event(
            "job.failed",
            producer="test",
            user_id=user,
            subject_id=failed.id,
            job_failed=events_pb2.JobFailed(job=failed),
        ),
    )
    [note] = (await _notifications(service, user, count=1)).notifications
    assert (note.type, note.priority) == ("job_failed", "high")
    assert "CUDA out of memory" in note.message
    [record] = (
        await service.ListCostRecords(billing_pb2.ListCostRecordsRequest(), metadata=as_user(user))
    ).cost_records
    assert (record.cost_type, record.amount, record.job_id) == ("compute", 1.25, failed.id)


async def test_reading_notifications_is_scoped_to_their_owner(service, nats):
    _, js = nats
    owner, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    for event in _journey(owner)[1][:3]:
        await _publish(js, event)
    notes = await _notifications(service, owner, count=3)
    first = notes.notifications[0]

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.MarkNotificationRead(
            billing_pb2.MarkNotificationReadRequest(notification_id=first.id), metadata=as_user(stranger)
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await _notifications(service, stranger, count=0)).unread_count == 0

    marked = await service.MarkNotificationRead(
        billing_pb2.MarkNotificationReadRequest(notification_id=first.id), metadata=as_user(owner)
    )
    assert marked.notification.read
    unread = await _notifications(service, owner, count=2, unread_only=True)
    assert first.id not in {n.id for n in unread.notifications} and unread.unread_count == unread.total_size == 2

    page = await _notifications(service, owner, count=2, page_size=2)
    assert page.next_page_token and page.total_size == 3
    rest = await _notifications(service, owner, count=1, page_size=2, page_token=page.next_page_token)
    assert {n.id for n in [*page.notifications, *rest.notifications]} == {n.id for n in notes.notifications}

    done = await service.MarkAllNotificationsRead(
        billing_pb2.MarkAllNotificationsReadRequest(), metadata=as_user(owner)
    )
    assert done.updated_count == 2
    assert (await _notifications(service, owner, count=0, unread_only=True)).unread_count == 0


async def test_bad_requests_name_the_field(service):
    user = str(uuid.uuid4())
    requests = [
        service.GetCostSummary(billing_pb2.GetCostSummaryRequest(period="decade"), metadata=as_user(user)),
        service.ListCostRecords(billing_pb2.ListCostRecordsRequest(job_id="nope"), metadata=as_user(user)),
        service.ListNotifications(billing_pb2.ListNotificationsRequest(page_size=-1), metadata=as_user(user)),
    ]
    for call in requests:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await service.MarkNotificationRead(
            billing_pb2.MarkNotificationReadRequest(notification_id="x"), metadata=as_user(user)
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


async def test_get_prices_serves_the_configured_gpu_catalogue(service):
    reply = await service.GetPrices(billing_pb2.GetPricesRequest(), metadata=as_user(str(uuid.uuid4())))
    catalogue = load(DEFAULT_PATH)  # the file this process was configured with (no BRIGHTRUN_GPU_CATALOGUE)
    assert {g.type: (g.memory_gb, g.price_per_gpu_hour) for g in reply.gpu_types} == {
        g.type: (g.memory_gb, g.price_per_gpu_hour) for g in catalogue.gpus.values()
    }
    assert reply.storage_price_per_model == catalogue.storage_price_per_model == 0.5
    assert [g.type for g in reply.gpu_types] == ["A100-80GB", "A100-40GB", "H100", "V100-32GB", "CPU"]


def _job_event(user: str, job: job_pb2.Job, kind: str, at: datetime | None = None) -> events_pb2.Event:
    payload = {"job_progressed": events_pb2.JobProgressed, "job_queued": events_pb2.JobQueued,
               "job_cancelled": events_pb2.JobCancelled, "job_completed": events_pb2.JobCompleted}[kind]
    event = events.new_event(
        "job." + kind.removeprefix("job_"), producer="test", user_id=user, subject_id=job.id, **{kind: payload(job=job)}
    )
    if at is not None:
        event.occurred_at.FromDatetime(at)
    return event


async def _cost_records(service, user: str, done, job_id: str = "") -> list[billing_pb2.CostRecord]:
    """The user's cost records once ``done(records)`` holds (bounded wait)."""
    deadline = time.monotonic() + 20
    while True:
        request = billing_pb2.ListCostRecordsRequest(job_id=job_id, page_size=100)
        records = list((await service.ListCostRecords(request, metadata=as_user(user))).cost_records)
        if done(records):
            return records
        assert time.monotonic() < deadline, f"cost records never settled: {records}"
        await asyncio.sleep(0.1)


def _cents(records) -> int:
    return sum(round(r.amount * 100) for r in records if r.cost_type == "compute")


async def test_costs_accrue_while_a_job_runs_and_sum_exactly_to_its_final_cost(service, nats):
    _, js = nats
    user = str(uuid.uuid4())
    start = datetime.now(timezone.utc)
    running = [_job_event(user, _job(user, current_cost=cost), "job_progressed", start + timedelta(minutes=2 * i))
               for i, cost in enumerate((0.0, 0.51, 1.20, 1.95))]
    job_id = running[0].subject_id
    for event in running:
        event.job_progressed.job.id = job_id
        await _publish(js, event)
    # The cost so far is billed while the job runs, one record per interval.
    records = await _cost_records(service, user, lambda rs: _cents(rs) == 195)
    assert sorted(r.amount for r in records) == [0.51, 0.69, 0.75]
    assert all(r.job_id == job_id and r.details["hourly_rate"] == 6.0 for r in records)

    cancelled = _job(user, current_cost=2.33, final_cost=2.33)
    cancelled.id = job_id
    end = _job_event(user, cancelled, "job_cancelled")
    # Replays under new event ids, before and after the end, and the end itself again.
    for event in [*map(_fresh, running), end, _fresh(end), *map(_fresh, running)]:
        await _publish(js, event)
    # Each consumer handles its messages in order: once another job's events
    # behind these are applied, the replays were too.
    marker = _job(user, current_cost=0.07)
    await _publish(js, _job_event(user, marker, "job_progressed"))
    await _publish(js, _job_event(user, marker, "job_cancelled"))
    await _cost_records(service, user, lambda rs: any(r.job_id == marker.id for r in rs))

    records = await _cost_records(service, user, lambda rs: True, job_id=job_id)
    assert _cents(records) == 233
    assert sorted(r.amount for r in records) == [0.38, 0.51, 0.69, 0.75]


async def test_a_monthly_budget_counts_spent_and_committed_and_notifies_at_80_and_100_percent(service, nats):
    _, js = nats
    user, stranger = str(uuid.uuid4()), str(uuid.uuid4())
    me = as_user(user)
    empty = (await service.GetBudget(billing_pb2.GetBudgetRequest(), metadata=me)).budget
    assert not empty.HasField("amount") and not empty.HasField("remaining") and empty.spent == 0
    assert (await service.CheckBudget(billing_pb2.CheckBudgetRequest(estimated_cost=1e6), metadata=me)).allowed

    budget = (await service.SetBudget(billing_pb2.SetBudgetRequest(amount=10.0), metadata=me)).budget
    assert (budget.amount, budget.remaining, budget.month) == (
        10.0, 10.0, datetime.now(timezone.utc).date().replace(day=1).isoformat()
    )
    # Another user's budget is their own.
    other = (await service.GetBudget(billing_pb2.GetBudgetRequest(), metadata=as_user(stranger))).budget
    assert not other.HasField("amount")

    # A queued job commits its estimate until it is charged.
    job = _job(user, estimated_total_cost=6.0)
    await _publish(js, _job_event(user, job, "job_queued"))
    for _ in range(200):
        budget = (await service.GetBudget(billing_pb2.GetBudgetRequest(), metadata=me)).budget
        if budget.committed == 6.0:
            break
        await asyncio.sleep(0.1)
    assert (budget.committed, budget.remaining) == (6.0, 4.0)
    check = await service.CheckBudget(billing_pb2.CheckBudgetRequest(estimated_cost=4.01), metadata=me)
    assert not check.allowed and check.budget.remaining == 4.0
    assert (await service.CheckBudget(billing_pb2.CheckBudgetRequest(estimated_cost=4.0), metadata=me)).allowed

    stops: list[events_pb2.Event] = []

    async def collect(msg):
        event = events_pb2.Event.FromString(msg.data)
        if event.user_id == user:
            stops.append(event)

    sub = await nats[0].subscribe("billing.budget_exceeded", cb=collect)
    # Its charges cross 80%, then 100%, then go on: one notice each, however often replayed, and one stop.
    start = datetime.now(timezone.utc)
    crossing = []
    for i, cost in enumerate((8.5, 10.2, 11.0)):
        running = _job(user, current_cost=cost)
        running.id = job.id
        crossing.append(_job_event(user, running, "job_progressed", start + timedelta(minutes=2 * i)))
    for event in [*crossing, *map(_fresh, crossing)]:
        await _publish(js, event)
    notes = await _notifications(service, user, count=3)
    budget_notes = sorted((n.type, n.metadata["threshold"]) for n in notes.notifications if n.type.startswith("budget"))
    assert budget_notes == [("budget_exceeded", 100), ("budget_warning", 80)]
    await _cost_records(service, user, lambda rs: _cents(rs) == 1100)
    budget = (await service.GetBudget(billing_pb2.GetBudgetRequest(), metadata=me)).budget
    assert (budget.spent, budget.committed, budget.remaining) == (11.0, 0.0, -1.0)
    for _ in range(100):
        if stops:
            break
        await asyncio.sleep(0.1)
    await sub.unsubscribe()
    [stop] = stops
    assert (stop.budget_exceeded.job_id, stop.budget_exceeded.budget, stop.budget_exceeded.spent) == (job.id, 10.0, 10.2)
    # Setting the budget again in the same month tells nothing twice.
    await service.SetBudget(billing_pb2.SetBudgetRequest(amount=5.0), metadata=me)
    assert len((await service.ListNotifications(billing_pb2.ListNotificationsRequest(), metadata=me)).notifications) == 3

    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await service.SetBudget(billing_pb2.SetBudgetRequest(amount=bad), metadata=me)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "amount" in caught.value.details()


async def test_each_read_is_one_read_only_transaction_and_no_write_transaction(service, settings, counting_database):
    # The platform's billing_svc migrated the schema; a second BillingHandlers on it, served with a Database
    # that counts what it opens, answers the reads.
    db = counting_database(settings.database_url, "billing")
    handlers = BillingHandlers(db)
    server, port, _ = create_server(
        "127.0.0.1:0", [lambda s: billing_pb2_grpc.add_BillingServiceServicer_to_server(handlers, s)], []
    )
    await server.start()
    me = as_user(str(uuid.uuid4()))
    try:
        async with channel(f"127.0.0.1:{port}") as ch:
            client = billing_pb2_grpc.BillingServiceStub(ch)
            created = await client.CreateWebhook(
                billing_pb2.CreateWebhookRequest(url="https://example.com/hooks", event_types=["job.succeeded"]),
                metadata=me,
            )
            hook = created.webhook.id
            reads = {
                "GetBudget": lambda: client.GetBudget(billing_pb2.GetBudgetRequest(), metadata=me),
                "CheckBudget": lambda: client.CheckBudget(billing_pb2.CheckBudgetRequest(estimated_cost=1), metadata=me),
                "GetCostSummary": lambda: client.GetCostSummary(billing_pb2.GetCostSummaryRequest(), metadata=me),
                "ListCostRecords": lambda: client.ListCostRecords(billing_pb2.ListCostRecordsRequest(), metadata=me),
                "ListNotifications": lambda: client.ListNotifications(
                    billing_pb2.ListNotificationsRequest(), metadata=me),
                "ListWebhooks": lambda: client.ListWebhooks(billing_pb2.ListWebhooksRequest(), metadata=me),
                "GetWebhook": lambda: client.GetWebhook(billing_pb2.GetWebhookRequest(webhook_id=hook), metadata=me),
                "ListWebhookDeliveries": lambda: client.ListWebhookDeliveries(
                    billing_pb2.ListWebhookDeliveriesRequest(webhook_id=hook), metadata=me),
            }
            for name, call in reads.items():
                db.opened.clear()
                db.sent.clear()
                for _ in range(3):
                    await call()
                if name == "ListCostRecords":  # one statement, no transaction around it
                    assert db.opened == ["statement"] * 3 and len(db.sent) == 3, db.sent
                else:
                    assert db.opened == ["read"] * 3, name
            db.opened.clear()
            await client.GetPrices(billing_pb2.GetPricesRequest(), metadata=me)
            assert db.opened == []  # the catalogue, no database
    finally:
        await server.stop(0)
        await db.close()
