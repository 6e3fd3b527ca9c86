"""gRPC ArtifactService: translates requests to store calls, scoped by the caller."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from brightrun.artifact.v1 import artifact_pb2, artifact_pb2_grpc

from services.artifact_svc import store
from services.artifact_svc.generation import Generator
from services.common.sampling import read_request
from services.artifact_svc.listing import DEFAULT_PAGE_SIZE, artifact_uuid, parse_order, select_files
from services.common.paging import canonical_uuid, next_offset_token, parse_page
from services.artifact_svc.exports import parse_kind, request_export
from services.artifact_svc.messages import artifact_message, export_message, model_ref
from services.common.db import Database
from services.common.errors import NotFound
from services.common.grpc import rpc, user_id
from services.common.grants import Granter
from services.common.storage import ObjectStorage

class ArtifactHandlers(artifact_pb2_grpc.ArtifactServiceServicer):
    """``download_url_seconds``: how long a download URL is valid (Settings.download_url_seconds)."""

    def __init__(self, db: Database, storage: ObjectStorage, download_url_seconds: int, generator: Generator,
                 grants: Granter):
        self._db = db
        self._storage = storage
        self._download_url_seconds = download_url_seconds
        self._generator = generator
        self._grants = grants

    @rpc
    async def GetArtifact(self, request, context):
        """The artifact with its lineage; raises NotFound for a missing, deleted or another user's artifact."""
        uid = user_id(context)
        row = await self._artifact(uid, request.artifact_id)
        artifact = artifact_message(row)
        async with self._db.read() as conn:
            artifact.lineage.extend(model_ref(r) for r in await store.lineage(conn, uid, str(row.id)))
        return artifact_pb2.GetArtifactResponse(artifact=artifact)

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
            exports = await store.list_exports(conn, user_id(context), artifact_id)
        if row is None:
            raise NotFound(f"model {request.artifact_id!r} not found")
        deleted = artifact_message(row)
        keys = [f["key"] for f in deleted.artifacts.values()]
        keys += [f.key for e in exports for f in export_message(e).files]
        # After the commit: a failed removal leaves unreachable files, never a
        # listed artifact whose files are gone.
        await asyncio.gather(
            *(
                asyncio.to_thread(self._storage.delete, row.storage_bucket, key)
                for key in keys
            )
        )
        return artifact_pb2.DeleteArtifactResponse(artifact=deleted)

    @rpc
    async def Generate(self, request, context):
        """Raises NotFound as GetArtifact, InvalidArgument naming the field, then what Generator.generate raises."""
        row = await self._artifact(user_id(context), request.artifact_id)
        sampling = read_request(request)
        return await self._generator.generate(artifact_message(row), sampling)

    @rpc
    async def CreateExport(self, request, context):
        """Raises NotFound as GetArtifact, InvalidArgument naming `kind`."""
        kind = parse_kind(request.kind)
        row = await self._artifact(user_id(context), request.artifact_id)
        export = await request_export(self._db, row, kind, self._grants)
        return artifact_pb2.CreateExportResponse(export=export_message(export))

    @rpc
    async def ListExports(self, request, context):
        uid = user_id(context)
        row = await self._artifact(uid, request.artifact_id)
        async with self._db.read() as conn:
            rows = await store.list_exports(conn, uid, str(row.id))
        return artifact_pb2.ListExportsResponse(exports=[export_message(r) for r in rows])

    @rpc
    async def GetExport(self, request, context):
        """The export, with presigned URLs of its files once completed; raises NotFound."""
        uid = user_id(context)
        artifact_id = artifact_uuid(request.artifact_id)
        export_id = canonical_uuid(request.export_id)
        row = None
        if export_id is not None:
            async with self._db.read() as conn:
                row = await store.get_export(conn, uid, artifact_id, export_id)
        if row is None:
            raise NotFound(f"export {request.export_id!r} of model {request.artifact_id!r} not found")
        export = export_message(row)
        response = artifact_pb2.GetExportResponse(export=export)
        if export.status == "completed":
            files = sorted(export.files, key=lambda f: f.name)
            urls = await asyncio.gather(*(
                asyncio.to_thread(self._storage.presign_get, export.storage_bucket, f.key,
                                  self._download_url_seconds, f.name)
                for f in files
            ))
            response.download_urls.extend(
                artifact_pb2.DownloadUrl(file=f.name, url=url, size_bytes=f.size_bytes)
                for f, url in zip(files, urls, strict=True)
            )
            response.expires_at.FromDatetime(datetime.now(timezone.utc) + timedelta(seconds=self._download_url_seconds))
        return response

    async def _artifact(self, uid: str, artifact_id: str):
        artifact_id = artifact_uuid(artifact_id)
        async with self._db.read() as conn:
            row = await store.get_artifact(conn, uid, artifact_id)
        if row is None:
            raise NotFound(f"model {artifact_id!r} not found")
        return row
