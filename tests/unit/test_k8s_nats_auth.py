"""deploy/k8s's NATS authorization agrees with services.common.nats_access: the ConfigMap is
what the code generates (regenerate it with ``python -m services.common.nats_access >
deploy/k8s/base/nats-auth.yaml``), nats-server accepts it with the passwords in its
environment, and every pod that speaks NATS logs in as its own identity from the Secret."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from kustomize import render
from services.common import nats_access
from services.common.components import _venv_binary

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# Deployment name -> the identity it logs in as.
IDENTITY_OF = {"dataset-svc": "dataset_svc", "job-svc": "job_svc", "artifact-svc": "artifact_svc",
               "billing-svc": "billing_svc", "trainer-agent": "trainer_agent"}


def test_the_config_map_is_what_the_code_generates():
    assert (K8S / "base" / "nats-auth.yaml").read_text() == nats_access.k8s_config_map()


def test_nats_server_accepts_the_config_with_the_passwords_from_its_environment(tmp_path):
    (config_map,) = [o for o in render(K8S / "base") if o["kind"] == "ConfigMap"
                     and o["metadata"]["name"] == "brightrun-nats-auth"]
    config = tmp_path / "nats.conf"
    config.write_text(config_map["data"]["brightrun-auth.conf"])
    env = {nats_access.password_variable(user): f"secret-{user}" for user in nats_access.USERS}
    checked = subprocess.run([_venv_binary("nats-server"), "-c", str(config), "-t"], env=env,
                             capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    # Without a password in its environment the server refuses to start rather than let anyone in.
    missing = subprocess.run([_venv_binary("nats-server"), "-c", str(config), "-t"], env={},
                             capture_output=True, text=True, timeout=30)
    assert missing.returncode != 0 and "BRIGHTRUN_NATS_PASSWORD_" in missing.stderr


def test_every_pod_that_speaks_nats_logs_in_as_its_own_identity():
    deployments = {o["metadata"]["name"]: o for o in render(K8S / "base") if o["kind"] == "Deployment"}
    logins = {}
    for name, deployment in deployments.items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in container.get("env", [])}
        if "BRIGHTRUN_NATS_USER" not in env:
            continue
        user = env["BRIGHTRUN_NATS_USER"]["value"]
        secret = env["BRIGHTRUN_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert secret == {"name": "brightrun-nats-users", "key": user}
        logins[name] = user
    # The gateway speaks no NATS and gets no identity.
    assert logins == IDENTITY_OF
    assert set(logins.values()) == set(nats_access.IDENTITIES)
