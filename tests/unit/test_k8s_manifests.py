"""The Kubernetes manifests, rendered (base and every overlay), agree with the
Kubernetes API and with the code: every object passes the API's JSON schema,
every component the platform runs is deployed from a pinned image with the
full securityContext, every variable set is one the code reads, every port a
Service, probe or NetworkPolicy names is on its pods, every secret is one the
operator's doc lists, every Deployment has a PodDisruptionBudget, and the
NetworkPolicies deny by default and allow exactly the calls the code makes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from services.common import db_roles
from services.common.config import SERVICE_SECRETS
from services.platform.launcher import _ADDR_VARS, SERVICES
from kustomize import MERGE_KEYS, render

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(f"overlays/{p.name}" for p in (K8S / "overlays").iterdir() if p.is_dir())
# A component no kustomization here includes is rendered over base, as an overlay adding it would.
_INCLUDING = "".join(k.read_text() for k in K8S.glob("*/**/kustomization.yaml") if "components" not in k.parts)
OPTIONAL_COMPONENTS = sorted(f"components/{p.name}" for p in (K8S / "components").iterdir() if f"components/{p.name}" not in _INCLUDING)
TARGETS = ["base", *OVERLAYS, *OPTIONAL_COMPONENTS]
# The oldest Kubernetes the manifests are written for (the README says so) and the newest schemas bundled.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
# Custom resources of cert-manager (components/mtls): the Kubernetes API's schemas lack them, so the schema
# check skips exactly these two kinds and test_mtls_* checks what they must say.
CERT_MANAGER = {("cert-manager.io/v1", "Issuer"), ("cert-manager.io/v1", "Certificate")}
SECRETS = {"BRIGHTRUN_DATABASE_URL", "BRIGHTRUN_S3_ACCESS_KEY", "BRIGHTRUN_S3_SECRET_KEY", "BRIGHTRUN_JWT_SECRET"}
LOCKED_DOWN = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
COMPONENTS = {f"services/{s}": s.replace("_", "-") for s in SERVICES} | {"gateway": "gateway"}
ADDRESS_OF = {name: f"{name}_addr" for name in ("dataset", "job", "artifact", "billing")}


@pytest.fixture(scope="module", params=TARGETS)
def target(request, tmp_path_factory) -> tuple[Path, list[dict]]:
    directory = K8S / request.param
    if request.param in OPTIONAL_COMPONENTS:
        directory = tmp_path_factory.mktemp("overlay")
        (directory / "kustomization.yaml").write_text(yaml.safe_dump({
            "resources": [os.path.relpath(K8S / "base", directory)],
            "components": [os.path.relpath(K8S / request.param, directory)],
        }))
    return directory, render(directory)


@pytest.fixture(scope="module")
def base() -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in render(K8S / "base")}


def _of(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def _pod_spec(deployment: dict) -> dict:
    return deployment["spec"]["template"]["spec"]


def _container(deployment: dict) -> dict:
    (container,) = _pod_spec(deployment)["containers"]
    return container


def _pod_labels(deployment: dict) -> dict:
    return deployment["spec"]["template"]["metadata"]["labels"]


def _selects(selector: dict, labels: dict) -> bool:
    """Kubernetes label-selector semantics (matchLabels and matchExpressions)."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        present = key in labels
        if not {
            "In": present and labels[key] in values,
            "NotIn": not present or labels[key] not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]:
            return False
    return True


def _pods(objects: list[dict], selector: dict) -> list[dict]:
    """The Deployments whose pods ``selector`` selects."""
    return [d for d in _of(objects, "Deployment") if _selects(selector, _pod_labels(d))]


def _has_port(deployment: dict, port) -> bool:
    ports = [p for c in _pod_spec(deployment)["containers"] for p in c.get("ports", [])]
    return any(p.get("name") == port if isinstance(port, str) else p["containerPort"] == port for p in ports)


