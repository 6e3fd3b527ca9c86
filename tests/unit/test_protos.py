import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_matches_the_protos():
    result = subprocess.run(
        [sys.executable, str(ROOT / "protos" / "generate.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_service_contract_is_generated():
    from brightrun.artifact.v1 import artifact_pb2_grpc
    from brightrun.billing.v1 import billing_pb2_grpc
    from brightrun.dataset.v1 import dataset_pb2_grpc
    from brightrun.events.v1 import events_pb2
    from brightrun.job.v1 import job_pb2_grpc

    stubs = [
        dataset_pb2_grpc.DatasetServiceStub,
        job_pb2_grpc.JobServiceStub,
        artifact_pb2_grpc.ArtifactServiceStub,
        billing_pb2_grpc.BillingServiceStub,
    ]
    assert all(callable(stub) for stub in stubs)
    payloads = {f.name for f in events_pb2.Event.DESCRIPTOR.oneofs_by_name["payload"].fields}
    assert {"dataset_validated", "job_completed", "trainer_metrics", "artifact_created"} <= payloads
