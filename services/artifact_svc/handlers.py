"""gRPC ArtifactService: translates requests to store calls, scoped by the caller."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from brightrun.artifact.v1 import artifact_pb2, artifact_pb2_grpc

from services.artifact_svc import store
from services.artifact_svc.listing import DEFAULT_PAGE_SIZE, artifact_uuid, parse_order, select_files
from services.common.paging import next_offset_token, parse_page
from services.artifact_svc.messages import artifact_message
from services.common.db import Database
from services.common.errors import NotFound
from services.common.grpc import rpc, user_id
from services.common.storage import ObjectStorage

class ArtifactHandlers(artifact_pb2_grpc.ArtifactServiceServicer):
    """``download_url_seconds``: how long a download URL is valid (Settings.download_url_seconds)."""

    def __init__(self, db: Database, storage: ObjectStorage, download_url_seconds: int):
        self._db = db
        self._storage = storage
        self._download_url_seconds = download_url_seconds

    @rpc
    async def GetArtifact(self, request, context):
        """Raises NotFound for a missing, deleted or another user's artifact."""
        row = await self._artifact(user_id(context), request.artifact_id)
        return artifact_pb2.GetArtifactResponse(artifact=artifact_message(row))

    @rpc
    async def ListArtifacts(self, request, context):
        """Raises InvalidArgument for an unknown order, a negative page size or a foreign token."""
        order_by = parse_order(request.order_by)
        keyset = store.CREATED_ORDER if order_by == "created" else None
        page = parse_page(request.page_size, request.page_token, default=DEFAULT_PAGE_SIZE, keyset=keyset)
        async with self._db.statement() as conn:  # one statement unless the page is empty
            rows, total = await store.list_artifacts(conn, user_id(context), order_by, page)
        return artifact_pb2.ListArtifactsResponse(
            artifacts=[artifact_message(row) for row in rows[: page.limit]],
            next_page_token=keyset.next_token(rows, page) if keyset else next_offset_token(rows, page),
            total_size=total,
        )

    @rpc
    async def GetDownloadUrls(self, request, context):
        """Presigned GET URLs valid ``download_url_seconds``; raises NotFound, or InvalidArgument for unknown
        file names."""
        row = await self._artifact(user_id(context), request.artifact_id)
        files = artifact_message(row).artifacts
        names = select_files(files.keys(), request.files)
        expires_at = datetime.now(timezone.utc) + timedelta(seconds=self._download_url_seconds)
        urls = await asyncio.gather(
            *(
                asyncio.to_thread(
                    self._storage.presign_get, row.storage_bucket, files[name]["key"], self._download_url_seconds, name
                )
                for name in names
            )
        )
        response = artifact_pb2.GetDownloadUrlsResponse(
            download_urls=[
                artifact_pb2.DownloadUrl(file=name, url=url, size_bytes=int(files[name]["size_bytes"]))
                for name, url in zip(names, urls, strict=True)
            ]
        )
        response.expires_at.FromDatetime(expires_at)
        return response

    @rpc
    async def DeleteArtifact(self, request, context):
        """Soft delete: the artifact disappears from every call and its files from
        storage (the row stays, for the job's history). Raises NotFound."""
        artifact_id = artifact_uuid(request.artifact_id)
        async with self._db.transaction() as conn:
            row = await store.delete_artifact(conn, user_id(context), artifact_id)
        if row is None:
            raise NotFound(f"model {request.artifact_id!r} not found")
        deleted = artifact_message(row)
        # After the commit: a failed removal leaves unreachable files, never a
        # listed artifact whose files are gone.
        await asyncio.gather(
            *(
                asyncio.to_thread(self._storage.delete, row.storage_bucket, f["key"])
                for f in deleted.artifacts.values()
            )
        )
        return artifact_pb2.DeleteArtifactResponse(artifact=deleted)

    async def _artifact(self, uid: str, artifact_id: str):
        artifact_id = artifact_uuid(artifact_id)
        async with self._db.read() as conn:
            row = await store.get_artifact(conn, uid, artifact_id)
        if row is None:
            raise NotFound(f"model {artifact_id!r} not found")
        return row