def _normalised(value, field: str = ""):
    """``value`` with lists that kustomize merges by key put in key order, which its merge does not keep."""
    if isinstance(value, dict):
        return {k: _normalised(v, k) for k, v in value.items()}
    if isinstance(value, list):
        items = [_normalised(v) for v in value]
        if field not in MERGE_KEYS:
            return items
        return sorted(items, key=lambda item: str(item.get(MERGE_KEYS[field], item) if isinstance(item, dict) else item))
    return value


def _kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


@pytest.mark.skipif(_kustomize_command() is None, reason="no kustomize or kubectl on PATH to compare with")
def test_the_renderer_agrees_with_kustomize(target):
    directory, objects = target
    built = subprocess.run([*_kustomize_command(), str(directory)], capture_output=True, text=True, check=True)
    theirs = [doc for doc in yaml.safe_load_all(built.stdout) if doc]

    def keyed(docs):
        return {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): _normalised(d) for d in docs}

    assert keyed(objects) == keyed(theirs)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_is_valid_against_the_kubernetes_schemas(target, version):
    for obj in target[1]:
        if (obj["apiVersion"], obj["kind"]) not in CERT_MANAGER:
            kubernetes_validate.validate(obj, version, strict=True)


def test_every_component_runs_as_a_deployment_from_its_image(base):
    images = {" ".join(_container(d)["args"]): _container(d)["image"] for (k, _), d in base.items() if k == "Deployment"}
    control_plane = {f"python -m services.{s}" for s in SERVICES} | {"python -m gateway"}
    assert set(images) == control_plane | {"python -m services.trainer_agent"}
    assert {images[m].split(":")[0] for m in control_plane} == {"ghcr.io/brightrun/brightrun-control-plane"}
    assert images["python -m services.trainer_agent"].split(":")[0] == "ghcr.io/brightrun/brightrun-trainer"


def test_images_are_pinned(target):
    for deployment in _of(target[1], "Deployment"):
        for container in _pod_spec(deployment)["containers"]:
            image = container["image"]
            pinned = "@sha256:" in image or re.fullmatch(r"[^:@]+:(v?\d+\.\d+\.\d+[\w.-]*)", image)
            assert pinned, f"{deployment['metadata']['name']}: {image} is not pinned to a version or digest"


def test_every_image_is_a_dockerfile_target():
    targets = set(re.findall(r"^FROM \S+ AS (\S+)$", (ROOT / "Dockerfile").read_text(), re.M))
    images = {i["name"] for i in yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())["images"]}
    assert {name.removeprefix("brightrun-") for name in images} <= targets


def _env_names_the_code_reads() -> set[str]:
    sources = [*ROOT.glob("services/**/*.py"), *ROOT.glob("gateway/**/*.py")]
    return {name for path in sources for name in re.findall(r"\b(?:BRIGHTRUN|HF|OTEL)_[A-Z0-9_]+\b", path.read_text())}


def test_every_variable_set_is_one_the_code_reads(target):
    # HF_HOME is the Hugging Face libraries' own cache setting.
    known = _env_names_the_code_reads() | {"HF_HOME"}
    (config,) = [c["data"] for c in _of(target[1], "ConfigMap") if c["metadata"]["name"] == "brightrun-config"]
    env = {e["name"] for d in _of(target[1], "Deployment") for c in _pod_spec(d)["containers"] for e in c["env"]}
    assert set(config) | env <= known, f"set but never read: {sorted((set(config) | env) - known)}"
    assert not SECRETS & set(config), "secrets belong in the brightrun-secrets Secret, not the ConfigMap"


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_listens_where_its_clients_and_probes_look(base, service):
    name = service.replace("_", "-")
    config = base[("ConfigMap", "brightrun-config")]["data"]
    host, port = config[_ADDR_VARS[service]].rsplit(":", 1)
    container = _container(base[("Deployment", name)])
    listen = {e["name"]: e.get("value") for e in container["env"]}[_ADDR_VARS[service]]
    assert host == name and listen == f"0.0.0.0:{port}"
    assert {"name": "grpc", "containerPort": int(port)} in container["ports"]
    assert container["readinessProbe"]["grpc"]["port"] == int(port)
    assert base[("Service", name)]["spec"]["ports"][0]["port"] == int(port)


