"""deploy/k8s/components/mtls over base: cert-manager issues each gRPC service and the gateway a
certificate for the names its callers use, every pod that speaks gRPC mounts its own, and the
variables the patches set make each process's settings mutual TLS (read by ``read_settings`` with
certificates made here standing in for cert-manager's), with the kubelet's probes on the plaintext
health port. The schemas of the other kinds are checked by test_k8s_manifests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from kustomize import render
from tls_kit import Authority

from services.common.config import read_settings
from services.platform.launcher import _ADDR_VARS, SERVICES

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
CALLERS = {"gateway", "job-svc"}  # the pods that call a gRPC service (test_k8s_manifests derives the calls)
SERVICE_PODS = {service.replace("_", "-"): service for service in SERVICES}


@pytest.fixture(scope="module")
def objects(tmp_path_factory) -> list[dict]:
    overlay = tmp_path_factory.mktemp("overlay")
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(K8S / "base", overlay)],
        "components": [os.path.relpath(K8S / "components" / "mtls", overlay)],
    }))
    return render(overlay)


def _named(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _container(deployment: dict) -> dict:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _certificate_mount(deployment: dict) -> tuple[str, str]:
    """(the Secret mounted for gRPC TLS, where)."""
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    (mount,) = [m for m in _container(deployment)["volumeMounts"] if "secret" in volumes[m["name"]]]
    return volumes[mount["name"]]["secret"]["secretName"], mount["mountPath"]


def test_every_certificate_comes_from_the_ca_issuer_which_cert_manager_makes(objects):
    issuers, certificates = _named(objects, "Issuer"), _named(objects, "Certificate")
    ca = certificates["brightrun-grpc-ca"]["spec"]
    assert ca["isCA"] and issuers[ca["issuerRef"]["name"]]["spec"] == {"selfSigned": {}}
    assert issuers["brightrun-grpc-ca"]["spec"]["ca"]["secretName"] == ca["secretName"]
    for name, certificate in certificates.items():
        if name != "brightrun-grpc-ca":
            assert certificate["spec"]["issuerRef"] == {"name": "brightrun-grpc-ca", "kind": "Issuer"}, name


def test_each_grpc_pod_mounts_a_certificate_valid_for_the_names_and_uses_it_has(objects):
    config = _named(objects, "ConfigMap")["brightrun-config"]["data"]
    by_secret = {c["spec"]["secretName"]: c["spec"] for c in _named(objects, "Certificate").values()}
    deployments = _named(objects, "Deployment")
    for name in [*SERVICE_PODS, "gateway"]:
        secret, _ = _certificate_mount(deployments[name])
        spec = by_secret[secret]
        if name in SERVICE_PODS:
            host = config[_ADDR_VARS[SERVICE_PODS[name]]].rsplit(":", 1)[0]
            assert host in spec["dnsNames"] and "server auth" in spec["usages"], name
        if name in CALLERS:
            assert "client auth" in spec["usages"], name
    # The trainer agents speak no gRPC: no certificate, no TLS variable.
    agent = _container(deployments["trainer-agent"])
    assert not [e for e in agent["env"] if e["name"].startswith("BRIGHTRUN_GRPC_TLS_")]


@pytest.mark.parametrize("name", [*SERVICE_PODS, "gateway"])
def test_the_variables_set_make_the_pods_settings_mutual_tls(objects, name, tmp_path):
    deployment = _named(objects, "Deployment")[name]
    container = _container(deployment)
    _, mount = _certificate_mount(deployment)
    # What cert-manager's Secret holds, at a path of this machine instead of the mount.
    ca = Authority(tmp_path, "ca")
    leaf = ca.issue(name, server=True, client=True)
    files = {"ca.crt": ca.issued.cert, "tls.crt": leaf.cert, "tls.key": leaf.key}
    env = {e["name"]: e["value"] for e in container["env"] if e["name"].startswith("BRIGHTRUN_GRPC_TLS_")}
    for variable, value in env.items():
        if value.startswith(mount + "/"):
            env[variable] = str(files[value.removeprefix(mount + "/")])
    tls = read_settings({
        "BRIGHTRUN_DATABASE_URL": "postgresql://unused", "BRIGHTRUN_S3_ENDPOINT": "http://unused",
        "BRIGHTRUN_S3_ACCESS_KEY": "unused", "BRIGHTRUN_S3_SECRET_KEY": "unused",
        "BRIGHTRUN_INTERNAL_TOKEN_SECRET": "k8s-test-internal-token-secret-0123456789", **env,
    }).grpc_tls
    assert tls is not None and tls.ca == ca.issued.cert
    assert (tls.client_cert, tls.client_key) == (leaf.cert, leaf.key)
    if name == "gateway":
        assert tls.cert is None  # it serves HTTP only
        return
    assert (tls.cert, tls.key, tls.require_client_cert) == (leaf.cert, leaf.key, True)
    ports = {p["containerPort"] for p in container["ports"]}
    assert tls.health_port in ports
    assert container["readinessProbe"]["grpc"]["port"] == container["livenessProbe"]["grpc"]["port"] == tls.health_port
