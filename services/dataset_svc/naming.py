"""Create-request checks, file-name sanitising and storage keys. Pure: no I/O."""

from __future__ import annotations

import re
import unicodedata
import uuid

from services.common.errors import field_errors
from services.common.text import has_control_characters

MAX_FILE_SIZE = 500 * 1024 * 1024
FORMATS = ("brightrun_lora_v4", "openai_chat", "sharegpt")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def safe_file_name(file_name: str) -> str:
    """The client's file name reduced to a safe basename ('' when nothing safe is left)."""
    base = re.split(r"[\\/]", file_name.strip())[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    base = _UNSAFE.sub("_", base).strip("._")
    return base[:200]


def storage_key(user_id: str, dataset_id: str, safe_name: str) -> str:
    """The upload's object key, built by the service: never from a client path."""
    return f"{user_id}/{dataset_id}/{safe_name}"


def confirmed_key(user_id: str, dataset_id: str, safe_name: str) -> str:
    """A fresh key for the copy of a confirmed upload, the object validated and trained on.

    No upload URL is ever signed for it, and each confirm gets its own, so a
    late or concurrent write of the upload key cannot reach what was validated.
    """
    return f"{user_id}/{dataset_id}/validated/{uuid.uuid4().hex}/{safe_name}"


def check_create(name: str, file_name: str, file_size: int, fmt: str, sha256: str) -> str:
    """Check a create request; returns the safe file name; raises InvalidArgument naming every bad field."""
    problems: dict[str, list[str]] = {}
    if not name.strip() or len(name) > 200:
        problems["name"] = ["must be 1 to 200 characters"]
    elif has_control_characters(name):
        problems["name"] = ["must not contain control characters such as NUL, tabs or line breaks"]
    safe = safe_file_name(file_name)
    if not safe:
        problems["file_name"] = ["must contain letters or digits, e.g. conversations.jsonl"]
    if file_size <= 0:
        problems["file_size"] = ["must be the file's size in bytes, greater than 0"]
    elif file_size > MAX_FILE_SIZE:
        problems["file_size"] = ["Maximum file size is 500MB; split the file or remove unused records"]
    if fmt and fmt not in FORMATS:
        problems["format"] = [f"must be one of {', '.join(FORMATS)}, or empty to detect it"]
    if sha256 and not _SHA256.match(sha256.lower()):
        problems["sha256"] = ["must be 64 hexadecimal characters (sha256sum's output)"]
    field_errors(problems)
    return safe