def test_each_service_alone_gets_a_database_url_its_own_role(target):
    """Row-level security holds only for the services' own roles (services.common.db_roles): each service reads
    its URL from its key of brightrun-database, and no other pod is given one."""
    assert set(db_roles.SERVICE_SCHEMAS) == set(SERVICES)
    for deployment in _of(target[1], "Deployment"):
        for container in _pod_spec(deployment)["containers"]:
            urls = [e for e in container["env"] if e["name"] == "BRIGHTRUN_DATABASE_URL"]
            name = deployment["metadata"]["name"]
            if name.replace("-", "_") in SERVICES:
                assert [u["valueFrom"]["secretKeyRef"] for u in urls] == [{"name": "brightrun-database", "key": name}]
            else:
                assert urls == [], f"{name} is given a database URL"


@pytest.mark.parametrize("service", SERVICES)
def test_a_new_service_pod_migrates_before_an_old_one_goes(base, service):
    """A service migrates its schema at start (advisory lock) before it serves: with no pod
    unavailable during a rollout, the first new pod has migrated and is ready before an old one stops."""
    strategy = base[("Deployment", service.replace("_", "-"))]["spec"]["strategy"]
    assert strategy == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def test_the_agent_is_given_no_credential_of_the_control_plane(target):
    """Agents reach the object store only by their assignments' grants (services.common.grants); the one
    secret of the platform's they hold is their own NATS identity's password."""
    (agent,) = [d for d in _of(target[1], "Deployment") if d["metadata"]["name"] == "trainer-agent"]
    container = _container(agent)
    assert _secret_references([agent]) <= {"brightrun-hf-token", "brightrun-nats-users"}
    nats_keys = {
        e["valueFrom"]["secretKeyRef"]["key"] for e in container["env"]
        if e.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == "brightrun-nats-users"
    }
    assert nats_keys == {"trainer_agent"}
    assert not {e["name"] for e in container["env"]} & set(SERVICE_SECRETS)


def test_the_agent_serves_its_probes_where_they_look(target):
    (agent,) = [d for d in _of(target[1], "Deployment") if d["metadata"]["name"] == "trainer-agent"]
    container = _container(agent)
    env = {e["name"]: e.get("value") for e in container["env"]}
    (health,) = [p["containerPort"] for p in container["ports"] if p["name"] == "health"]
    assert env["BRIGHTRUN_AGENT_HEALTH_PORT"] == str(health)
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    # The GPUs it advertises are the GPUs it is given.
    assert int(env["BRIGHTRUN_AGENT_GPU_COUNT"]) == container["resources"]["limits"]["nvidia.com/gpu"]


def test_every_container_is_locked_down(target):
    for deployment in _of(target[1], "Deployment"):
        spec = _pod_spec(deployment)
        for container in spec["containers"] + spec.get("initContainers", []):
            where = f"{deployment['metadata']['name']}/{container['name']}"
            context = container.get("securityContext", {})
            for key, value in LOCKED_DOWN.items():
                assert context.get(key) == value, f"{where}: securityContext.{key} must be {value}"
            assert isinstance(context.get("runAsUser"), int) and context["runAsUser"] > 0, f"{where}: numeric runAsUser"
            mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
            assert {"/tmp", "/var/lib/brightrun"} <= mounts, f"{where}: a read-only root needs /tmp and $HOME mounted"


def _probe_ports(container: dict) -> list:
    return [
        probe[kind]["port"]
        for probe in (container.get(p) for p in ("livenessProbe", "readinessProbe", "startupProbe"))
        if probe
        for kind in ("httpGet", "grpc", "tcpSocket")
        if kind in probe
    ]


