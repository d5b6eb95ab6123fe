"""The Helm chart (deploy/helm/porpoise) renders, and every object it renders is a valid Kubernetes
object: checked offline against the Kubernetes Python client's models (unknown fields, wrong types
and missing required fields fail), plus the references between objects.

Needs the helm binary that deploy/helm/check.sh builds from the Go module proxy; skipped, saying so,
when it has not been built.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes.client as k8s
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "porpoise"
HELM_VERSION = os.environ.get("HELM_VERSION", "v3.21.4")
HELM = Path(os.environ.get("PORPOISE_HELM") or
            Path(os.environ.get("PORPOISE_HELM_CACHE", Path.home() / ".cache" / "porpoise"))
            / f"helm-{HELM_VERSION}" / "bin" / "helm")
VALUES = sorted((CHART / "ci").glob("*.yaml"))
# A helm built with `go install` thinks the cluster is Kubernetes 1.20 (its release builds set it by
# ldflags); render for a supported version instead.
KUBE = ("--kube-version", os.environ.get("PORPOISE_KUBE_VERSION", "1.31.0"))

pytestmark = pytest.mark.skipif(not HELM.exists(), reason=f"helm is not built ({HELM} missing): "
                                                          "run deploy/helm/check.sh build")


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HELM_CACHE_HOME="/tmp/porpoise-helm-cache", HELM_CONFIG_HOME="/tmp/porpoise-helm-config")
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=60, env=env)


def render(*values: Path, sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    args = ["template", "porpoise", str(CHART), "--namespace", "porpoise", *KUBE]
    for v in values:
        args += ["-f", str(v)]
    for s in sets:
        args += ["--set", s]
    done = helm(*args)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


# -- schema check through the client's models --------------------------------------------------------------------

_PRIMITIVES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "bool": (bool,), "float": (int, float)}


def check(data: Any, type_name: str, path: str, errors: list[str]) -> None:
    """Walk ``data`` along the model type ``type_name`` (the client's openapi_types notation)."""
    if data is None:
        return
    if m := re.fullmatch(r"(?:list|List)\[(.+)\]", type_name):
        if not isinstance(data, list):
            errors.append(f"{path}: expected a list, got {type(data).__name__}")
            return
        for i, item in enumerate(data):
            check(item, m.group(1), f"{path}[{i}]", errors)
        return
    if m := re.fullmatch(r"(?:dict|Dict)\((?:str), (.+)\)|(?:dict|Dict)\[str, (.+)\]", type_name):
        if not isinstance(data, dict):
            errors.append(f"{path}: expected a map, got {type(data).__name__}")
            return
        for key, item in data.items():
            check(item, m.group(1) or m.group(2), f"{path}.{key}", errors)
        return
    if type_name == "object":  # IntOrString, raw extensions
        return
    if type_name in _PRIMITIVES:
        ok = isinstance(data, _PRIMITIVES[type_name]) and not (type_name == "int" and isinstance(data, bool))
        if not ok:
            errors.append(f"{path}: expected {type_name}, got {type(data).__name__} {data!r}")
        return
    if type_name == "datetime":
        return
    model = getattr(k8s, type_name)
    if not isinstance(data, dict):
        errors.append(f"{path}: expected a {type_name} object, got {type(data).__name__}")
        return
    by_json = {json_name: attr for attr, json_name in model.attribute_map.items()}
    for key, value in data.items():
        if key not in by_json:
            errors.append(f"{path}.{key}: unknown field of {type_name}")
            continue
        check(value, model.openapi_types[by_json[key]], f"{path}.{key}", errors)


def model_name(doc: dict[str, Any]) -> str:
    version = doc["apiVersion"].split("/")[-1]
    return f"{version[0].upper()}{version[1:]}{doc['kind']}"


def validate(doc: dict[str, Any]) -> list[str]:
    name = model_name(doc)
    where = f"{doc['kind']}/{doc.get('metadata', {}).get('name')}"
    if not hasattr(k8s, name):
        return [f"{where}: no Kubernetes model {name}"]
    errors: list[str] = []
    check(doc, name, where, errors)
    try:  # required fields: the client's models refuse None for them
        k8s.ApiClient().deserialize(json.dumps(doc), name, "application/json")
    except ValueError as e:  # pydantic's ValidationError is one
        errors.append(f"{where}: {e}")
    return errors


def validate_keda(doc: dict[str, Any], deployments: set[str], secrets: set[str]) -> list[str]:
    """KEDA's CRDs have no model in the client: check what KEDA itself requires of them."""
    where = f"{doc['kind']}/{doc['metadata']['name']}"
    errors = []
    if doc["apiVersion"] != "keda.sh/v1alpha1":
        errors.append(f"{where}: apiVersion {doc['apiVersion']}")
    spec = doc["spec"]
    if doc["kind"] == "ScaledObject":
        if spec["scaleTargetRef"]["name"] not in deployments:
            errors.append(f"{where}: scales {spec['scaleTargetRef']['name']}, which is not rendered")
        for trig in spec["triggers"]:
            meta = trig["metadata"]
            if trig["type"] != "temporal" or not {"endpoint", "taskQueue", "targetQueueSize"} <= meta.keys():
                errors.append(f"{where}: trigger {trig}")
            errors += [f"{where}: metadata.{key} must be a string" for key, v in meta.items() if not isinstance(v, str)]
    elif doc["kind"] == "TriggerAuthentication":
        for ref in spec["secretTargetRef"]:
            if not {"parameter", "name", "key"} <= ref.keys():
                errors.append(f"{where}: secretTargetRef {ref}")
            if ref["name"] not in secrets:
                errors.append(f"{where}: secret {ref['name']} is neither rendered nor named in the values")
    else:
        errors.append(f"{where}: unexpected KEDA kind")
    return errors


def cross_references(docs: list[dict[str, Any]], values: dict[str, Any]) -> list[str]:
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    errors = []
    existing_sa = (values.get("serviceAccount") or {}).get("name")
    for name, dep in by_kind.get("Deployment", {}).items():
        pod = dep["spec"]["template"]
        selector = dep["spec"]["selector"]["matchLabels"]
        if not selector.items() <= pod["metadata"]["labels"].items():
            errors.append(f"Deployment/{name}: selector {selector} does not match its pod labels")
        for c in pod["spec"]["containers"]:
            for src in c.get("envFrom", []):
                if "configMapRef" in src and src["configMapRef"]["name"] not in by_kind.get("ConfigMap", {}):
                    errors.append(f"Deployment/{name}: ConfigMap {src['configMapRef']['name']} not rendered")
            mounts = {m["name"] for m in c.get("volumeMounts", [])}
            volumes = {v["name"] for v in pod["spec"].get("volumes", [])}
            if not mounts <= volumes:
                errors.append(f"Deployment/{name}: mounts {mounts - volumes} have no volume")
            if "livenessProbe" not in c:
                errors.append(f"Deployment/{name}: no liveness probe")
        sa = pod["spec"].get("serviceAccountName")
        if sa and sa not in by_kind.get("ServiceAccount", {}) and sa != existing_sa:
            errors.append(f"Deployment/{name}: service account {sa} is not rendered")
    for name, svc in by_kind.get("Service", {}).items():
        if not any(svc["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
                   for d in by_kind.get("Deployment", {}).values()):
            errors.append(f"Service/{name}: selects no rendered pod")
    for name, hpa in by_kind.get("HorizontalPodAutoscaler", {}).items():
        if hpa["spec"]["scaleTargetRef"]["name"] not in by_kind.get("Deployment", {}):
            errors.append(f"HorizontalPodAutoscaler/{name}: target not rendered")
    return errors


@pytest.mark.parametrize("values", VALUES, ids=[v.stem for v in VALUES])
def test_the_chart_lints_and_every_object_is_valid(values: Path) -> None:
    lint = helm("lint", "--strict", *KUBE, str(CHART), "-f", str(values))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    docs = render(values)
    given = yaml.safe_load(values.read_text()) or {}
    deployments = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
    secrets = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    secrets |= {(given.get("temporal") or {}).get("tls", {}).get("existingSecret"),
                (given.get("secret") or {}).get("existingSecret")} - {None, ""}
    errors: list[str] = []
    for doc in docs:
        if doc["apiVersion"].startswith("keda.sh/"):
            errors += validate_keda(doc, deployments, secrets)
        else:
            errors += validate(doc)
    errors += cross_references(docs, given)
    assert not errors, "\n".join(errors)
    groups = given.get("workerGroups") or [{"name": "default"}]
    assert {d["metadata"]["labels"].get("porpoise.io/worker-group") for d in docs
            if d["kind"] == "Deployment" and d["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"} \
        == {g["name"] for g in groups}, "one worker Deployment per worker group"


def test_the_validator_catches_what_kubernetes_would_refuse() -> None:
    docs = render(CHART / "ci" / "minimal-values.yaml")
    api = next(d for d in docs if d["kind"] == "Deployment")
    broken = json.loads(json.dumps(api))
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}  # typo
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "8000"  # string
    errors = validate(broken)
    assert any("livenesProbe: unknown field" in e for e in errors)
    assert any("containerPort: expected int" in e for e in errors)
    no_selector = json.loads(json.dumps(api))
    del no_selector["spec"]["selector"]  # required
    assert any("selector" in e and "None" in e for e in validate(no_selector))
    assert validate(api) == []


def test_bad_values_are_refused_with_the_value_named() -> None:
    no_db = helm("template", "porpoise", str(CHART), *KUBE)
    assert no_db.returncode != 0 and "secret.databaseUrl" in no_db.stderr
    bad_mode = helm("template", "porpoise", str(CHART), *KUBE, "-f", str(CHART / "ci" / "minimal-values.yaml"),
                    "--set", "autoscaling.mode=cpu", "--set", "workerGroups[0].name=default",
                    "--set", "workerGroups[0].autoscaling.enabled=true")
    assert bad_mode.returncode != 0 and "autoscaling.mode must be keda or hpa" in bad_mode.stderr
