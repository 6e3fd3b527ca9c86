"""dataset_svc on real PostgreSQL, NATS and SeaweedFS: upload, confirm,
event-driven validation, scoping, listing, deletion."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
import urllib.request
import uuid

import grpc
import psutil
import pytest
import pytest_asyncio

from brightrun.dataset.v1 import dataset_pb2, dataset_pb2_grpc
from brightrun.events.v1 import events_pb2
from services.common import events, identity
from services.common.db import Database
from services.common.grpc import as_user, channel
from services.common.status import error_details
from services.common.storage import ObjectMissing, ObjectStorage
from services.common.tiny_model import build_tiny_model
from services.dataset_svc import store
from services.dataset_svc.server import start
from services.dataset_svc.statistics import load_tokenizer
from services.dataset_svc.validator_process import ValidatorProcess

GOOD = [
    {"conversation_id": f"c{i}", "turns": [{"role": "user", "content": f"hi {i}"}, {"role": "assistant", "content": "hello"}]}
    for i in range(5)
]


MAX_LINE_BYTES = 64 << 10


@pytest_asyncio.fixture(loop_scope="session", scope="module")
async def stub(settings):
    runtime = await start(dataclasses.replace(settings, dataset_max_line_bytes=MAX_LINE_BYTES), address="127.0.0.1:0")
    async with channel(f"127.0.0.1:{runtime.port}") as ch:
        yield dataset_pb2_grpc.DatasetServiceStub(ch)
    await runtime.stop()


def _put(url: str, body: bytes) -> None:
    request = urllib.request.Request(url, data=body, method="PUT")
    with urllib.request.urlopen(request, timeout=30) as reply:
        assert reply.status == 200


async def _upload(stub, uid: str, body: bytes, name: str = "data", **extra) -> dataset_pb2.Dataset:
    created = await stub.CreateDataset(
        dataset_pb2.CreateDatasetRequest(name=name, file_name="../../etc/my data.jsonl", file_size=len(body), **extra),
        metadata=as_user(uid),
    )
    assert created.storage_path == f"{uid}/{created.dataset.id}/my_data.jsonl"
    await asyncio.to_thread(_put, created.upload_url, body)
    confirmed = await stub.ConfirmUpload(dataset_pb2.ConfirmUploadRequest(dataset_id=created.dataset.id), metadata=as_user(uid))
    assert confirmed.dataset.status == dataset_pb2.DATASET_STATUS_VALIDATING
    assert confirmed.dataset.storage_path.startswith(f"{uid}/{created.dataset.id}/validated/")
    return confirmed.dataset


async def _settled(stub, uid: str, dataset_id: str, timeout: float = 30.0) -> dataset_pb2.Dataset:
    for _ in range(int(timeout / 0.2)):
        reply = await stub.GetDataset(dataset_pb2.GetDatasetRequest(dataset_id=dataset_id), metadata=as_user(uid))
        if reply.dataset.status in (dataset_pb2.DATASET_STATUS_READY, dataset_pb2.DATASET_STATUS_ERROR):
            return reply.dataset
        await asyncio.sleep(0.2)
    raise AssertionError("dataset never left validating")


async def _published(settings, dataset_id: str, wanted: set[str]) -> dict[str, events_pb2.Event]:
    """The DATASETS events about ``dataset_id`` once every ``wanted`` type is there (the relay is asynchronous)."""
    nc, js = await events.connect(settings.nats_url, f"test-{uuid.uuid4().hex[:8]}")
    found: dict[str, events_pb2.Event] = {}
    try:
        sub = await js.pull_subscribe("dataset.>", durable=None, stream="DATASETS")
        for _ in range(20):
            try:
                msgs = await sub.fetch(100, timeout=0.5)
            except TimeoutError:
                continue
            for msg in msgs:
                event = events_pb2.Event.FromString(msg.data)
                if event.subject_id == dataset_id:
                    found[event.type] = event
            if wanted <= found.keys():
                break
        await sub.unsubscribe()
    finally:
        await nc.close()
    return found


def _jsonl(records) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


async def test_a_valid_upload_becomes_ready_with_token_statistics(stub, settings):
    uid = str(uuid.uuid4())
    body = _jsonl(GOOD)
    dataset = await _settled(stub, uid, (await _upload(stub, uid, body, sha256=hashlib.sha256(body).hexdigest())).id)
    assert dataset.status == dataset_pb2.DATASET_STATUS_READY, dataset.validation_errors
    assert dataset.training_ready
    assert dataset.total_training_pairs == 5
    assert dataset.total_tokens > 5 * 6
    assert dataset.format == "brightrun_lora_v4"
    assert len(dataset.sample_data.values) == 3
    assert dataset.statistics["trained_tokens"] > 0
    assert dataset.HasField("validated_at") and not dataset.validation_errors

    published = await _published(settings, dataset.id, {"dataset.uploaded", "dataset.validated"})
    assert published["dataset.uploaded"].user_id == uid
    assert published["dataset.uploaded"].dataset_uploaded.dataset.status == dataset_pb2.DATASET_STATUS_VALIDATING
    validated = published["dataset.validated"].dataset_validated.dataset
    assert validated.status == dataset_pb2.DATASET_STATUS_READY and validated.total_training_pairs == 5


async def test_every_bad_line_is_reported(stub):
    uid = str(uuid.uuid4())
    body = _jsonl(GOOD[:1]) + b"{oops\n" + _jsonl([{"conversation_id": "x", "turns": [{"role": "user", "content": "q"}]}])
    dataset = await _settled(stub, uid, (await _upload(stub, uid, body)).id)
    assert dataset.status == dataset_pb2.DATASET_STATUS_ERROR
    assert not dataset.training_ready
    assert [(e.line, e.code) for e in dataset.validation_errors] == [(2, "invalid_json"), (3, "no_assistant_turn")]
    assert dataset.statistics["error_counts"] == {"invalid_json": 1, "no_assistant_turn": 1}


async def test_lines_over_the_configured_cap_are_errors(stub):
    uid = str(uuid.uuid4())
    long_turn = {"role": "assistant", "content": "word " * MAX_LINE_BYTES}
    body = _jsonl([GOOD[0], {"conversation_id": "long", "turns": [GOOD[0]["turns"][0], long_turn]}, GOOD[1]])
    dataset = await _settled(stub, uid, (await _upload(stub, uid, body)).id)
    assert [(e.line, e.code) for e in dataset.validation_errors] == [(2, "line_too_long")]
    assert dataset.statistics["conversations"] == 2


async def test_a_declared_sha256_that_does_not_match_fails_validation(stub):
    uid = str(uuid.uuid4())
    dataset = await _settled(stub, uid, (await _upload(stub, uid, _jsonl(GOOD), sha256="0" * 64)).id)
    assert dataset.status == dataset_pb2.DATASET_STATUS_ERROR
    assert dataset.validation_errors[0].code == "sha256_mismatch"
    assert dataset.statistics["error_counts"]["sha256_mismatch"] == 1


async def test_the_sha256_covers_the_whole_file_even_when_validation_stops_early(stub):
    uid = str(uuid.uuid4())
    # The validator stops at the first NUL byte, after one 1 MiB chunk; the hash must see the rest.
    body = b"\0binary\n" + b" " * (2 << 20) + b"\n" + _jsonl(GOOD)
    dataset = await _settled(stub, uid, (await _upload(stub, uid, body, sha256=hashlib.sha256(body).hexdigest())).id)
    assert dataset.status == dataset_pb2.DATASET_STATUS_ERROR
    assert [e.code for e in dataset.validation_errors] == ["binary_data"]


async def test_confirm_checks_the_uploaded_size(stub):
    uid = str(uuid.uuid4())
    created = await stub.CreateDataset(
        dataset_pb2.CreateDatasetRequest(name="n", file_name="d.jsonl", file_size=999), metadata=as_user(uid)
    )
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.ConfirmUpload(dataset_pb2.ConfirmUploadRequest(dataset_id=created.dataset.id), metadata=as_user(uid))
    assert missing.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await asyncio.to_thread(_put, created.upload_url, b"{}\n")
    with pytest.raises(grpc.aio.AioRpcError) as wrong:
        await stub.ConfirmUpload(dataset_pb2.ConfirmUploadRequest(dataset_id=created.dataset.id), metadata=as_user(uid))
    assert wrong.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "3 bytes" in wrong.value.details() and "999" in wrong.value.details()


async def test_bad_create_requests_name_every_field(stub):
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateDataset(
            dataset_pb2.CreateDatasetRequest(name="", file_name="///", file_size=600 * 1024 * 1024, format="csv"),
            metadata=as_user(str(uuid.uuid4())),
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for field in ("name", "file_name", "file_size", "format"):
        assert field in info.value.details()


async def test_a_name_postgres_cannot_store_is_invalid_argument_not_a_database_error(stub):
    # A gRPC caller bypasses the gateway's checks: the service itself must refuse the NUL.
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateDataset(
            dataset_pb2.CreateDatasetRequest(name="chats\x00", file_name="c.jsonl", file_size=10),
            metadata=as_user(str(uuid.uuid4())),
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "name" in info.value.details()


async def test_a_request_id_replays_the_first_dataset_and_refuses_another_request(stub):
    owner, key = str(uuid.uuid4()), str(uuid.uuid4())
    request = dataset_pb2.CreateDatasetRequest(name="chats", file_name="c.jsonl", file_size=10, request_id=key)
    first = await stub.CreateDataset(request, metadata=as_user(owner))
    again = await stub.CreateDataset(request, metadata=as_user(owner))
    assert again.dataset.id == first.dataset.id and again.storage_path == first.storage_path
    assert again.upload_url  # signed again: the first may have expired
    # Another user's key is their own.
    theirs = await stub.CreateDataset(request, metadata=as_user(str(uuid.uuid4())))
    assert theirs.dataset.id != first.dataset.id
    other = dataset_pb2.CreateDatasetRequest(name="other", file_name="c.jsonl", file_size=10, request_id=key)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.CreateDataset(other, metadata=as_user(owner))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_details(info.value)["reason"] == "idempotency_key_reused"
    assert "dataset" in error_details(info.value)["details"]["Idempotency-Key"][0]


async def test_a_call_is_served_only_for_the_user_its_verified_credential_names(stub, settings):
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    request = dataset_pb2.CreateDatasetRequest(name="mine", file_name="c.jsonl", file_size=10)
    mine = (await stub.CreateDataset(request, metadata=as_user(alice))).dataset
    forger = identity.InternalTokens("not-this-stacks-internal-token-secret-0123456789")
    stale = identity.InternalTokens(settings.internal_token_secret).mint(alice, now=time.time() - 2 * identity.TTL_SECONDS)
    for refused in (
        (("x-user-id", alice),),  # a user id on the caller's word
        ((identity.METADATA_KEY, forger.mint(alice)),),
        ((identity.METADATA_KEY, stale),),
        (),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.ListDatasets(dataset_pb2.ListDatasetsRequest(), metadata=refused)
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED, refused
        assert error_details(info.value)["reason"] == "unauthenticated"
    listed = await stub.ListDatasets(dataset_pb2.ListDatasetsRequest(), metadata=as_user(alice))
    assert [d.id for d in listed.datasets] == [mine.id]
    assert (await stub.ListDatasets(dataset_pb2.ListDatasetsRequest(), metadata=as_user(bob))).total_size == 0


async def test_another_users_dataset_is_not_found_and_lists_are_scoped(stub, settings):
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    dataset = await _upload(stub, alice, _jsonl(GOOD), name="Alpha set")
    await _upload(stub, alice, _jsonl(GOOD), name="beta set")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.GetDataset(dataset_pb2.GetDatasetRequest(dataset_id=dataset.id), metadata=as_user(bob))
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    listed = await stub.ListDatasets(dataset_pb2.ListDatasetsRequest(search="alpha"), metadata=as_user(alice))
    assert [d.name for d in listed.datasets] == ["Alpha set"]
    page = await stub.ListDatasets(dataset_pb2.ListDatasetsRequest(page_size=1), metadata=as_user(alice))
    assert page.total_size == 2 and len(page.datasets) == 1 and page.next_page_token
    assert (await stub.ListDatasets(dataset_pb2.ListDatasetsRequest(), metadata=as_user(bob))).total_size == 0

    await _settled(stub, alice, dataset.id)
    await stub.DeleteDataset(dataset_pb2.DeleteDatasetRequest(dataset_id=dataset.id), metadata=as_user(alice))
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.GetDataset(dataset_pb2.GetDatasetRequest(dataset_id=dataset.id), metadata=as_user(alice))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(ObjectMissing):
        ObjectStorage.from_settings(settings).size(dataset.storage_bucket, dataset.storage_path)


async def test_a_dataset_used_by_a_queued_or_running_job_cannot_be_deleted(stub, settings):
    from brightrun.events.v1 import events_pb2
    from brightrun.job.v1 import job_pb2
    from services.common import events, identity

    uid = str(uuid.uuid4())
    dataset = await _upload(stub, uid, _jsonl(GOOD))
    job = job_pb2.Job(id=str(uuid.uuid4()), user_id=uid, dataset_id=dataset.id)
    nc, js = await events.connect(settings.nats_url, "usage-test")

    async def send(type_: str, **payload) -> None:
        event = events.new_event(type_, producer="test", user_id=uid, subject_id=job.id, **payload)
        await events.publish(js, type_, event.SerializeToString(), event.event_id)

    async def delete_code():
        try:
            await stub.DeleteDataset(dataset_pb2.DeleteDatasetRequest(dataset_id=dataset.id), metadata=as_user(uid))
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    await send("job.queued", job_queued=events_pb2.JobQueued(job=job))
    await _settled(stub, uid, dataset.id)
    # Validation can end before the use is recorded: wait for it, not for time to pass.
    database = Database(settings.database_url, "dataset")
    try:
        for _ in range(100):
            async with database.transaction() as conn:
                if await store.active_jobs(conn, dataset.id) == [job.id]:
                    break
            await asyncio.sleep(0.1)
    finally:
        await database.close()
    assert await delete_code() == grpc.StatusCode.ABORTED
    await send("job.completed", job_completed=events_pb2.JobCompleted(job=job))
    for _ in range(100):
        if (code := await delete_code()) == grpc.StatusCode.OK:
            break
        await asyncio.sleep(0.1)
    assert code == grpc.StatusCode.OK
    await nc.close()


async def test_the_read_url_serves_the_file_and_a_vanished_file_revalidates_to_error(stub, settings):
    uid = str(uuid.uuid4())
    body = _jsonl(GOOD)
    created = await stub.CreateDataset(
        dataset_pb2.CreateDatasetRequest(name="r", file_name="r.jsonl", file_size=len(body)), metadata=as_user(uid)
    )
    with pytest.raises(grpc.aio.AioRpcError) as early:
        await stub.RevalidateDataset(
            dataset_pb2.RevalidateDatasetRequest(dataset_id=created.dataset.id), metadata=as_user(uid)
        )
    assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await asyncio.to_thread(_put, created.upload_url, body)
    await stub.ConfirmUpload(dataset_pb2.ConfirmUploadRequest(dataset_id=created.dataset.id), metadata=as_user(uid))
    dataset = await _settled(stub, uid, created.dataset.id)
    assert dataset.status == dataset_pb2.DATASET_STATUS_READY

    read = await stub.GetDatasetReadUrl(dataset_pb2.GetDatasetReadUrlRequest(dataset_id=dataset.id), metadata=as_user(uid))
    assert read.storage_path == dataset.storage_path != created.storage_path
    with urllib.request.urlopen(read.url, timeout=30) as reply:
        assert reply.read() == body

    await asyncio.to_thread(ObjectStorage.from_settings(settings).delete, dataset.storage_bucket, dataset.storage_path)
    again = await stub.RevalidateDataset(
        dataset_pb2.RevalidateDatasetRequest(dataset_id=dataset.id), metadata=as_user(uid)
    )
    assert again.dataset.status == dataset_pb2.DATASET_STATUS_VALIDATING and not again.dataset.training_ready
    failed = await _settled(stub, uid, dataset.id)
    assert failed.status == dataset_pb2.DATASET_STATUS_ERROR and not failed.training_ready
    assert [(e.line, e.code) for e in failed.validation_errors] == [(0, "missing_object")]
    assert "dataset.validation_failed" in await _published(settings, dataset.id, {"dataset.validation_failed"})


async def test_lists_filter_by_status_and_page_newest_first(stub):
    uid = str(uuid.uuid4())
    ready = await _settled(stub, uid, (await _upload(stub, uid, _jsonl(GOOD), name="ready one")).id)
    waiting = []
    for name in ("first waiting", "second waiting"):
        created = await stub.CreateDataset(
            dataset_pb2.CreateDatasetRequest(name=name, file_name="w.jsonl", file_size=10), metadata=as_user(uid)
        )
        waiting.append(created.dataset.id)

    async def listed(**request) -> dataset_pb2.ListDatasetsResponse:
        return await stub.ListDatasets(dataset_pb2.ListDatasetsRequest(**request), metadata=as_user(uid))

    uploading = await listed(status=dataset_pb2.DATASET_STATUS_UPLOADING)
    assert [d.id for d in uploading.datasets] == waiting[::-1] and uploading.total_size == 2
    assert [d.id for d in (await listed(status=dataset_pb2.DATASET_STATUS_READY)).datasets] == [ready.id]

    seen, token = [], ""
    while True:
        page = await listed(page_size=2, page_token=token)
        assert page.total_size == 3
        seen += [d.id for d in page.datasets]
        if not (token := page.next_page_token):
            break
    assert seen == [*waiting[::-1], ready.id]
    assert len((await listed(page_size=1000)).datasets) == 3


async def test_a_cursor_walk_neither_repeats_nor_skips_a_row_while_rows_are_added(stub):
    """Keyset pages: datasets created between two pages (newer, so before the cursor) shift no row of the
    walk; an offset walk would show the page's last row again. Another user's cursor reads only its own
    rows: none."""
    uid, other = str(uuid.uuid4()), str(uuid.uuid4())

    async def create(name: str) -> str:
        request = dataset_pb2.CreateDatasetRequest(name=name, file_name="w.jsonl", file_size=10)
        return (await stub.CreateDataset(request, metadata=as_user(uid))).dataset.id

    existing = [await create(f"set {i}") for i in range(7)]
    seen, token, first_token = [], "", ""
    while True:
        page = await stub.ListDatasets(dataset_pb2.ListDatasetsRequest(page_size=3, page_token=token),
                                       metadata=as_user(uid))
        seen += [d.id for d in page.datasets]
        first_token = first_token or page.next_page_token
        if not (token := page.next_page_token):
            break
        await create(f"added after {len(seen)}")
    assert seen == existing[::-1]
    offset_page = await stub.ListDatasets(dataset_pb2.ListDatasetsRequest(page_size=3, page_token="3"),
                                          metadata=as_user(uid))
    assert offset_page.datasets[0].id != existing[::-1][3]  # what offsets do as rows are added
    # Past the end: no rows, and still the list's total.
    beyond = await stub.ListDatasets(dataset_pb2.ListDatasetsRequest(page_token="1000"), metadata=as_user(uid))
    assert list(beyond.datasets) == [] and beyond.total_size == offset_page.total_size == 9
    foreign = await stub.ListDatasets(dataset_pb2.ListDatasetsRequest(page_token=first_token), metadata=as_user(other))
    assert list(foreign.datasets) == [] and foreign.next_page_token == ""
    for forged in ("k" + first_token[1:-4], "kW10", "k" + "A" * 600):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.ListDatasets(dataset_pb2.ListDatasetsRequest(page_token=forged), metadata=as_user(uid))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert list(error_details(refused.value)["details"]) == ["page_token"]


async def test_revalidating_against_another_base_model_counts_with_its_tokenizer(stub, settings):
    uid = str(uuid.uuid4())
    body = _jsonl(GOOD)
    first = await _settled(stub, uid, (await _upload(stub, uid, body)).id)
    assert first.status == dataset_pb2.DATASET_STATUS_READY
    # A smaller vocabulary splits the same text into more tokens.
    other = settings.model_dirs[0] / f"other-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(build_tiny_model, other, vocab_size=400, seed=1)
    again = await stub.RevalidateDataset(
        dataset_pb2.RevalidateDatasetRequest(dataset_id=first.id, base_model=str(other)), metadata=as_user(uid)
    )
    assert again.dataset.base_model == str(other) and again.dataset.status == dataset_pb2.DATASET_STATUS_VALIDATING
    second = await _settled(stub, uid, first.id)
    assert second.status == dataset_pb2.DATASET_STATUS_READY, second.validation_errors
    tokenizer = load_tokenizer(str(other))
    expected = sum(
        len(tokenizer.apply_chat_template(record["turns"], tokenize=True, return_dict=True)["input_ids"])
        for record in GOOD
    )
    assert second.total_tokens == expected != first.total_tokens


async def test_a_base_model_without_a_tokenizer_is_an_error_naming_it(stub, settings):
    uid = str(uuid.uuid4())
    empty = settings.model_dirs[0] / f"empty-{uuid.uuid4().hex[:8]}"
    empty.mkdir(parents=True)
    dataset = await _settled(stub, uid, (await _upload(stub, uid, _jsonl(GOOD), base_model=str(empty))).id)
    assert dataset.status == dataset_pb2.DATASET_STATUS_ERROR and dataset.base_model == str(empty)
    [error] = dataset.validation_errors
    assert (error.line, error.code) == (0, "base_model_unavailable") and str(empty) in error.error


async def test_a_validation_that_keeps_dying_ends_in_error_and_revalidation_starts_afresh(stub, settings):
    from sqlalchemy import text

    from services.dataset_svc.consumers import DatasetValidator
    from services.dataset_svc.dataset import MAX_VALIDATION_ATTEMPTS
    from services.dataset_svc.events import dataset_event

    uid = str(uuid.uuid4())
    dataset = await _upload(stub, uid, _jsonl(GOOD))
    await _settled(stub, uid, dataset.id)
    database = Database(settings.database_url, "dataset")
    try:
        # As the earlier passes leave it when each is killed mid-file: validating, attempts counted.
        async with database.transaction() as conn:
            await conn.execute(
                text("UPDATE datasets SET status = 'validating', validation_attempts = :n WHERE id = :id"),
                {"n": MAX_VALIDATION_ATTEMPTS, "id": dataset.id},
            )
            row = await store.get_dataset(conn, uid, dataset.id)
        process = ValidatorProcess(settings, max_line_bytes=MAX_LINE_BYTES, model_dirs=settings.model_dirs)
        validator = DatasetValidator(database, process)
        await validator.handle(dataset_event("dataset.uploaded", row))
    finally:
        await database.close()

    failed = await _settled(stub, uid, dataset.id)
    assert failed.status == dataset_pb2.DATASET_STATUS_ERROR
    [error] = failed.validation_errors
    assert error.code == "validation_crashed" and f"stopped {MAX_VALIDATION_ATTEMPTS} times" in error.error

    revalidated = await stub.RevalidateDataset(
        dataset_pb2.RevalidateDatasetRequest(dataset_id=dataset.id), metadata=as_user(uid)
    )
    assert revalidated.dataset.status == dataset_pb2.DATASET_STATUS_VALIDATING
    assert (await _settled(stub, uid, dataset.id)).status == dataset_pb2.DATASET_STATUS_READY


def _validator_children() -> list[psutil.Process]:
    """This process's validator children (multiprocessing's spawned workers)."""
    return [child for child in psutil.Process().children()
            if any("spawn_main" in part for part in child.cmdline())]


async def test_a_validator_process_killed_mid_file_is_replaced_and_the_upload_validated_again(stub, settings):
    from sqlalchemy import text

    uid = str(uuid.uuid4())
    answer = {"role": "assistant", "content": "a longer answer to read " * 40}
    body = _jsonl({"conversation_id": f"big{i}", "turns": [{"role": "user", "content": f"q {i}"}, answer]}
                  for i in range(20_000))  # about 20 MB: seconds of validation
    dataset = await _upload(stub, uid, body)
    for _ in range(200):  # the child is reading this file (started now, or kept from an earlier upload)
        children = _validator_children()
        if children and children[0].cpu_percent(0.1) > 20:
            break
    [child] = children
    child.kill()
    validated = await _settled(stub, uid, dataset.id, timeout=120.0)  # a new child, then the whole 20 MB again
    assert validated.status == dataset_pb2.DATASET_STATUS_READY, validated.validation_errors
    assert validated.total_training_pairs == 20_000  # one result, of the whole file
    [replacement] = _validator_children()
    assert replacement.pid != child.pid
    database = Database(settings.database_url, "dataset")
    try:
        async with database.read() as conn:
            attempts = (await conn.execute(text("SELECT validation_attempts FROM datasets WHERE id = :id"),
                                           {"id": dataset.id})).scalar_one()
    finally:
        await database.close()
    assert attempts == 2  # the killed pass counted as a dead attempt, as when the whole service dies


async def test_an_upload_event_without_a_dataset_is_parked_and_validation_goes_on(stub, settings):
    nc, js = await events.connect(settings.nats_url, f"test-{uuid.uuid4().hex[:8]}")
    try:
        empty = events.new_event("dataset.uploaded", producer="test", user_id=str(uuid.uuid4()), subject_id="")
        ack = await js.publish("dataset.uploaded", empty.SerializeToString(), headers={"Nats-Msg-Id": empty.event_id})
        uid = str(uuid.uuid4())
        dataset = await _settled(stub, uid, (await _upload(stub, uid, _jsonl(GOOD))).id)
        assert dataset.status == dataset_pb2.DATASET_STATUS_READY
        parked = await js.pull_subscribe("deadletter.dataset-validator", stream="DEADLETTER")
        reasons = {int(m.headers["BrightRun-Sequence"]): m.headers["BrightRun-Reason"]
                   for m in await parked.fetch(100, timeout=5.0)}
        await parked.unsubscribe()
    finally:
        await nc.close()
    assert reasons[ack.seq] == "unappliable dataset.uploaded: dataset.uploaded carries no dataset_uploaded payload"


async def test_confirm_copies_the_upload_so_a_later_put_changes_nothing_validated(stub, settings):
    uid = str(uuid.uuid4())
    body = _jsonl(GOOD)
    storage = ObjectStorage.from_settings(settings)
    created = await stub.CreateDataset(
        dataset_pb2.CreateDatasetRequest(name="c", file_name="c.jsonl", file_size=len(body)), metadata=as_user(uid)
    )
    await asyncio.to_thread(_put, created.upload_url, body)
    await stub.ConfirmUpload(dataset_pb2.ConfirmUploadRequest(dataset_id=created.dataset.id), metadata=as_user(uid))
    ready = await _settled(stub, uid, created.dataset.id)
    assert ready.status == dataset_pb2.DATASET_STATUS_READY
    assert ready.content_sha256 == hashlib.sha256(body).hexdigest()
    assert ready.storage_path != created.storage_path
    with pytest.raises(ObjectMissing):  # the upload itself is gone once copied
        await asyncio.to_thread(storage.size, ready.storage_bucket, created.storage_path)

    # The upload URL still signs a PUT of its key for a while: that writes nothing validated.
    other = _jsonl([{**GOOD[0], "conversation_id": "smuggled"}] * 5)
    await asyncio.to_thread(_put, created.upload_url, other)
    assert await asyncio.to_thread(storage.get_bytes, ready.storage_bucket, ready.storage_path) == body
    after = (await stub.GetDataset(dataset_pb2.GetDatasetRequest(dataset_id=ready.id), metadata=as_user(uid))).dataset
    assert (after.status, after.storage_path, after.content_sha256) == (ready.status, ready.storage_path,
                                                                         ready.content_sha256)
    assert "dataset.validated" in await _published(settings, ready.id, {"dataset.validated"})
    validated = (await _published(settings, ready.id, {"dataset.validated"}))["dataset.validated"]
    assert validated.dataset_validated.dataset.content_sha256 == ready.content_sha256

    await stub.DeleteDataset(dataset_pb2.DeleteDatasetRequest(dataset_id=ready.id), metadata=as_user(uid))
    for key in (ready.storage_path, created.storage_path):
        with pytest.raises(ObjectMissing):
            await asyncio.to_thread(storage.size, ready.storage_bucket, key)


async def test_a_reconfirm_after_an_error_validates_a_fresh_copy_and_drops_the_old_one(stub, settings):
    uid = str(uuid.uuid4())
    bad, good = b'{"not": "a conversation"}\n', _jsonl(GOOD)
    storage = ObjectStorage.from_settings(settings)
    created = await stub.CreateDataset(
        dataset_pb2.CreateDatasetRequest(name="e", file_name="e.jsonl", file_size=len(good)), metadata=as_user(uid)
    )
    await asyncio.to_thread(_put, created.upload_url, bad.ljust(len(good) - 1) + b"\n")
    await stub.ConfirmUpload(dataset_pb2.ConfirmUploadRequest(dataset_id=created.dataset.id), metadata=as_user(uid))
    failed = await _settled(stub, uid, created.dataset.id)
    assert failed.status == dataset_pb2.DATASET_STATUS_ERROR
    with pytest.raises(grpc.aio.AioRpcError) as unchanged:  # the upload went with the first confirm
        await stub.ConfirmUpload(dataset_pb2.ConfirmUploadRequest(dataset_id=created.dataset.id), metadata=as_user(uid))
    assert unchanged.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "since the last confirm" in unchanged.value.details()
    await asyncio.to_thread(_put, created.upload_url, good)
    await stub.ConfirmUpload(dataset_pb2.ConfirmUploadRequest(dataset_id=created.dataset.id), metadata=as_user(uid))
    ready = await _settled(stub, uid, created.dataset.id)
    assert ready.status == dataset_pb2.DATASET_STATUS_READY, ready.validation_errors
    assert ready.storage_path != failed.storage_path and ready.content_sha256 == hashlib.sha256(good).hexdigest()
    with pytest.raises(ObjectMissing):
        await asyncio.to_thread(storage.size, failed.storage_bucket, failed.storage_path)


@pytest.mark.parametrize("base_model", ["/etc", "/proc/self/root", "/proc/self/environ", "~/.ssh", "a/b/c"])
async def test_a_base_model_outside_the_model_directories_is_an_invalid_argument(stub, settings, base_model):
    uid = str(uuid.uuid4())
    with pytest.raises(grpc.aio.AioRpcError) as created:
        await stub.CreateDataset(
            dataset_pb2.CreateDatasetRequest(name="m", file_name="m.jsonl", file_size=10, base_model=base_model),
            metadata=as_user(uid),
        )
    assert created.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "base_model" in created.value.details()
    [problem] = error_details(created.value)["details"]["base_model"]
    # Names the setting and the models there, never the server's own paths.
    assert "BRIGHTRUN_MODEL_DIRS" in problem and settings.default_base_model.rsplit("/", 1)[-1] in problem
    assert str(settings.model_dirs[0]) not in problem

    ready = await _settled(stub, uid, (await _upload(stub, uid, _jsonl(GOOD))).id)
    with pytest.raises(grpc.aio.AioRpcError) as revalidated:
        await stub.RevalidateDataset(
            dataset_pb2.RevalidateDatasetRequest(dataset_id=ready.id, base_model=base_model), metadata=as_user(uid)
        )
    assert revalidated.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "base_model" in revalidated.value.details()


async def test_the_validator_refuses_a_stored_base_model_outside_the_model_directories(stub, settings):
    from sqlalchemy import text

    uid = str(uuid.uuid4())
    ready = await _settled(stub, uid, (await _upload(stub, uid, _jsonl(GOOD))).id)
    database = Database(settings.database_url, "dataset")
    try:  # as a row stored before the rule existed would be
        async with database.transaction() as conn:
            await conn.execute(text("UPDATE datasets SET base_model = '/etc' WHERE id = :id"), {"id": ready.id})
    finally:
        await database.close()
    await stub.RevalidateDataset(dataset_pb2.RevalidateDatasetRequest(dataset_id=ready.id), metadata=as_user(uid))
    failed = await _settled(stub, uid, ready.id)
    [error] = failed.validation_errors
    assert error.code == "base_model_unavailable" and "outside" in error.error
