"""Continued training: the parent model a job names (CreateJobRequest.parent_model_id)
must be the caller's, live, and trained on the job's base model with the
job's rank, so that its adapter's weights load into the job's LoRA. Its
adapter files go into the job's assignment.

Target modules need no check of their own: every job adapts the same modules
of its base model (the trainer resolves "all-linear", Hyperparameters has no
target_modules), so the same base model means the same modules.
"""

from __future__ import annotations

import grpc
from google.protobuf.json_format import MessageToDict

from brightrun.artifact.v1 import artifact_pb2, artifact_pb2_grpc
from services.common.artifact_files import adapter_manifest
from services.common.errors import NotFound, field_errors
from services.common.grpc import as_user, downstream_timeout
from services.common.paging import canonical_uuid
from services.job_svc.hyperparameters import JobConfig

ARTIFACT_TIMEOUT_S = 10.0


async def parent_adapter(
    artifacts: artifact_pb2_grpc.ArtifactServiceStub, uid: str, parent_model_id: str, config: JobConfig
) -> tuple[str, artifact_pb2.AdapterManifest]:
    """The parent's canonical id and adapter files; raises NotFound for a malformed, missing, deleted or
    another user's model, InvalidArgument naming `parent_model_id` and each mismatch."""
    canonical = canonical_uuid(parent_model_id)
    if canonical is None:
        raise NotFound(f"Model {parent_model_id!r} not found")
    try:
        reply = await artifacts.GetArtifact(
            artifact_pb2.GetArtifactRequest(artifact_id=canonical), metadata=as_user(uid),
            timeout=downstream_timeout(ARTIFACT_TIMEOUT_S),
        )
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            raise NotFound(f"Model {parent_model_id!r} not found") from None
        raise
    parent = reply.artifact
    if problems := mismatches(parent, config):
        field_errors({"parent_model_id": problems})
    return canonical, adapter_manifest(parent)


def mismatches(parent: artifact_pb2.ModelArtifact, config: JobConfig) -> list[str]:
    """Why ``parent``'s adapter cannot start a job of ``config``, one sentence each; empty when it can."""
    configuration = MessageToDict(parent.configuration)
    base = configuration.get("base_model")
    rank = (configuration.get("hyperparameters") or {}).get("rank")
    rank = int(rank) if rank is not None else None
    problems = []
    if base != config.base_model:
        problems.append(f"the parent model was trained on base model {base!r}, this job's is {config.base_model!r}; "
                        "continue on the same base model")
    if rank != config.rank:
        problems.append(f"the parent model has rank {rank}, this job's is {config.rank}; set hyperparameters.rank "
                        f"to {rank}")
    return problems
