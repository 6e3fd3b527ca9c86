"""The synchronous client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
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


class Client(Endpoints):
    """The BrightRun API over HTTP. Use as a context manager, or call ``close()``.

    Answers 429 and 503 (and failed connections) are retried as ``retry`` says;
    any other error answer raises ``BrightRunError``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy = RetryPolicy(),
        sleep: Callable[[float], None] = time.sleep,
    ):
        if base_url is None or token is None:
            config = load_config()
            base_url, token = base_url or config.url, token or config.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout)
        # Presigned object-store URLs carry their own signature and must not get the bearer token.
        self._store = httpx.Client(timeout=timeout)
        self.retry = retry
        self._sleep = sleep

    def close(self) -> None:
        self._http.close()
        self._store.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _with_retries(self, send: Callable[[], httpx.Response]) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = send()
            except httpx.ConnectError:
                if attempt >= self.retry.max_retries:
                    raise
                retry_after = None
            else:
                if not should_retry(response) or attempt >= self.retry.max_retries:
                    return response
                retry_after = retry_after_seconds(response)
            self._sleep(self.retry.delay(attempt, retry_after))
            attempt += 1

    def _send(self, call: Call) -> Any:
        response = self._with_retries(
            lambda: self._http.request(call.method, call.path, params=call.params, json=call.json,
                                       headers=call.headers,
                                       **({"timeout": call.timeout} if call.timeout else {}))
        )
        return call.parse(read_body(response))

    def _paged(self, lister, limit: int, filters: dict) -> Iterator:
        page, cursor = 1, None
        while True:
            answer = lister(page, limit, cursor=cursor, **filters)
            yield from answer.items
            if not answer.has_more:
                return
            page, cursor = page + 1, answer.next_cursor

    def upload_file(self, url: str, path: str | Path, progress: Progress | None = None,
                    chunk_size: int = CHUNK_SIZE) -> None:
        """PUT a file to a presigned URL, streamed in chunks; ``progress(sent, total)`` after each."""
        path = Path(path)
        response = self._with_retries(
            lambda: self._store.put(url, content=file_chunks(path, chunk_size, progress), headers=upload_headers(path))
        )
        if not response.is_success:
            raise BrightRunError(response.status_code, "Upload to the object store failed", response.text[:500])

    def upload_dataset(
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
        ticket = self.create_dataset(name or path.stem, path.name, path.stat().st_size, format=format,
                                     description=description, base_model=base_model)
        self.upload_file(ticket.upload_url, path, progress)
        return self.confirm_upload(ticket.dataset.id)

    def wait_dataset(self, dataset_id: str, timeout: float = 600.0, poll: float = 1.0) -> Dataset:
        """Poll until validation has settled (``ready`` or ``error``); raises TimeoutError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            dataset = self.get_dataset(dataset_id)
            if dataset.settled:
                return dataset
            if time.monotonic() > deadline:
                raise TimeoutError(f"dataset {dataset_id} still {dataset.status} after {timeout:.0f}s")
            self._sleep(poll)

    def job_events(self, job_id: str, after_step: int = 0) -> Iterator[JobEvent]:
        """The job's live events: a ``Job`` for each status update, a ``MetricPoint`` for each step after
        ``after_step``, until the job has ended.

        A dropped connection, or one the gateway ended with an error frame, is
        reopened with ``Last-Event-ID`` set to the last step seen, so no point
        is lost or repeated; after ``retry.max_retries`` drops in a row without
        a new point the last error is raised. An error answer other than
        429/503 when (re)opening it is raised at once.
        """
        cursor = JobEventCursor(after_step)
        drops = 0
        while True:
            retry_after = cursor.error = None
            try:
                with self._http.stream("GET", f"/api/jobs/{job_id}/events", headers=cursor.headers(),
                                       timeout=STREAM_TIMEOUT) as response:
                    if not response.is_success:
                        response.read()
                        error = error_of(response)
                        if not should_retry(response):
                            raise error
                        retry_after = error.retry_after
                    else:
                        decoder = SseDecoder()
                        for line in response.iter_lines():
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
            self._sleep(self.retry.delay(drops, retry_after))
            drops += 1

    def wait_job(self, job_id: str, on_event: Callable[[JobEvent], None] | None = None) -> Job:
        """Follow the job's events until it ends; returns the job as it ended."""
        job = None
        for event in self.job_events(job_id):
            if on_event is not None:
                on_event(event)
            if isinstance(event, Job):
                job = event
        return job

    def download_model(self, model_id: str, directory: str | Path, progress: Progress | None = None) -> list[Path]:
        """Download every file of the model's adapter into ``directory``; ``progress(done, total)`` per chunk."""
        urls = self.download_urls(model_id)
        total = sum(u.size_bytes for u in urls)
        done = 0
        written = []
        for item in urls:
            target = download_target(directory, item.file)
            with self._store.stream("GET", item.url) as response:
                if not response.is_success:
                    response.read()
                    raise BrightRunError(response.status_code, f"Download of {item.file} failed", response.text[:500])
                with target.open("wb") as out:
                    for chunk in response.iter_bytes(CHUNK_SIZE):
                        out.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
            written.append(target)
        return written
