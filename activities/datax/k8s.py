"""Run a DataX job as a Kubernetes Job from inside a heartbeating activity (infrastructure notes §5).

The loop, with the official ``kubernetes`` client (blocking calls run in threads):

1. **Create or re-attach.** The Job (:mod:`.k8s_spec`) is created suspended, then its ConfigMap and
   Secret, then it is resumed. A 409 on create means this very attempt already made it (a replayed
   activity): re-attach. A retried attempt whose previous attempt's Job (named in the last heartbeat,
   ``activity.info().heartbeat_details``) is still running re-attaches to *that* Job: a worker restart
   does not start a second copy of the transfer.
2. **Watch** the Job to a terminal condition. A watch ends (server timeout, 410, or our own read
   timeout: some servers, kmock among them, ignore ``timeoutSeconds``) and is resumed, re-reading the
   Job first so no transition is missed.
3. **The pod**: found by its ``job-name`` label (filtered here too: not every server filters). While
   Pending it is checked for ``ImagePullBackOff``-like waits (fail at once) and ``Unschedulable``
   (fail after ``datax_k8s_unschedulable_seconds``). Once it runs, its log is followed in a thread and
   written to the task log line by line - the same :class:`~.local.DataxLog` and statistics parser as
   the local path; a dropped stream resumes with ``since_seconds`` and drops lines already seen (by
   their timestamps). The exit code comes from the container's terminated state.
4. **Cleanup**: on success, failure, timeout and cancel the Job is deleted with ``Background``
   propagation (its pod, ConfigMap and Secret are garbage-collected through their owner), and the
   ConfigMap and Secret are deleted explicitly too, in case an owner reference could not be set.
   ``ttlSecondsAfterFinished`` is the backstop if the worker itself dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.process import TASK_FAILED, heartbeat_interval
from core.contracts import TaskRequest
from core.settings import Settings

from .k8s_spec import (
    CONTAINER,
    Names,
    config_map_manifest,
    exit_code_of,
    job_manifest,
    job_state,
    labels_for,
    names_for,
    pod_problem,
    secret_manifest,
    suspended,
)
from .local import DataxLog

T = TypeVar("T")
_TIMESTAMP = re.compile(rb"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) ")
LOG_DRAIN_SECONDS = 10.0  # after the Job ends, how long the pod log may still be arriving


class JobGone(Exception):
    """The Job was deleted under us (by someone else, or TTL)."""


def _in_thread(fn: Callable[..., T], *args: Any, name: str) -> asyncio.Future[T]:
    """Run a long blocking call in a daemon thread (a stuck HTTP read must not hold up worker exit)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(value: Any, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)

    def target() -> None:
        try:
            value = fn(*args)
        except BaseException as e:  # handed to the awaiting coroutine
            loop.call_soon_threadsafe(settle, None, e)
        else:
            loop.call_soon_threadsafe(settle, value, None)

    threading.Thread(target=target, name=name, daemon=True).start()
    # Abandoned on cancel or on an earlier failure: its late error must not be reported as unretrieved.
    future.add_done_callback(lambda f: f.cancelled() or f.exception())
    return future


def api_client(settings: Settings) -> client.ApiClient:
    """``datax_k8s_host`` (plain URL, tests), else ``datax_k8s_kubeconfig``, else in-cluster config."""
    if settings.datax_k8s_host:
        cfg = client.Configuration()
        cfg.host = settings.datax_k8s_host.rstrip("/")
        return client.ApiClient(cfg)
    if settings.datax_k8s_kubeconfig:
        return config.new_client_from_config(config_file=str(settings.datax_k8s_kubeconfig))
    config.load_incluster_config()
    return client.ApiClient()


class LogFollower:
    """Follows one pod's log into the task log, in a thread; resumable, stoppable from outside."""

    def __init__(self, core: client.CoreV1Api, ns: str, pod: str, log: DataxLog) -> None:
        self.core, self.ns, self.pod, self.log = core, ns, pod, log
        self.stop = threading.Event()
        self.last_ts: bytes | None = None
        self._response: Any = None

    def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(Exception):
            if self._response is not None:
                self._response.close()

    def _emit(self, line: bytes) -> None:
        m = _TIMESTAMP.match(line)
        if m:
            ts = m.group(1)
            if self.last_ts is not None and ts <= self.last_ts:
                return  # seen before a resume
            self.last_ts = ts
            line = line[m.end():]
        self.log.write(line + b"\n")

    def follow_once(self, since_seconds: int | None) -> None:
        kwargs: dict[str, Any] = {"container": CONTAINER, "follow": True, "timestamps": True,
                                  "_preload_content": False}
        if since_seconds:
            kwargs["since_seconds"] = since_seconds
        self._response = self.core.read_namespaced_pod_log(self.pod, self.ns, **kwargs)
        partial = b""
        try:
            for chunk in self._response.stream():
                if self.stop.is_set():
                    return
                lines = (partial + chunk).split(b"\n")
                partial = lines.pop()
                for line in lines:
                    self._emit(line.rstrip(b"\r"))
                self.log.flush()
        finally:
            if partial:
                self._emit(partial)
            self.log.flush()

    def run(self, finished: Callable[[], bool]) -> None:
        """Follow until the stream ends with the container finished (or :meth:`close`)."""
        started = time.monotonic()
        while not self.stop.is_set():
            try:
                self.follow_once(int(time.monotonic() - started) + 2 if self.last_ts else None)
            except Exception as e:  # a dropped connection: resume, unless we are done
                if self.stop.is_set():
                    return
                self.log.note(f"pod log stream interrupted ({type(e).__name__}): resuming")
            if self.stop.is_set() or finished():
                return
            time.sleep(0.5)


