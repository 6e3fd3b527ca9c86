"""Generate the Python gRPC code for every .proto under protos/ into gen/.

Run: ``python protos/generate.py`` (``make venv`` does, before it installs the
project; gen/ is a build output and not tracked). The output tree mirrors the
proto packages (``gen/brightrun/job/v1/job_pb2.py``) so generated modules import
each other by package path. ``--check`` regenerates into a temporary directory
and exits 1 when gen/ differs, which is what the staleness test runs.
"""

from __future__ import annotations

import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

PROTOS = Path(__file__).resolve().parent
GEN = PROTOS.parent / "gen"


def generate(out: Path) -> None:
    """Write generated modules into ``out``; raises RuntimeError when protoc fails."""
    include = Path(protoc.__file__).parent / "_proto"
    sources = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    out.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed; see the messages above")
    for package in {p.parent for p in out.rglob("*_pb2.py")}:
        while package != out:
            (package / "__init__.py").touch()
            package = package.parent


def _differences(a: Path, b: Path) -> list[str]:
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    diffs = sorted(str(p) for p in files_a ^ files_b)
    diffs += sorted(str(p) for p in files_a & files_b if not filecmp.cmp(a / p, b / p, shallow=False))
    return diffs


def main() -> int:
    if "--check" in sys.argv[1:]:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            diffs = _differences(Path(tmp), GEN)
        if diffs:
            print("gen/ is stale; run `make protos`. Differs:", *diffs, sep="\n  ")
            return 1
        return 0
    # From scratch: a module of a removed .proto must not linger.
    shutil.rmtree(GEN, ignore_errors=True)
    generate(GEN)
    return 0


if __name__ == "__main__":
    sys.exit(main())