def test_every_port_referenced_is_on_its_pods(target):
    objects = target[1]
    for deployment in _of(objects, "Deployment"):
        for container in _pod_spec(deployment)["containers"]:
            for port in _probe_ports(container):
                assert _has_port(deployment, port), f"{deployment['metadata']['name']}: probe port {port}"
    for service in _of(objects, "Service"):
        pods = _pods(objects, {"matchLabels": service["spec"]["selector"]})
        assert pods, f"Service {service['metadata']['name']} selects no pods"
        for port in service["spec"]["ports"]:
            assert all(_has_port(d, port["targetPort"]) for d in pods), f"{service['metadata']['name']}: {port}"
    for policy in _of(objects, "NetworkPolicy"):
        name = policy["metadata"]["name"]
        selected = _pods(objects, policy["spec"]["podSelector"])
        assert selected, f"NetworkPolicy {name} selects no pods"
        for rule in policy["spec"].get("ingress", []):
            for port in rule.get("ports", []):
                assert all(_has_port(d, port["port"]) for d in selected), f"{name}: ingress port {port['port']}"
        for rule in policy["spec"].get("egress", []):
            for peer in rule.get("to", []):
                if "podSelector" in peer and "namespaceSelector" not in peer:
                    destinations = _pods(objects, peer["podSelector"])
                    assert destinations, f"{name}: egress to no pods"
                    for port in rule.get("ports", []):
                        assert all(_has_port(d, port["port"]) for d in destinations), f"{name}: egress port {port}"
    services = {s["metadata"]["name"]: s for s in _of(objects, "Service")}
    for ingress in _of(objects, "Ingress"):
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["port"]["name"] in {p["name"] for p in services[backend["name"]]["spec"]["ports"]}


def _secret_references(objects: list[dict]) -> set[str]:
    names = {tls["secretName"] for i in _of(objects, "Ingress") for tls in i["spec"].get("tls", [])}
    for deployment in _of(objects, "Deployment"):
        for container in _pod_spec(deployment)["containers"]:
            names |= {s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s}
            names |= {
                e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})
            }
    return names


def test_every_secret_referenced_is_one_the_operator_doc_lists(target):
    objects = target[1]
    defined = {s["metadata"]["name"] for s in _of(objects, "Secret")}
    doc = (K8S / "README.md").read_text()
    documented = set(re.findall(r"^\| `([a-z0-9-]+)` \| operator", doc, re.M))
    referenced = _secret_references(objects)
    assert referenced, "the manifests reference the operator's secrets"
    assert referenced <= defined | documented, f"neither in the manifests nor documented: {referenced - defined - documented}"


def test_every_deployment_has_a_disruption_budget(target):
    objects = target[1]
    for deployment in _of(objects, "Deployment"):
        budgets = [b for b in _of(objects, "PodDisruptionBudget") if _selects(b["spec"]["selector"], _pod_labels(deployment))]
        assert len(budgets) == 1, f"{deployment['metadata']['name']} has {len(budgets)} PodDisruptionBudgets"
        replicas, spec = deployment["spec"].get("replicas", 1), budgets[0]["spec"]
        # A drain can always proceed, and a replicated service keeps a pod through it.
        if "minAvailable" in spec:
            assert 1 <= spec["minAvailable"] < replicas, f"{deployment['metadata']['name']}: minAvailable"
        else:
            assert 1 <= spec["maxUnavailable"] and (replicas == 1 or spec["maxUnavailable"] < replicas)


def test_the_gateway_scales_on_cpu(base):
    (hpa,) = [o for (k, _), o in base.items() if k == "HorizontalPodAutoscaler"]
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gateway"}
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert "cpu" in _container(base[("Deployment", "gateway")])["resources"]["requests"], "CPU utilisation needs a request"


