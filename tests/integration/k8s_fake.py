"""A Kubernetes API without a cluster for the DataX tests: kmock in a thread, and a fake Job controller.

kmock (infrastructure notes §3.2) stores objects and serves create/get/list/watch/patch/delete, but has
no controllers, no garbage collector, no kubelet. :class:`FakeController` plays those parts for Jobs,
so the runner meets what a cluster would show it:

* a resumed (not suspended) Job gets a pod ``<job>-xxxxx`` labelled ``job-name``;
* per :class:`Behaviour`: the pod stays Pending (``Unschedulable``) or waits in ``ImagePullBackOff``; or
  it *runs the container*: the Job's args with ``$(ENV)`` expanded from the Secret (as the kubelet
  does), ``/etc/datax/job.json`` from the ConfigMap, and the image's datax.py replaced by the contract
  stand-in (tests/datax_stub/datax.py, a test double). Its output is fed to the pod's ``follow`` log
  stream with RFC 3339 timestamps; the exit code lands in the container's terminated state and the
  Job gets ``Complete`` or ``Failed`` (``BackoffLimitExceeded``, or ``DeadlineExceeded`` past
  ``activeDeadlineSeconds``, when the controller kills the container);
* a deleted Job's pod is killed and deleted (the garbage collector's part).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kmock
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.integration.datax_support import STUB

TEXT = {"Content-Type": "text/plain"}  # kubernetes 37 refuses application/octet-stream for logs


class KmockThread:
    """kmock's emulator and HTTP server on their own event loop, so the sync client can be used."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.url = ""
        self.handler: Any = None
        self._thread = threading.Thread(target=self._run, name="kmock", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with kmock.KubernetesEmulator() as handler, kmock.Server(handler, host="127.0.0.1") as server:
            for resource in ("batch/v1/jobs", "v1/pods", "v1/configmaps", "v1/secrets"):
                handler.resources[resource] = {}  # listing an empty kind must answer [], not 404
            self.handler, self.url = handler, str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def start(self) -> KmockThread:
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError("kmock did not start")
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on kmock's loop (its DSL is not thread-safe) and wait for it."""

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def requests(self, what: Any) -> int:
        return int(self.call(lambda: len(self.handler[what])))


@dataclass
class Behaviour:
    mode: str = "run"  # run | unschedulable | image-pull
    env: dict[str, str] = field(default_factory=dict)  # extra environment of the "container" (stub modes)
    finish_delay: float = 0.0  # seconds between the container's exit and the Job's status (watch expiry)


@dataclass
class Seen:
    job: dict[str, Any]
    config_map: dict[str, Any]
    secret: dict[str, Any]


class FakeController:
    """Plays the Job controller, the kubelet and the garbage collector for one namespace."""

    def __init__(self, km: KmockThread, namespace: str) -> None:
        self.km, self.ns = km, namespace
        cfg = client.Configuration()
        cfg.host = km.url
        self.api = client.ApiClient(cfg)
        self.batch, self.core = client.BatchV1Api(self.api), client.CoreV1Api(self.api)
        self.behaviour = Behaviour()
        self.seen: dict[str, Seen] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.pods: dict[str, str] = {}
        self._started: set[str] = set()
        self._stop = threading.Event()
        self._ts = datetime(2026, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="fake-job-controller", daemon=True)

    def start(self) -> FakeController:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for proc in list(self.processes.values()):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.api.close()

    def leftovers(self) -> dict[str, list[str]]:
        """Jobs, ConfigMaps and Secrets still in the namespace (every test ends with none)."""
        return {
            "jobs": [j.metadata.name for j in self.batch.list_namespaced_job(self.ns).items if j.metadata],
            "configmaps": [c.metadata.name for c in self.core.list_namespaced_config_map(self.ns).items if c.metadata],
            "secrets": [s.metadata.name for s in self.core.list_namespaced_secret(self.ns).items if s.metadata],
        }

    # -- the loop -------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                jobs = self.batch.list_namespaced_job(self.ns).items
            except Exception:
                time.sleep(0.1)
                continue
            names = {j.metadata.name for j in jobs if j.metadata}
            for job in jobs:
                name = job.metadata.name if job.metadata else None
                if name and name not in self._started and job.spec and not job.spec.suspend:
                    self._started.add(name)
                    threading.Thread(target=self._run_job, args=(job,), daemon=True, name=f"pod-{name}").start()
            for name in list(self.pods):
                if name not in names:
                    self._collect(name)
            time.sleep(0.1)

    def _collect(self, job: str) -> None:
        """The garbage collector: the Job is gone, so is its pod (and its process)."""
        pod = self.pods.pop(job, None)
        proc = self.processes.pop(job, None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        if pod:
            with contextlib.suppress(ApiException):
                self.core.delete_namespaced_pod(pod, self.ns)

    def _timestamp(self) -> bytes:
        with self._lock:
            self._ts += timedelta(microseconds=1)
            return self._ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()

    def _pod_status(self, pod: str, status: dict[str, Any]) -> None:
        self.core.patch_namespaced_pod_status(pod, self.ns, {"status": status})

    def _run_job(self, job: client.V1Job) -> None:
        assert job.metadata and job.metadata.name and job.spec
        name = job.metadata.name
        behaviour = self.behaviour
        pod = f"{name}-{uuid.uuid4().hex[:5]}"
        self.core.create_namespaced_pod(self.ns, client.V1Pod(
            metadata=client.V1ObjectMeta(name=pod, namespace=self.ns, labels={"job-name": name}),
            spec=job.spec.template.spec))
        self.pods[name] = pod
        if behaviour.mode == "unschedulable":
            self._pod_status(pod, {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": "0/3 nodes are available: 3 Insufficient memory."}]})
            return
        if behaviour.mode == "image-pull":
            self._pod_status(pod, {"phase": "Pending", "containerStatuses": [
                {"name": "datax", "ready": False, "restartCount": 0, "image": "x", "imageID": "",
                 "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]})
            return
        self._run_container(job, pod, behaviour)

    def _container_command(self, job: client.V1Job, workdir: Path) -> tuple[list[str], dict[str, str]]:
        """The kubelet's part: env from the Secret, $(ENV) in args, the ConfigMap file on disk."""
        assert job.metadata and job.spec and job.spec.template.spec
        pod_spec = job.spec.template.spec
        container = pod_spec.containers[0]
        env: dict[str, str] = {}
        secret_seen: dict[str, Any] = {}
        for var in container.env or []:
            ref = var.value_from.secret_key_ref if var.value_from else None
            if ref is not None:
                secret = self.core.read_namespaced_secret(ref.name, self.ns)
                data = dict(secret.string_data or {}) | {
                    k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}
                secret_seen = {"string_data": dict(secret.string_data or {})}
                env[var.name] = data[ref.key]
        volume = pod_spec.volumes[0].config_map if pod_spec.volumes else None
        assert volume is not None
        config_map = self.core.read_namespaced_config_map(volume.name, self.ns)
        job_file = workdir / "job.json"
        job_file.write_text((config_map.data or {})["job.json"])
        self.seen[job.metadata.name or ""] = Seen(self.api.sanitize_for_serialization(job),
                                                  {"data": dict(config_map.data or {})}, secret_seen)
        args = [re.sub(r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), a) for a in container.args or []]
        args = [str(STUB) if a.endswith("datax.py") else str(job_file) if a == "/etc/datax/job.json" else a
                for a in args]
        return [sys.executable, *args], env

    def _run_container(self, job: client.V1Job, pod: str, behaviour: Behaviour) -> None:
        assert job.metadata and job.metadata.name and job.spec
        name = job.metadata.name
        path = f"/api/v1/namespaces/{self.ns}/pods/{pod}/log"
        reaction = self.km.call(
            lambda: (self.km.handler ** 10)[f"get {path}"][{"follow": "true"}] << TEXT << (b"", ...))
        self._pod_status(pod, {"phase": "Running", "containerStatuses": [
            {"name": "datax", "ready": True, "restartCount": 0, "image": "x", "imageID": "",
             "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]})
        deadline = time.monotonic() + 15
        # Lines fed before the runner follows would be lost. The reaction's own request list is cheap to
        # read; asking kmock to filter its whole request log 50 times a second would load its loop.
        while not reaction._requests:
            if time.monotonic() > deadline or name not in self.pods:
                return
            time.sleep(0.02)
        with tempfile.TemporaryDirectory(prefix="fake-pod-") as workdir:
            argv, env = self._container_command(job, Path(workdir))
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                                    env=os.environ | env | behaviour.env)
            self.processes[name] = proc
            limit = job.spec.active_deadline_seconds
            killer = threading.Timer(limit, lambda: self._deadline(proc)) if limit else None
            if killer:
                killer.start()
            assert proc.stdout is not None
            for line in proc.stdout:
                stamped = self._timestamp() + b" " + line
                with contextlib.suppress(Exception):
                    self.km.call(lambda stamped=stamped: self.km.handler[f"get {path}"][...] << (stamped, ...))
            code = proc.wait()
            if killer:
                killer.cancel()
        deadline_hit = getattr(proc, "deadline_hit", False)
        if name not in self.pods:  # deleted meanwhile: nothing to report to
            return
        with contextlib.suppress(ApiException):
            self._pod_status(pod, {"phase": "Succeeded" if code == 0 else "Failed", "containerStatuses": [
                {"name": "datax", "ready": False, "restartCount": 0, "image": "x", "imageID": "",
                 "state": {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}}}]})
        with contextlib.suppress(Exception):
            self.km.call(lambda: self.km.handler[f"get {path}"][...] << (b"",))  # the stream ends
        time.sleep(behaviour.finish_delay)
        if code == 0:
            status = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
        else:
            reason = "DeadlineExceeded" if deadline_hit else "BackoffLimitExceeded"
            status = {"failed": 1, "conditions": [{"type": "Failed", "status": "True", "reason": reason}]}
        with contextlib.suppress(ApiException):
            self.batch.patch_namespaced_job_status(name, self.ns, {"status": status})

    @staticmethod
    def _deadline(proc: subprocess.Popen[bytes]) -> None:
        proc.deadline_hit = True  # type: ignore[attr-defined]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
