"""The Kubernetes objects of one DataX task attempt (infrastructure notes §5): pure, no API calls.

* A ``batch/v1`` **Job**, created *suspended* so its ConfigMap and Secret (owned by the Job through
  ``ownerReferences``, so deleting the Job collects them) exist before its pod can start; then
  resumed. ``backoffLimit`` 0 (Temporal owns retries), ``activeDeadlineSeconds`` from the task
  timeout, ``ttlSecondsAfterFinished``, ``restartPolicy: Never``, resources from ``xms``/``xmx``,
  image, service account and node selector from settings.
* A **ConfigMap** with ``job.json`` (passwords are ``${porpoise_ds_<id>_password}`` placeholders),
  mounted at ``/etc/datax``.
* A **Secret** with the passwords, in the container's environment (``env.valueFrom.secretKeyRef``);
  each reaches DataX as ``-p '-Dporpoise_ds_<id>_password="${ENV}"'``, which datax.py's shell command
  line expands. The value is in no manifest, and any character in it is safe (no quoting to break).

The Job's name is a hash of the workflow run, the activity and the attempt: the same attempt always
names the same Job, so a replayed activity finds it (409) instead of starting a second one.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from core.settings import Settings

CONTAINER = "datax"
JOB_DIR = "/etc/datax"
JOB_FILE = f"{JOB_DIR}/job.json"
MEMORY_HEADROOM = 1.3  # limit = xmx x 1.3 + 256Mi: metaspace, direct buffers, python (notes §5)
MEMORY_EXTRA_MI = 256


@dataclass(frozen=True)
class Names:
    job: str
    config_map: str
    secret: str


def names_for(workflow_id: str, run_id: str, activity_id: str, attempt: int) -> Names:
    digest = hashlib.sha256(f"{workflow_id}/{run_id}/{activity_id}/{attempt}".encode()).hexdigest()[:20]
    job = f"porpoise-datax-{digest}"
    return Names(job, f"{job}-job", f"{job}-secret")


def label_value(text: str) -> str:
    """A valid label value (<= 63 chars of [A-Za-z0-9_.-], alphanumeric at both ends)."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:63].strip("-_.")
    return cleaned or "x"


def env_name(prop: str) -> str:
    return prop.upper()


def memory_mi(xmx: int) -> int:
    return int(math.ceil(xmx * 1024 * MEMORY_HEADROOM)) + MEMORY_EXTRA_MI


def job_manifest(names: Names, settings: Settings, *, labels: dict[str, str], xms: int, xmx: int,
                 secret_props: list[str], deadline_seconds: int | None) -> client.V1Job:
    ns = settings.datax_k8s_namespace
    # datax.py pastes -p into a shell command line, so the shell expands "${VAR}" from the container's
    # environment (the Secret): the value is never re-parsed, whatever quotes or $ it holds, and it is
    # neither in the pod spec nor in datax.py's own argv.
    props = " ".join(f'-D{p}="${{{env_name(p)}}}"' for p in secret_props)
    args = [settings.datax_k8s_launcher, f"--jvm=-Xms{xms}G -Xmx{xmx}G"]
    if props:
        args += ["-p", props]
    args.append(JOB_FILE)
    env = [client.V1EnvVar(name=env_name(p), value_from=client.V1EnvVarSource(
        secret_key_ref=client.V1SecretKeySelector(name=names.secret, key=env_name(p)))) for p in secret_props]
    memory = f"{memory_mi(xmx)}Mi"
    container = client.V1Container(
        name=CONTAINER, image=settings.datax_k8s_image, command=["python3"], args=args, env=env or None,
        volume_mounts=[client.V1VolumeMount(name="job", mount_path=JOB_DIR, read_only=True)],
        resources=client.V1ResourceRequirements(
            requests={"memory": memory, "cpu": settings.datax_k8s_cpu_request}, limits={"memory": memory}),
    )
    pod = client.V1PodSpec(
        restart_policy="Never", containers=[container], service_account_name=settings.datax_k8s_service_account,
        node_selector=dict(settings.datax_k8s_node_selector) or None, termination_grace_period_seconds=30,
        volumes=[client.V1Volume(name="job", config_map=client.V1ConfigMapVolumeSource(name=names.config_map))],
    )
    return client.V1Job(
        api_version="batch/v1", kind="Job",
        metadata=client.V1ObjectMeta(name=names.job, namespace=ns, labels=labels),
        spec=client.V1JobSpec(
            suspend=True, backoff_limit=0, active_deadline_seconds=deadline_seconds or None,
            ttl_seconds_after_finished=settings.datax_k8s_ttl_seconds,
            template=client.V1PodTemplateSpec(metadata=client.V1ObjectMeta(labels=labels), spec=pod),
        ),
    )