def test_the_ingress_neither_buffers_nor_times_out_event_streams(base):
    from gateway.routes.job_events import KEEPALIVE_S

    annotations = base[("Ingress", "gateway")]["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    for timeout in ("proxy-read-timeout", "proxy-send-timeout"):
        assert int(annotations[f"nginx.ingress.kubernetes.io/{timeout}"]) >= 3600 > KEEPALIVE_S


def _allows(policies: list[dict], direction: str, source: dict, destination: dict, port: int) -> bool:
    """Whether some policy of ``direction`` (Ingress: on the destination, Egress: on the source)
    lets ``source`` pods reach ``destination`` pods on ``port``, both in this namespace."""
    own, peer, peers_key = (destination, source, "from") if direction == "Ingress" else (source, destination, "to")
    for policy in policies:
        if direction not in policy["spec"]["policyTypes"] or not _selects(policy["spec"]["podSelector"], _pod_labels(own)):
            continue
        for rule in policy["spec"].get(direction.lower(), []):
            peers = rule.get(peers_key)  # absent: every peer
            to_peer = peers is None or any(
                "podSelector" in p and "namespaceSelector" not in p and _selects(p["podSelector"], _pod_labels(peer))
                for p in peers
            )
            if to_peer and _port_in(rule, destination, port):
                return True
    return False


def _port_in(rule: dict, destination: dict, port: int) -> bool:
    if "ports" not in rule:
        return True
    containers = _pod_spec(destination)["containers"]
    named = {p["name"]: p["containerPort"] for c in containers for p in c.get("ports", []) if "name" in p}
    return any(named.get(p["port"], p["port"]) == port for p in rule["ports"])


def _calls_in_the_code() -> set[tuple[str, str]]:
    """(caller, callee) for every gRPC client a component builds: each ``settings.X_addr`` it reads but its own."""
    calls = set()
    for path, caller in COMPONENTS.items():
        text = "".join(p.read_text() for p in (ROOT / path).rglob("*.py"))
        for callee, field in ADDRESS_OF.items():
            callee = f"{callee}-svc"
            if callee != caller and re.search(rf"\b(?:settings\.)?{field}\b", text):
                calls.add((caller, callee))
    return calls


def test_network_policies_allow_exactly_the_calls_the_code_makes(target):
    objects = target[1]
    policies = _of(objects, "NetworkPolicy")
    calls = _calls_in_the_code()
    assert ("job-svc", "dataset-svc") in calls and ("gateway", "artifact-svc") in calls  # the scan finds clients
    deployments = {d["metadata"]["name"]: d for d in _of(objects, "Deployment")}
    allowed = set()
    for source_name, source in deployments.items():
        for destination_name, destination in deployments.items():
            for port in {p["containerPort"] for c in _pod_spec(destination)["containers"] for p in c.get("ports", [])}:
                if all(_allows(policies, way, source, destination, port) for way in ("Egress", "Ingress")):
                    allowed.add((source_name, destination_name))
    assert allowed == calls


def test_network_policies_deny_by_default_every_pod(target):
    objects = target[1]
    deny = [
        p for p in _of(objects, "NetworkPolicy")
        if p["spec"]["podSelector"] == {} and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress") and not p["spec"].get("egress")
    ]
    assert deny, "a default-deny NetworkPolicy (ingress and egress) is in place"
    (namespace,) = {p["metadata"]["namespace"] for p in deny}
    for obj in objects:
        if obj["kind"] != "Namespace":
            where = f"{obj['kind']} {obj['metadata']['name']}"
            assert obj["metadata"].get("namespace") == namespace, f"{where} is not in {namespace}"


def test_the_overlays_patch_by_name():
    for overlay in (K8S / "overlays").iterdir():
        for patch in yaml.safe_load((overlay / "kustomization.yaml").read_text()).get("patches", []):
            body = yaml.safe_load(patch["patch"] if "patch" in patch else (overlay / patch["path"]).read_text())
            operations = body if isinstance(body, list) else []
            for op in operations:
                assert not re.search(r"/\d+(/|$)", op["path"]), f"{overlay.name}: {op['path']} patches a list position"
