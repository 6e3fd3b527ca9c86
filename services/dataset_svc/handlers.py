"""gRPC DatasetService: translates requests to store calls, scoped by the caller."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timezone

from brightrun.dataset.v1 import dataset_pb2, dataset_pb2_grpc
from services.common.base_models import check_base_model
from services.common import idempotency
from services.common.config import Settings
from services.common.db import Database
from services.common.errors import FailedPrecondition, NotFound
from services.common.paging import canonical_uuid, parse_page
from services.common.grpc import rpc, user_id
from services.common.storage import ObjectMissing, ObjectStorage
from services.dataset_svc import store
from services.dataset_svc.dataset import Dataset
from services.dataset_svc.events import save
from services.dataset_svc.messages import STATUS_NAMES, dataset_message
from services.dataset_svc.naming import check_create, confirmed_key, storage_key

log = logging.getLogger(__name__)
# Long enough to start uploading 500 MB; the copy made at confirm, not this
# lifetime, is what keeps a late PUT away from validated data.
UPLOAD_URL_SECONDS = 900
DEFAULT_PAGE_SIZE = 25


def _uuid_or_404(value: str) -> str:
    canonical = canonical_uuid(value)
    if canonical is None:
        raise NotFound("Dataset not found")
    return canonical


class DatasetHandlers(dataset_pb2_grpc.DatasetServiceServicer):
    def __init__(self, db: Database, storage: ObjectStorage, settings: Settings):
        self._db = db
        self._storage = storage
        self._settings = settings

    async def _get(self, uid: str, dataset_id: str):
        async with self._db.statement() as conn:
            row = await store.get_dataset(conn, uid, _uuid_or_404(dataset_id))
        if row is None:
            raise NotFound("Dataset not found")
        return row

    async def _discard(self, bucket: str, key: str) -> None:
        """Delete an object nothing points at; a failure leaves garbage, not an error for a call that succeeded."""
        try:
            await asyncio.to_thread(self._storage.delete, bucket, key)
        except Exception:
            log.warning("could not delete s3://%s/%s; it is no longer used", bucket, key, exc_info=True)

    def _base_model(self, requested: str) -> str:
        """The requested base model as stored ('' for none); raises InvalidArgument for a local path outside the
        model directories."""
        return check_base_model(requested, self._settings.model_dirs) if requested else ""

    @rpc
    async def CreateDataset(self, request, context):
        """Raises InvalidArgument naming every bad field (size above 500 MB, a base model outside the model
        directories)."""
        uid = user_id(context)
        if request.request_id:
            idempotency.check_request_id(request.request_id)
            async with self._db.read() as conn:
                existing = await store.dataset_by_request(conn, uid, request.request_id)
            if existing is not None:
                return await self._replayed(existing, request)
        safe_name = check_create(request.name, request.file_name, request.file_size, request.format, request.sha256)
        base_model = self._base_model(request.base_model) or self._settings.default_base_model
        dataset_id = str(uuid.uuid4())
        key = storage_key(uid, dataset_id, safe_name)
        url = await asyncio.to_thread(
            self._storage.presign_put, self._settings.datasets_bucket, key, UPLOAD_URL_SECONDS
        )
        async with self._db.transaction() as conn:
            row = await store.insert_dataset(
                conn,
                {
                    "id": dataset_id,
                    "user_id": uid,
                    "name": request.name.strip(),
                    "description": request.description if request.HasField("description") else None,
                    "format": request.format,
                    "storage_bucket": self._settings.datasets_bucket,
                    "storage_path": key,
                    "file_name": safe_name,
                    "file_size": request.file_size,
                    "sha256": request.sha256.lower() or None,
                    "base_model": base_model,
                    "request_id": request.request_id or None,
                    "request_fingerprint": idempotency.fingerprint(request) if request.request_id else None,
                },
            )
            if row is None:  # a concurrent retry with the same request id won
                row = await store.dataset_by_request(conn, uid, request.request_id)
        if str(row.id) != dataset_id:
            return await self._replayed(row, request)
        return dataset_pb2.CreateDatasetResponse(dataset=dataset_message(row), upload_url=url, storage_path=key)

    async def _replayed(self, row, request) -> dataset_pb2.CreateDatasetResponse:
        """The answer to a retried CreateDataset: its dataset with a fresh upload URL; raises
        IdempotencyKeyReused when the retry's request differs from the first."""
        idempotency.check_replay(row.request_fingerprint, request, created="dataset")
        # The upload key, as the first answer gave it; never the confirmed copy's (storage_path after confirm).
        key = storage_key(str(row.user_id), str(row.id), row.file_name)
        url = await asyncio.to_thread(self._storage.presign_put, row.storage_bucket, key, UPLOAD_URL_SECONDS)
        return dataset_pb2.CreateDatasetResponse(dataset=dataset_message(row), upload_url=url, storage_path=key)

    @rpc
    async def ConfirmUpload(self, request, context):
        """Raises NotFound, or FailedPrecondition when the object is missing or its size differs.

        The upload is copied to a key of its own first, and that copy is what
        is validated and trained on: the upload URL stays valid for a while
        and whatever it writes later must not replace validated data.

        A declared sha256 is checked by the validator, which hashes the object
        in the same pass that validates it, not here: reading 500 MB twice, once
        inside this call, would make confirming take as long as validating.
        """
        row = await self._get(user_id(context), request.dataset_id)
        Dataset.from_row(row).check_confirmable()
        bucket, upload = row.storage_bucket, storage_key(str(row.user_id), str(row.id), row.file_name)
        confirmed = confirmed_key(str(row.user_id), str(row.id), row.file_name)
        try:
            await asyncio.to_thread(self._storage.copy, bucket, upload, confirmed)
        except ObjectMissing:
            if row.status == "error":  # the upload was dropped when it was confirmed last time
                raise FailedPrecondition(
                    "No file was uploaded since the last confirm: upload the corrected file to uploadUrl first, "
                    "then confirm, or revalidate to check the confirmed file again"
                ) from None
            raise FailedPrecondition("No file was uploaded: upload the file to uploadUrl first, then confirm") from None
        try:
            size = await asyncio.to_thread(self._storage.size, bucket, confirmed)
            if size != row.file_size:
                raise FailedPrecondition(
                    f"The uploaded file has {size} bytes but file_size declared {row.file_size}: "
                    "upload the whole file again or create the dataset with its real size"
                )
            async with self._db.transaction() as conn:
                dataset = await store.load_dataset(conn, str(row.user_id), str(row.id))
                if dataset is None:
                    raise NotFound("Dataset not found")
                previous = dataset.storage_path  # a confirm beside this one may have changed it since the read
                row = await save(conn, dataset, dataset.confirm_upload(confirmed))
        except Exception:
            await self._discard(bucket, confirmed)
            raise
        # The previous confirm's copy, if any, is replaced; the upload is no longer needed.
        for key in {upload, previous} - {confirmed}:
            await self._discard(bucket, key)
        return dataset_pb2.ConfirmUploadResponse(dataset=dataset_message(row))

    @rpc
    async def GetDataset(self, request, context):
        row = await self._get(user_id(context), request.dataset_id)
        return dataset_pb2.GetDatasetResponse(dataset=dataset_message(row))

    @rpc
    async def ListDatasets(self, request, context):
        """Raises InvalidArgument for a bad page size or token."""
        page = parse_page(request.page_size, request.page_token, default=DEFAULT_PAGE_SIZE, keyset=store.LIST_ORDER)
        status = STATUS_NAMES.get(request.status)
        async with self._db.statement() as conn:  # one statement unless the page is empty
            rows, total = await store.list_datasets(conn, user_id(context), status, request.search, page)
        return dataset_pb2.ListDatasetsResponse(
            datasets=[dataset_message(r) for r in rows[: page.limit]],
            total_size=total,
            next_page_token=store.LIST_ORDER.next_token(rows, page),
        )

    @rpc
    async def DeleteDataset(self, request, context):
        """Soft-deletes and removes the object; raises NotFound, or Conflict while a job uses the dataset."""
        uid = user_id(context)
        async with self._db.transaction() as conn:
            dataset = await store.load_dataset(conn, uid, _uuid_or_404(request.dataset_id))
            if dataset is None:
                raise NotFound("Dataset not found")
            jobs = await store.active_jobs(conn, dataset.id)
            row = await save(conn, dataset, dataset.delete(jobs, datetime.now(timezone.utc)))
        # The upload key too: a PUT after the confirm may have written it again.
        for key in {row.storage_path, storage_key(str(row.user_id), str(row.id), row.file_name)}:
            await asyncio.to_thread(self._storage.delete, row.storage_bucket, key)
        return dataset_pb2.DeleteDatasetResponse(dataset=dataset_message(row))

    @rpc
    async def RevalidateDataset(self, request, context):
        """Raises InvalidArgument for a base model outside the model directories, FailedPrecondition unless the
        dataset is ready or in error."""
        base_model = self._base_model(request.base_model)
        async with self._db.transaction() as conn:
            dataset = await store.load_dataset(conn, user_id(context), _uuid_or_404(request.dataset_id))
            if dataset is None:
                raise NotFound("Dataset not found")
            row = await save(conn, dataset, dataset.revalidate(base_model))
        return dataset_pb2.RevalidateDatasetResponse(dataset=dataset_message(row))

    @rpc
    async def GetDatasetReadUrl(self, request, context):
        row = await self._get(user_id(context), request.dataset_id)
        url = await asyncio.to_thread(self._storage.presign_get, row.storage_bucket, row.storage_path)
        return dataset_pb2.GetDatasetReadUrlResponse(
            url=url, storage_bucket=row.storage_bucket, storage_path=row.storage_path
        )

