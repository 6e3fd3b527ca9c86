"""deploy/k8s/components/otel over base: every process exports its spans to the collector the
ConfigMap names, under its Deployment's name (as ``services.common.tracing`` reads the variables),
and the NetworkPolicies let every pod reach that collector's port. The schemas, the kustomize
agreement and the variables-the-code-reads check run on it in test_k8s_manifests."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from kustomize import render
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

from services.common import tracing

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def _render(tmp_path: Path, *components: str) -> list[dict]:
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [os.path.relpath(K8S / "base", tmp_path)],
        "components": [os.path.relpath(K8S / "components" / c, tmp_path) for c in components],
    }))
    return render(tmp_path)


@pytest.fixture(scope="module")
def objects(tmp_path_factory) -> list[dict]:
    return _render(tmp_path_factory.mktemp("overlay"), "otel")


def _named(objects: list[dict], kind: str) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def _environment(objects: list[dict], deployment: dict) -> dict[str, str]:
    """What the container's process sees of the ConfigMap and its own env (values only, no secrets)."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    configs = _named(objects, "ConfigMap")
    env = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env |= configs[source["configMapRef"]["name"]]["data"]
    return env | {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def test_every_process_exports_its_spans_under_its_deployments_name(objects):
    deployments = _named(objects, "Deployment")
    assert {"gateway", "trainer-agent", "job-svc"} <= set(deployments)
    for name, deployment in deployments.items():
        env = _environment(objects, deployment)
        assert isinstance(tracing.exporter(env), OTLPSpanExporter), name
        assert tracing.resource(name.replace("-", "_"), env).attributes["service.name"] == name


def test_without_the_component_nothing_is_exported(tmp_path):
    objects = _render(tmp_path)
    for name, deployment in _named(objects, "Deployment").items():
        env = _environment(objects, deployment)
        assert tracing.exporter(env) is None and "OTEL_SERVICE_NAME" not in env, name


def test_every_pod_may_reach_the_collectors_port_and_nothing_more(objects):
    (config,) = [c["data"] for c in _named(objects, "ConfigMap").values() if "OTEL_EXPORTER_OTLP_ENDPOINT" in c["data"]]
    endpoint = urlsplit(config["OTEL_EXPORTER_OTLP_ENDPOINT"])
    host, port = endpoint.hostname.split("."), endpoint.port
    policy = _named(objects, "NetworkPolicy")["otel-collector-egress"]["spec"]
    assert policy["podSelector"] == {} and policy["policyTypes"] == ["Egress"]
    (rule,) = policy["egress"]
    assert rule["ports"] == [{"protocol": "TCP", "port": port}]
    (peer,) = rule["to"]
    # The policy's namespace is the endpoint's (<service>.<namespace>.svc), and it names one kind of pod.
    assert peer["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": host[1]}}
    assert peer["podSelector"]["matchLabels"]
