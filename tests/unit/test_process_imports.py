"""What the long-lived control-plane processes import, which they keep in memory for as long as they run.

The embedded launcher (``make up``: ``python -m services.platform``) only supervises, so it loads neither
SQLAlchemy (the services' database layer) nor botocore (whose S3 model alone keeps about 20 MB): the
services make their own buckets. The gateway talks to the services over gRPC, never to PostgreSQL.
Each is imported in a fresh interpreter, as its process starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _loaded(module: str, packages: tuple[str, ...]) -> list[str]:
    """Which of ``packages`` a fresh interpreter has loaded once it imported ``module``."""
    code = (f"import json, sys; import {module}; "
            f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({list(packages)!r}))))")
    path = os.pathsep.join([str(ROOT), str(ROOT / "gen"), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": path}, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize(("module", "packages"), [
    ("services.platform.__main__", ("sqlalchemy", "greenlet", "asyncpg", "botocore", "boto3")),
    ("gateway.__main__", ("sqlalchemy", "greenlet", "asyncpg")),
])
def test_a_long_lived_process_leaves_what_it_does_not_use_unloaded(module: str, packages: tuple[str, ...]) -> None:
    assert _loaded(module, packages) == []


def test_the_check_sees_what_a_service_loads() -> None:
    # The same probe on a service, which does use them: an empty answer above is not a broken probe.
    assert _loaded("services.dataset_svc.server", ("sqlalchemy", "botocore")) == ["botocore", "sqlalchemy"]
