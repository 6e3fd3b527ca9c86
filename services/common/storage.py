"""The object store (S3 API through boto3): presigned URLs, streaming reads,
uploads. boto3 is synchronous: async callers wrap calls in ``asyncio.to_thread``.

Presigned URLs are signed against the public endpoint, the address the
*client* reaches (in Kubernetes it differs from the in-cluster one).
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from services.common.config import Settings
from services.common.startup import StartupError

_CONFIG = Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 5})


class ObjectMissing(Exception):
    """The key does not exist in the bucket."""


class ObjectStorage:
    def __init__(self, endpoint: str, public_endpoint: str, access_key: str, secret_key: str, region: str):
        def client(url: str):
            return boto3.client(
                "s3",
                endpoint_url=url,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                region_name=region,
                config=_CONFIG,
            )

        self._s3 = client(endpoint)
        self._public = client(public_endpoint)

    @classmethod
    def from_settings(cls, settings: Settings) -> "ObjectStorage":
        return cls(
            settings.s3_endpoint,
            settings.s3_public_endpoint,
            settings.s3_access_key,
            settings.s3_secret_key,
            settings.s3_region,
        )

    def ensure_bucket(self, bucket: str, setting: str) -> None:
        """Create ``bucket`` (named by ``setting``) unless it exists: each service makes the bucket it owns
        at its start, on the embedded default and on a cluster alike. Raises StartupError when the store
        refuses (wrong keys, a bucket name taken by another account), naming the bucket and its setting."""
        try:
            self._s3.head_bucket(Bucket=bucket)
            return
        except ClientError as exc:
            if _error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                raise _refused(exc, f"cannot reach bucket {bucket} ({setting})") from exc
        try:
            self._s3.create_bucket(Bucket=bucket)
        except ClientError as exc:
            # Another replica of the service made it first.
            if _error_code(exc) != "BucketAlreadyOwnedByYou":
                raise _refused(exc, f"cannot create bucket {bucket} ({setting})") from exc

    def presign_put(self, bucket: str, key: str, expires: int = 3600) -> str:
        return self._public.generate_presigned_url(
            "put_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires
        )

    def presign_get(self, bucket: str, key: str, expires: int = 3600, filename: str | None = None) -> str:
        params = {"Bucket": bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = f'attachment; filename="{filename}"'
        return self._public.generate_presigned_url("get_object", Params=params, ExpiresIn=expires)

    # Grants for trainer agents (services.common.grants), which reach the store at
    # the in-cluster endpoint: signed against that one, not the public one.
    def grant_get(self, bucket: str, key: str, expires: int) -> str:
        return self._s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires)

    def grant_post(self, bucket: str, prefix: str, expires: int) -> tuple[str, dict[str, str]]:
        """The URL and form fields of a POST upload of any key under ``prefix`` (the
        policy's ``starts-with $key`` condition, checked by the store)."""
        post = self._s3.generate_presigned_post(
            bucket, prefix + "${filename}", Conditions=[["starts-with", "$key", prefix]], ExpiresIn=expires
        )
        return post["url"], dict(post["fields"])

    def size(self, bucket: str, key: str) -> int:
        """Size in bytes; raises ObjectMissing when there is no such object."""
        try:
            return int(self._s3.head_object(Bucket=bucket, Key=key)["ContentLength"])
        except ClientError as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                raise ObjectMissing(f"s3://{bucket}/{key}") from exc
            raise

    def open(self, bucket: str, key: str) -> BinaryIO:
        """A streaming body with ``read(n)``; raises ObjectMissing."""
        try:
            return self._s3.get_object(Bucket=bucket, Key=key)["Body"]
        except self._s3.exceptions.NoSuchKey as exc:
            raise ObjectMissing(f"s3://{bucket}/{key}") from exc

    def copy(self, bucket: str, source: str, target: str) -> None:
        """Copy an object within ``bucket`` on the server (up to 5 GB); raises ObjectMissing."""
        try:
            self._s3.copy_object(Bucket=bucket, Key=target, CopySource={"Bucket": bucket, "Key": source})
        except ClientError as exc:
            if _error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                raise ObjectMissing(f"s3://{bucket}/{source}") from exc
            raise

    def upload_file(self, path: Path, bucket: str, key: str) -> None:
        self._s3.upload_file(str(path), bucket, key)

    def put_bytes(self, bucket: str, key: str, data: bytes) -> None:
        self._s3.put_object(Bucket=bucket, Key=key, Body=data)

    def get_bytes(self, bucket: str, key: str) -> bytes:
        return self.open(bucket, key).read()

    def download_file(self, bucket: str, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._s3.download_file(bucket, key, str(path))

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def delete(self, bucket: str, key: str) -> None:
        self._s3.delete_object(Bucket=bucket, Key=key)


def _error_code(exc: ClientError) -> str | None:
    return exc.response.get("Error", {}).get("Code")


def _refused(exc: ClientError, what: str) -> StartupError:
    return StartupError(f"the object store at BRIGHTRUN_S3_ENDPOINT refused: {what}: {exc}; check "
                        "BRIGHTRUN_S3_ACCESS_KEY/BRIGHTRUN_S3_SECRET_KEY, or create the bucket yourself")


# The layout of the models bucket, owned here: everything of one job's model
# lives under its model prefix.
def model_prefix(user_id: str, job_id: str) -> str:
    """``<user_id>/<job_id>/``: the job's checkpoints, adapter and exports."""
    return f"{user_id}/{job_id}/"


def adapter_prefix(prefix: str) -> str:
    return f"{prefix}adapter/"


def checkpoint_prefix(prefix: str) -> str:
    return f"{prefix}checkpoints/"


def checkpoint_key(prefix: str) -> str:
    """The job's newest uploaded checkpoint, one archive replaced whole by each upload: a
    key known when the job is queued, so that an agent's grant can name it."""
    return f"{checkpoint_prefix(prefix)}latest.tar"


def export_prefix(prefix: str, export_id: str) -> str:
    """One export's files (a merged model's shards, tokenizer and config)."""
    return f"{prefix}exports/{export_id}/"
