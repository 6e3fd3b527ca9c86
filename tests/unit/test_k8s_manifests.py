"""The Kubernetes manifests agree with the code: every component the platform
runs is deployed, every variable they set is one the code reads, addresses
and probes line up, secrets stay out of the ConfigMap, and the overlay's
patches land where they mean to."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from services.platform.launcher import _ADDR_VARS, SERVICES

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SECRETS = {"BRIGHTRUN_DATABASE_URL", "BRIGHTRUN_S3_ACCESS_KEY", "BRIGHTRUN_S3_SECRET_KEY", "BRIGHTRUN_JWT_SECRET"}


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="module")
def base() -> dict[tuple[str, str], dict]:
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in (K8S / "base").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk, "every manifest in base is listed in its kustomization, and nothing else"
    return {(doc["kind"], doc["metadata"]["name"]): doc for name in listed for doc in _documents(K8S / "base" / name)}


def _container(deployment: dict) -> dict:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _env_names_the_code_reads() -> set[str]:
    sources = [*ROOT.glob("services/**/*.py"), *ROOT.glob("gateway/**/*.py")]
    return {name for path in sources for name in re.findall(r"\b(?:BRIGHTRUN|HF)_[A-Z0-9_]+\b", path.read_text())}


def test_every_component_runs_as_a_deployment(base):
    modules = {" ".join(_container(d)["args"]) for (kind, _), d in base.items() if kind == "Deployment"}
    expected = {f"python -m services.{s}" for s in SERVICES} | {"python -m gateway", "python -m services.trainer_agent"}
    assert modules == expected


def test_every_variable_set_is_one_the_code_reads(base):
    known = _env_names_the_code_reads() | {"HF_HOME"}
    config = base[("ConfigMap", "brightrun-config")]["data"]
    container_env = {e["name"] for (kind, _), d in base.items() if kind == "Deployment" for e in _container(d)["env"]}
    assert set(config) | container_env <= known
    assert not SECRETS & set(config), "secrets belong in the brightrun-secrets Secret, not the ConfigMap"


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_listens_where_its_clients_and_probes_look(base, service):
    name = service.replace("_", "-")
    config = base[("ConfigMap", "brightrun-config")]["data"]
    host, port = config[_ADDR_VARS[service]].rsplit(":", 1)
    container = _container(base[("Deployment", name)])
    listen = {e["name"]: e["value"] for e in container["env"]}[_ADDR_VARS[service]]
    assert host == name and listen == f"0.0.0.0:{port}"
    assert container["ports"][0]["containerPort"] == int(port)
    assert container["readinessProbe"]["grpc"]["port"] == int(port)
    assert base[("Service", name)]["spec"]["ports"][0]["port"] == int(port)


def _resolve(document: dict, pointer: str):
    node = document
    for part in pointer.lstrip("/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def test_the_overlay_patches_what_it_means_to(base):
    overlay = yaml.safe_load((K8S / "overlays" / "h100x8" / "kustomization.yaml").read_text())
    (patch,) = overlay["patches"]
    agent = base[("Deployment", patch["target"]["name"])]
    for op in yaml.safe_load(patch["patch"]):
        _resolve(agent, op["path"])  # a replace needs its target to exist
    env = _container(agent)["env"]
    assert env[1]["name"] == "BRIGHTRUN_AGENT_GPU_COUNT", "the overlay replaces env/1 as the GPU count"
