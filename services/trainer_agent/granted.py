"""The agent's way into the object store: the grant its assignment carries
(``services.common.grants``), over plain HTTPS. The agent holds no store keys.

A refusal by the store (HTTP 403: the grant expired, or the key is not one it
names) is :class:`GrantRefused`, which no retry cures; a store that is away or
failing (connection errors, 5xx) raises what ``retry_io`` retries.
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from brightrun.artifact.v1 import artifact_pb2
from services.common.grants import object_ref
from services.common.storage import ObjectMissing
from services.trainer_agent.relay import Permanent

# Reads and writes stream; a store that answers nothing for this long is away.
_TIMEOUT = httpx.Timeout(60.0, connect=5.0)


class GrantRefused(Permanent):
    """The store refused the assignment's grant, or the grant does not cover the object."""


class GrantedStore:
    """Reads and writes exactly what ``grant`` allows."""

    def __init__(self, grant: artifact_pb2.ObjectGrant):
        self._grant = grant

    def download_file(self, bucket: str, key: str, path: Path) -> None:
        """``s3://bucket/key`` into ``path`` (whole, or not at all); raises ObjectMissing or GrantRefused."""
        url = self._grant.reads.get(object_ref(bucket, key))
        if url is None:
            raise GrantRefused(f"the assignment's grant does not cover reading s3://{bucket}/{key}")
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".part")
        with httpx.stream("GET", url, timeout=_TIMEOUT) as response:
            if response.status_code == 404:
                raise ObjectMissing(f"s3://{bucket}/{key}")
            _refused(response, f"reading s3://{bucket}/{key}")
            with partial.open("wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
        partial.replace(path)

    def upload_file(self, path: Path, key: str) -> None:
        """``path`` to ``key`` in the grant's bucket by its POST policy; raises GrantRefused."""
        if not self._grant.upload_url or not key.startswith(self._grant.upload_prefix):
            raise GrantRefused(f"the assignment's grant does not cover writing {key} "
                               f"(only under {self._grant.upload_prefix or 'nothing'})")
        with path.open("rb") as body:
            response = httpx.post(
                self._grant.upload_url, data={**self._grant.upload_fields, "key": key},
                files={"file": (path.name, body, "application/octet-stream")}, timeout=_TIMEOUT,
            )
        _refused(response, f"writing {key}")


def _refused(response: httpx.Response, what: str) -> None:
    """Raise GrantRefused for a 403, the HTTP error for any other failure."""
    if response.status_code == 403:
        response.read()
        message = re.search(r"<Message>(.*?)</Message>", response.text)
        raise GrantRefused(f"the object store refused {what}: {message.group(1) if message else response.text[:200]} "
                           "(the assignment's grant expired or does not cover it)")
    response.raise_for_status()
