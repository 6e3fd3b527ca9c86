"""The kustomize features deploy/k8s uses, rendered in Python, so that the
manifests' tests run where no kustomize binary is (it cannot be downloaded
at test time). ``test_k8s_manifests`` checks this against ``kubectl
kustomize`` wherever one is on PATH.

Supported: ``resources`` (files and directories), ``components``,
``namespace``, ``labels`` (``includeSelectors: false``), ``images`` and
``patches``, either strategic merge (lists merged by their Kubernetes merge
keys) or JSON 6902, each with a ``target`` by kind and name. Anything else in
a kustomization is refused, so that a new feature cannot be silently skipped.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "components", "namespace", "labels", "images", "patches"}
CLUSTER_SCOPED = {"Namespace"}
# The merge key of each list a strategic merge patch merges item by item; any other list is replaced.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumes": "name",
}


def render(directory: Path) -> list[dict]:
    """The objects ``kustomize build directory`` prints (in the order the resources list them)."""
    kustomization = _kustomization(directory)
    objects: list[dict] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        objects += render(path) if path.is_dir() else _documents(path)
    for entry in kustomization.get("components", []):
        objects = _apply_component((directory / entry).resolve(), objects)
    return _transform(directory, kustomization, objects)


def _kustomization(directory: Path) -> dict:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - SUPPORTED
    if unsupported:
        raise ValueError(f"{directory}/kustomization.yaml uses {sorted(unsupported)}, which this renderer lacks")
    return kustomization


def _documents(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _apply_component(directory: Path, objects: list[dict]) -> list[dict]:
    component = _kustomization(directory)
    if component.get("kind") != "Component":
        raise ValueError(f"{directory} is listed under components but is a {component.get('kind')}")
    objects = objects + [doc for entry in component.get("resources", []) for doc in _documents(directory / entry)]
    return _transform(directory, component, objects)


def _transform(directory: Path, kustomization: dict, objects: list[dict]) -> list[dict]:
    objects = copy.deepcopy(objects)
    for patch in kustomization.get("patches", []):
        _patch(directory, patch, objects)
    if "namespace" in kustomization:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kustomization["namespace"]
    for entry in kustomization.get("labels", []):
        if entry.get("includeSelectors") or entry.get("includeTemplates"):
            raise ValueError("labels with includeSelectors or includeTemplates are not rendered here")
        for obj in objects:
            obj["metadata"].setdefault("labels", {}).update(entry["pairs"])
    for image in kustomization.get("images", []):
        for obj in objects:
            for container in _containers(obj):
                _set_image(container, image)
    return objects


def _containers(obj: dict) -> list[dict]:
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("containers", []) + spec.get("initContainers", [])


def _set_image(container: dict, image: dict) -> None:
    reference = container["image"]
    name, digest = reference.split("@", 1) if "@" in reference else (reference, None)
    tag = None
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    if name != image["name"]:
        return
    name = image.get("newName", name)
    if "digest" in image:
        container["image"] = f"{name}@{image['digest']}"
    elif "newTag" in image:
        container["image"] = f"{name}:{image['newTag']}"
    else:
        container["image"] = name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def _patch(directory: Path, entry: dict, objects: list[dict]) -> None:
    body = yaml.safe_load(entry["patch"] if "patch" in entry else (directory / entry["path"]).read_text())
    target = entry.get("target") or {"kind": body["kind"], "name": body["metadata"]["name"]}
    matched = [obj for obj in objects if _matches(obj, target)]
    if not matched:
        raise ValueError(f"patch target {target} matches nothing")
    for obj in matched:
        if isinstance(body, list):
            for op in body:
                _json6902(obj, op)
        else:
            merged = _strategic_merge(obj, body)
            obj.clear()
            obj.update(merged)


def _matches(obj: dict, target: dict) -> bool:
    for key, value in target.items():
        if key == "kind" and obj["kind"] != value:
            return False
        if key == "name" and obj["metadata"]["name"] != value:
            return False
        if key not in ("kind", "name"):
            raise ValueError(f"patch targets by {key}, which this renderer lacks")
    return True


def _strategic_merge(original, patch, field: str = ""):
    if isinstance(patch, dict) and isinstance(original, dict):
        merged = dict(original)
        for key, value in patch.items():
            merged[key] = _strategic_merge(original[key], value, key) if key in original else value
        return merged
    if isinstance(patch, list) and isinstance(original, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        merged = list(original)
        for item in patch:
            index = next((i for i, old in enumerate(merged) if old.get(key) == item[key]), None)
            if index is None:
                merged.append(item)
            else:
                merged[index] = _strategic_merge(merged[index], item, "")
        return merged
    return patch


def _json6902(obj: dict, op: dict) -> None:
    *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].lstrip("/").split("/")]
    node = obj
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if op["op"] == "add":
            node.insert(index, op["value"])
        elif op["op"] == "replace":
            node[index] = op["value"]
        elif op["op"] == "remove":
            del node[index]
        else:
            raise ValueError(f"JSON 6902 op {op['op']!r} is not rendered here")
    elif op["op"] in ("add", "replace"):
        if op["op"] == "replace" and last not in node:
            raise KeyError(f"replace of {op['path']}, which does not exist")
        node[last] = op["value"]
    elif op["op"] == "remove":
        del node[last]
    else:
        raise ValueError(f"JSON 6902 op {op['op']!r} is not rendered here")