def owner(job: client.V1Job) -> list[client.V1OwnerReference]:
    meta = job.metadata
    assert meta is not None
    return [client.V1OwnerReference(api_version="batch/v1", kind="Job", name=meta.name or "", uid=meta.uid or "",
                                    controller=True, block_owner_deletion=True)]


def config_map_manifest(names: Names, ns: str, job: client.V1Job, labels: dict[str, str],
                        job_json: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=names.config_map, namespace=ns, labels=labels,
                                                           owner_references=owner(job)),
                              data={"job.json": job_json})


def secret_manifest(names: Names, ns: str, job: client.V1Job, labels: dict[str, str],
                    secrets: dict[str, str]) -> client.V1Secret:
    return client.V1Secret(metadata=client.V1ObjectMeta(name=names.secret, namespace=ns, labels=labels,
                                                        owner_references=owner(job)),
                           type="Opaque", string_data={env_name(k): json_string_body(v) for k, v in secrets.items()})


def json_string_body(value: str) -> str:
    """The value as it must appear between the quotes of a JSON string. DataX substitutes ``${k}`` into
    the job *text* before parsing it, and the placeholders sit inside JSON strings: a password with a
    ``"`` or ``\\`` would otherwise break the job."""
    return json.dumps(value)[1:-1]


def job_state(job: client.V1Job) -> tuple[str, str]:
    """("running" | "succeeded" | "failed", reason) from the Job's status (notes §5 step 2)."""
    status = job.status
    if status is None:
        return "running", ""
    for cond in status.conditions or []:
        if cond.status == "True" and cond.type in ("Complete", "SuccessCriteriaMet"):
            return "succeeded", cond.reason or "Complete"
        if cond.status == "True" and cond.type in ("Failed", "FailureTarget"):
            return "failed", cond.reason or "Failed"
    if (status.succeeded or 0) > 0:
        return "succeeded", "succeeded"
    if (status.failed or 0) > 0:
        return "failed", "failed"
    return "running", ""


def suspended(job: client.V1Job) -> bool:
    return bool(job.spec and job.spec.suspend)


def pod_problem(pod: client.V1Pod) -> tuple[str, str] | None:
    """A pod that cannot start: ("fatal"|"unschedulable", message), or None."""
    status = pod.status
    if status is None:
        return None
    for cs in status.container_statuses or []:
        waiting = cs.state.waiting if cs.state else None
        if waiting and waiting.reason in ("ImagePullBackOff", "ErrImagePull", "InvalidImageName",
                                          "CreateContainerConfigError", "CreateContainerError"):
            return "fatal", f"{waiting.reason}: {waiting.message or ''}".strip()
    for cond in status.conditions or []:
        if cond.type == "PodScheduled" and cond.status == "False" and cond.reason == "Unschedulable":
            return "unschedulable", f"Unschedulable: {cond.message or ''}".strip()
    return None


def exit_code_of(pod: client.V1Pod) -> int | None:
    """``status.containerStatuses[datax].state.terminated.exitCode`` (0/1/143 as in notes §4.3)."""
    for cs in (pod.status.container_statuses if pod.status else None) or []:
        if cs.name == CONTAINER and cs.state and cs.state.terminated:
            return int(cs.state.terminated.exit_code)
    return None


def labels_for(info: Any, task_code: int) -> dict[str, str]:
    return {"app": "porpoise-datax", "porpoise/instance": label_value(info.workflow_id),
            "porpoise/task": str(task_code), "porpoise/attempt": str(info.attempt)}
