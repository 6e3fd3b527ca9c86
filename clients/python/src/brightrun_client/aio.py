"""The asynchronous client: the same calls as ``Client``, awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from brightrun_client._core import (
    JobEvent,
    JobEventCursor,
    RetryPolicy,
    SseDecoder,
    error_of,
    read_body,
    retry_after_seconds,
    should_retry,
)
from brightrun_client._endpoints import Call, Endpoints
from brightrun_client._transfer import (
    CHUNK_SIZE,
    STREAM_TIMEOUT,
    Progress,
    download_target,
    file_chunks,
    stream_dropped,
    upload_headers,
)
from brightrun_client.config import load_config
from brightrun_client.errors import BrightRunError
from brightrun_client.models import Dataset, Job, MetricPoint


class AsyncClient(Endpoints):
    """The BrightRun API over HTTP, for asyncio. ``async with AsyncClient() as client: await client.get_job(id)``.

    Every method of ``Endpoints`` returns an awaitable; retries and errors as ``Client``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        if base_url is None or token is None:
            config = load_config()
            base_url, token = base_url or config.url, token or config.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout)
        # Presigned object-store URLs carry their own signature and must not get the bearer token.
        self._store = httpx.AsyncClient(timeout=timeout)
        self.retry = retry
        self._sleep = sleep

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._store.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def _with_retries(self, send: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await send()
            except httpx.ConnectError:
                if attempt >= self.retry.max_retries:
                    raise
                retry_after = None
            else:
                if not should_retry(response) or attempt >= self.retry.max_retries:
                    return response
                retry_after = retry_after_seconds(response)
            await self._sleep(self.retry.delay(attempt, retry_after))
            attempt += 1

    async def _send(self, call: Call) -> Any:
        response = await self._with_retries(
            lambda: self._http.request(call.method, call.path, params=call.params, json=call.json,
                                       headers=call.headers,
                                       **({"timeout": call.timeout} if call.timeout else {}))
        )
        return call.parse(read_body(response))

    async def _paged(self, lister, limit: int, filters: dict) -> AsyncIterator:
        page, cursor = 1, None
        while True:
            answer = await lister(page, limit, cursor=cursor, **filters)
            for item in answer.items:
                yield item
            if not answer.has_more:
                return
            page, cursor = page + 1, answer.next_cursor

    async def upload_file(self, url: str, path: str | Path, progress: Progress | None = None,
                          chunk_size: int = CHUNK_SIZE) -> None:
        """PUT a file to a presigned URL, streamed in chunks read off the event loop; ``progress(sent, total)``."""
        path = Path(path)

        async def chunks() -> AsyncIterator[bytes]:
            reader = file_chunks(path, chunk_size, progress)
            while (chunk := await asyncio.to_thread(next, reader, None)) is not None:
                yield chunk

        response = await self._with_retries(
            lambda: self._store.put(url, content=chunks(), headers=upload_headers(path))
        )
        if not response.is_success:
            raise BrightRunError(response.status_code, "Upload to the object store failed", response.text[:500])

    async def upload_dataset(
        self,
        path: str | Path,
        name: str | None = None,
        *,
        format: str | None = None,
        description: str | None = None,
        base_model: str | None = None,
        progress: Progress | None = None,
    ) -> Dataset:
        """Register, upload and confirm a dataset file; returns it as confirmed (``validating``)."""
        path = Path(path)
        ticket = await self.create_dataset(name or path.stem, path.name, path.stat().st_size, format=format,
                                           description=description, base_model=base_model)
        await self.upload_file(ticket.upload_url, path, progress)
        return await self.confirm_upload(ticket.dataset.id)

    async def wait_dataset(self, dataset_id: str, timeout: float = 600.0, poll: float = 1.0) -> Dataset:
        """Poll until validation has settled (``ready`` or ``error``); raises TimeoutError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            dataset = await self.get_dataset(dataset_id)
            if dataset.settled:
                return dataset
            if time.monotonic() > deadline:
                raise TimeoutError(f"dataset {dataset_id} still {dataset.status} after {timeout:.0f}s")
            await self._sleep(poll)

    async def job_events(self, job_id: str, after_step: int = 0) -> AsyncIterator[JobEvent]:
        """The job's live events, resumed after a dropped connection: see ``Client.job_events``."""
        cursor = JobEventCursor(after_step)
        drops = 0
        while True:
            retry_after = cursor.error = None
            try:
                async with self._http.stream("GET", f"/api/jobs/{job_id}/events", headers=cursor.headers(),
                                             timeout=STREAM_TIMEOUT) as response:
                    if not response.is_success:
                        await response.aread()
                        error = error_of(response)
                        if not should_retry(response):
                            raise error
                        retry_after = error.retry_after
                    else:
                        decoder = SseDecoder()
                        async for line in response.aiter_lines():
                            frame = decoder.feed(line)
                            event = cursor.accept(frame) if frame else None
                            if isinstance(event, MetricPoint):
                                drops = 0
                            if event is not None:
                                yield event
                        error = cursor.error
            except (httpx.TransportError, httpx.StreamError) as exc:
                error = exc
            if cursor.finished:
                return
            if drops >= self.retry.max_retries:
                raise stream_dropped(job_id, drops, error)
            await self._sleep(self.retry.delay(drops, retry_after))
            drops += 1

    async def wait_job(self, job_id: str, on_event: Callable[[JobEvent], None] | None = None) -> Job:
        """Follow the job's events until it ends; returns the job as it ended."""
        job = None
        async for event in self.job_events(job_id):
            if on_event is not None:
                on_event(event)
            if isinstance(event, Job):
                job = event
        return job

    async def download_model(self, model_id: str, directory: str | Path,
                             progress: Progress | None = None) -> list[Path]:
        """Download every file of the model's adapter into ``directory``; ``progress(done, total)`` per chunk."""
        urls = await self.download_urls(model_id)
        total = sum(u.size_bytes for u in urls)
        done = 0
        written = []
        for item in urls:
            target = download_target(directory, item.file)
            async with self._store.stream("GET", item.url) as response:
                if not response.is_success:
                    await response.aread()
                    raise BrightRunError(response.status_code, f"Download of {item.file} failed", response.text[:500])
                with target.open("wb") as out:
                    async for chunk in response.aiter_bytes(CHUNK_SIZE):
                        out.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
            written.append(target)
        return written