class K8sRunner:
    """One attempt's Job, followed to its end (see module doc)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ns = settings.datax_k8s_namespace

    async def run(self, job_json: str, secrets: dict[str, str], *, request: TaskRequest, attempt: int, log: DataxLog,
                  details: dict[str, Any], xms: int, xmx: int, label: str) -> int:
        info = activity.info()
        names = names_for(info.workflow_id or "", info.workflow_run_id or "", info.activity_id or "", attempt)
        api = api_client(self.settings)
        batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
        deadline = self._deadline(info)
        session = _Session(self, batch, core, names, log, details, label)
        creating = asyncio.ensure_future(asyncio.to_thread(session.create_or_adopt, info, request, job_json, secrets,
                                                           xms, xmx, deadline))
        try:
            session.names = await asyncio.shield(creating)
            details.update({"k8s_namespace": self.ns, "k8s_job": session.names.job})
            activity.heartbeat(dict(details))
            return await session.follow()
        except asyncio.CancelledError:
            log.note(f"cancelled: deleting Job {session.names.job}")
            raise
        finally:
            session.close()
            # A cancel during creation: let it finish first, or the delete could run before the create.
            with contextlib.suppress(Exception):
                await asyncio.shield(asyncio.wait({creating}))
                if not creating.cancelled() and creating.exception() is None:
                    session.names = creating.result()
            await asyncio.shield(asyncio.to_thread(session.delete))
            api.close()

    def _deadline(self, info: Any) -> int | None:
        timeout = info.start_to_close_timeout
        if timeout and timeout.total_seconds() > 0:
            return max(1, int(timeout.total_seconds()))
        return self.settings.datax_k8s_active_deadline_seconds or None


class _Session:
    """The state of one followed Job: names, the pod, the log follower, what was seen."""

    def __init__(self, runner: K8sRunner, batch: client.BatchV1Api, core: client.CoreV1Api, names: Names,
                 log: DataxLog, details: dict[str, Any], label: str) -> None:
        self.runner, self.batch, self.core, self.names = runner, batch, core, names
        self.settings, self.ns = runner.settings, runner.ns
        self.log, self.details, self.label = log, details, label
        self.stop = threading.Event()
        self.follower: LogFollower | None = None
        self.follower_done: asyncio.Future[None] | None = None
        self.pod: str | None = None
        self.pod_exit: int | None = None
        self.watches = 0
        self.deleted = False

    # -- create or re-attach ---------------------------------------------------------------------

    def create_or_adopt(self, info: Any, request: TaskRequest, job_json: str, secrets: dict[str, str], xms: int,
                        xmx: int, deadline: int | None) -> Names:
        previous = _previous_job(info) or (request.lost_attempt.details.get("k8s_job")
                                           if request.lost_attempt is not None else None)
        if previous and previous != self.names.job:
            try:
                job = self.batch.read_namespaced_job(previous, self.ns)
            except ApiException as e:
                if e.status != 404:
                    raise
            else:
                if job_state(job)[0] == "running":
                    self.log.note(f"re-attaching to Job {previous} in {self.ns}, started by an earlier attempt "
                                  "(worker restart): no second Job is created")
                    return Names(previous, f"{previous}-job", f"{previous}-secret")
                self.log.note(f"the earlier attempt's Job {previous} has finished: deleting it, starting anew")
                self._delete_names(Names(previous, f"{previous}-job", f"{previous}-secret"))
        labels = labels_for(info, request.task_code)
        manifest = job_manifest(self.names, self.settings, labels=labels, xms=xms, xmx=xmx,
                                secret_props=sorted(secrets), deadline_seconds=deadline)
        try:
            job = self.batch.create_namespaced_job(self.ns, manifest)
        except ApiException as e:
            if e.status != 409:
                raise
            self.log.note(f"Job {self.names.job} exists already (this attempt, replayed): re-attaching")
            job = self.batch.read_namespaced_job(self.names.job, self.ns)
            if not suspended(job):
                return self.names
        else:
            image = self.settings.datax_k8s_image
            self.log.note(f"created Job {self.names.job} in namespace {self.ns} (image {image}, "
                          f"backoffLimit 0, activeDeadlineSeconds {deadline or 'none'}, "
                          f"ttlSecondsAfterFinished {self.settings.datax_k8s_ttl_seconds})")
        self._ensure(lambda: self.core.create_namespaced_config_map(
            self.ns, config_map_manifest(self.names, self.ns, job, labels, job_json)))
        if secrets:
            self._ensure(lambda: self.core.create_namespaced_secret(
                self.ns, secret_manifest(self.names, self.ns, job, labels, secrets)))
        self.batch.patch_namespaced_job(self.names.job, self.ns, {"spec": {"suspend": False}})
        return self.names

    @staticmethod
    def _ensure(create: Callable[[], Any]) -> None:
        try:
            create()
        except ApiException as e:
            if e.status != 409:  # made by this attempt before a replay: keep it
                raise

    # -- follow ---------------------------------------------------------------------------------

    async def follow(self) -> int:
        watcher = _in_thread(self.watch_until_done, name=f"watch-{self.names.job}")
        beat_every = heartbeat_interval()
        last_beat = 0.0
        unschedulable_since: float | None = None
        try:
            while not watcher.done():
                now = time.monotonic()
                if now - last_beat >= beat_every:
                    self._heartbeat()
                    last_beat = now
                if self.follower is None:
                    unschedulable_since = await self._check_pod(unschedulable_since)
                await asyncio.wait({watcher}, timeout=min(self.settings.datax_k8s_poll_seconds, beat_every))
            try:
                state, reason = watcher.result()
            except JobGone:
                raise self._fail(f"Job {self.names.job} was deleted while it ran (by someone else, or its TTL)") \
                    from None
        finally:
            self.stop.set()
        return await self._finish(state, reason)

    def _heartbeat(self) -> None:
        progress = self.log.parser.stats.progress
        beat = dict(self.details, k8s_pod=self.pod)
        if progress is not None:
            beat["progress"] = {"records": progress.records, "percentage": progress.percentage}
        activity.heartbeat(beat)

    async def _check_pod(self, unschedulable_since: float | None) -> float | None:
        pod = await asyncio.to_thread(self._find_pod)
        if pod is None:
            return unschedulable_since
        problem = pod_problem(pod)
        if problem and problem[0] == "fatal":
            raise self._fail(f"could not start: pod {self.pod} is in {problem[1]}")
        if problem and problem[0] == "unschedulable":
            now = time.monotonic()
            if unschedulable_since is None:
                self.log.note(f"pod {self.pod} is Pending: {problem[1]}")
                unschedulable_since = now
            if now - unschedulable_since >= self.settings.datax_k8s_unschedulable_seconds:
                raise self._fail(f"could not start: pod {self.pod} stayed Pending for "
                                 f"{self.settings.datax_k8s_unschedulable_seconds:g}s ({problem[1]})")
            return unschedulable_since
        phase = pod.status.phase if pod.status else None
        if phase in ("Running", "Succeeded", "Failed"):
            self._start_follower()
        return None

    def _start_follower(self) -> None:
        assert self.pod is not None
        self.log.note(f"pod {self.pod} started: following its log")
        self.follower = LogFollower(self.core, self.ns, self.pod, self.log)
        self.follower_done = _in_thread(self.follower.run, self._pod_finished, name=f"log-{self.pod}")

    def _find_pod(self) -> client.V1Pod | None:
        pods = self.core.list_namespaced_pod(self.ns, label_selector=f"job-name={self.names.job}").items
        mine = [p for p in pods if p.metadata and (p.metadata.labels or {}).get("job-name") == self.names.job]
        if not mine:
            return None
        pod = mine[-1]
        if pod.metadata and self.pod != pod.metadata.name:
            self.pod = pod.metadata.name
            self.details["k8s_pod"] = self.pod
        return pod

    def _pod_finished(self) -> bool:
        try:
            pod = self._find_pod()
        except Exception:
            return False
        if pod is None:
            return True
        code = exit_code_of(pod)
        if code is not None:
            self.pod_exit = code
        return code is not None

    def watch_until_done(self) -> tuple[str, str]:
        """Blocking: the Job's terminal (state, reason), resuming watches as they end."""
        window = self.settings.datax_k8s_watch_seconds
        while not self.stop.is_set():
            try:
                job = self.batch.read_namespaced_job(self.names.job, self.ns)
            except ApiException as e:
                if e.status == 404:
                    raise JobGone() from None
                raise
            state = job_state(job)
            if state[0] != "running":
                return state
            version = job.metadata.resource_version if job.metadata else None
            w = watch.Watch()
            self.watches += 1
            kwargs: dict[str, Any] = {"field_selector": f"metadata.name={self.names.job}",
                                      "timeout_seconds": max(1, int(window)), "_request_timeout": (10, window)}
            if version:
                kwargs["resource_version"] = version
            try:
                for event in w.stream(self.batch.list_namespaced_job, self.ns, **kwargs):
                    obj = event.get("object")
                    if not isinstance(obj, client.V1Job) or not obj.metadata or obj.metadata.name != self.names.job:
                        continue
                    if event.get("type") == "DELETED":
                        raise JobGone()
                    state = job_state(obj)
                    if state[0] != "running":
                        w.stop()
                        return state
                    if self.stop.is_set():
                        w.stop()
            except JobGone:
                raise
            except ApiException as e:
                if e.status != 410:  # 410 Gone: the resource version expired, re-read and watch again
                    raise
            except (urllib3.exceptions.HTTPError, TimeoutError):
                pass  # our read timeout (a server that ignores timeoutSeconds), a dropped stream: resume
            finally:
                w.stop()
        return "running", "stopped"

    async def _finish(self, state: str, reason: str) -> int:
        if self.follower is None and self.pod is None:
            await asyncio.to_thread(self._find_pod)
        if self.follower is None and self.pod is not None:
            self._start_follower()  # the pod ran and ended between two checks: read its log once
        if self.follower_done is not None:
            done, _ = await asyncio.wait({self.follower_done}, timeout=LOG_DRAIN_SECONDS)
            if not done:
                self.log.note("pod log still open after the Job ended: stopped reading")
        if self.follower is not None:
            self.follower.close()
        self.log.parser.close()
        if self.pod_exit is None and self.pod is not None:
            await asyncio.to_thread(self._pod_finished)
        code = self.pod_exit
        self.log.note(f"Job {self.names.job} {state} ({reason}); container exit code {code}; "
                      f"{self.watches} watch call(s)")
        if state == "succeeded" and (code in (0, None)):
            return 0
        if reason == "DeadlineExceeded":
            raise self._fail("timed out on Kubernetes: the Job ran past activeDeadlineSeconds (DeadlineExceeded)",
                             code)
        exit_code = code if code is not None else 1
        raise self._fail(f"exited with code {exit_code} in Job {self.names.job} ({reason})", exit_code)

    def _fail(self, message: str, exit_code: int | None = None) -> ApplicationError:
        text = f"{self.label} {message}; log: {self.log.path} on {self.details.get('host')}"
        self.log.note(f"failed: {message}")
        self.log.result = str(exit_code) if exit_code is not None else "1"
        found = {"log_path": str(self.log.path), "host": self.details.get("host"), "k8s_job": self.names.job}
        if exit_code is not None:
            found["exit_code"] = exit_code
        return ApplicationError(self.log.masker.mask(text), found, type=TASK_FAILED)

    # -- cleanup --------------------------------------------------------------------------------

    def close(self) -> None:
        self.stop.set()
        if self.follower is not None:
            self.follower.close()

    def delete(self) -> None:
        """Blocking: delete the Job (Background), its ConfigMap and Secret; a 404 is fine."""
        if not self.deleted:
            self._delete_names(self.names)
            self.deleted = True

    def _delete_names(self, names: Names) -> None:
        calls: list[tuple[str, Callable[[], Any]]] = [
            (f"Job {names.job}", lambda: self.batch.delete_namespaced_job(names.job, self.ns,
                                                                         propagation_policy="Background")),
            (f"ConfigMap {names.config_map}", lambda: self.core.delete_namespaced_config_map(names.config_map,
                                                                                            self.ns)),
            (f"Secret {names.secret}", lambda: self.core.delete_namespaced_secret(names.secret, self.ns)),
        ]
        done = []
        for what, call in calls:
            try:
                call()
                done.append(what)
            except ApiException as e:
                if e.status != 404:
                    self.log.note(f"WARNING: could not delete {what}: {e.status} {e.reason} "
                                  f"(ttlSecondsAfterFinished will collect the Job)")
            except Exception as e:  # the API server is unreachable: the TTL is the backstop
                self.log.note(f"WARNING: could not delete {what}: {type(e).__name__}")
        if done:
            self.log.note(f"deleted {', '.join(done)} (propagation Background) at {datetime.now():%H:%M:%S}")


def _previous_job(info: Any) -> str | None:
    """The Job the previous attempt reported in its last heartbeat, if any."""
    for d in getattr(info, "heartbeat_details", None) or []:
        if isinstance(d, dict) and isinstance(d.get("k8s_job"), str):
            return str(d["k8s_job"])
    return None
