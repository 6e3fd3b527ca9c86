"""File transfers to and from presigned object-store URLs, and the event stream's limits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from brightrun_client.errors import BrightRunError

CHUNK_SIZE = 1 << 20
# The gateway sends a keepalive comment every 15 s, so a minute of silence is a dead connection.
STREAM_TIMEOUT = httpx.Timeout(30.0, read=60.0)

Progress = Callable[[int, int], None]
"""Called with (bytes done, bytes in all) as a transfer goes."""


def file_chunks(path: Path, chunk_size: int, progress: Progress | None) -> Iterator[bytes]:
    """The file's bytes in chunks, read as they are sent; reports progress after each chunk."""
    total = path.stat().st_size
    sent = 0
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            sent += len(chunk)
            yield chunk
            if progress is not None:
                progress(sent, total)


def upload_headers(path: Path) -> dict[str, str]:
    # An explicit length: S3 refuses a chunked PUT to a presigned URL, and httpx then sends none.
    return {"Content-Length": str(path.stat().st_size)}


def download_target(directory: str | Path, name: str) -> Path:
    """Where a downloaded file goes: ``directory/name``; raises BrightRunError for a name that would leave it."""
    directory = Path(directory)
    if not name or Path(name).name != name or name in (".", ".."):
        raise BrightRunError(None, "The server named a download file outside the target directory", name)
    directory.mkdir(parents=True, exist_ok=True)
    return directory / name


def stream_dropped(job_id: str, drops: int, error: Exception | None) -> BrightRunError:
    """The error to raise once a job's event stream could not be kept open."""
    if isinstance(error, BrightRunError):
        return error
    detail = f"{type(error).__name__}: {error}" if error else "the server closed the stream before the job ended"
    return BrightRunError(None, f"The event stream of job {job_id} dropped {drops} times in a row", detail)
