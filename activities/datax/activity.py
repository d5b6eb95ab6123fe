"""The ``DATAX`` activity (reference §3 DATAX): build the job at run time, run it locally or on Kubernetes.

* **Credentials at run time.** ``dataSource``/``dataTarget`` (UI mode) and ``datasourceId`` markers
  (custom mode) are resolved from the registry inside the activity; a password never reaches the
  :class:`~core.contracts.TaskRequest`, the :class:`~core.contracts.TaskResult`, a failure, a
  heartbeat or the log (every resolved password is added to the log's masker).
* **Routing** is :func:`.routing.route`; the log says where the task runs and why.
* **Statistics** (records, bytes, failures, duration) come from DataX's own output
  (:mod:`.stats`); they are the task's ``datax_*`` OUT values and ``TaskResult.stats``, which the
  events interceptor puts into the task's final event.
* Bad parameters fail at once, not retried (``InvalidTaskParams``), naming the task and the parameter.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Mapping
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.datasources import create_engine_for, resolve_datasource
from activities.process import TASK_FAILED, heartbeat_details, task_attempt
from activities.sql_task import INVALID
from core.contracts import TaskRequest, TaskResult
from core.settings import Settings
from model.params import export_out_params
from storage.datasources import ConnectionInfo, DatasourceNotFound, DatasourceStore, SecretKeyError

from .builders import BuildError, PasswordFn
from .job import BuiltJob, build_job
from .local import DataxLog, run_local
from .routing import memory_gb, route


def describe_columns(info: ConnectionInfo, query: str) -> list[str]:
    """DS's fallback for unnamed SELECT items: the result's column names, from the source itself."""
    engine = create_engine_for(info, pooled=False)
    try:
        with engine.connect() as conn:
            return list(conn.exec_driver_sql(query).keys())
    finally:
        engine.dispose()


class SecretPlaceholders:
    """For the Kubernetes path: each password becomes ``${porpoise_ds_<id>_password}`` in the job
    JSON; the values go into the Job's Secret and reach datax.py as ``-p`` from env (notes §5)."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}  # property name -> password

    def __call__(self, info: ConnectionInfo) -> str:
        name = f"porpoise_ds_{info.id}_password"
        self.values[name] = info.password
        return "${" + name + "}"


class DataxTask:
    """Holds the registry and settings; :meth:`run` is the DATAX activity."""

    def __init__(self, store: DatasourceStore, settings: Settings) -> None:
        self.store, self.settings = store, settings

    @activity.defn(name="DATAX")
    async def run(self, request: TaskRequest) -> TaskResult:
        attempt = task_attempt(request)
        host = socket.gethostname()
        log = DataxLog.for_task(request, attempt)  # the worker's cap, the type's masking, secret params
        assert isinstance(log, DataxLog)
        details: dict[str, Any] = heartbeat_details(request, log.path, None)
        with log.open(task_name=request.task_name, task_type=request.task_type, attempt=attempt, host=host):
            activity.heartbeat(details)
            if request.dry_run:
                log.note("dry run: skipped")
                log.result = "skipped"
                return TaskResult(attempt=attempt, host=host, log_path=str(log.path))
            return await self._run(request, attempt, host, log, details)

    def _fail(self, message: str, log: DataxLog, details: Mapping[str, Any], *, invalid: bool = False,
              exit_code: int | None = None) -> ApplicationError:
        message = log.masker.mask(message)
        log.note(f"failed: {message}")
        if log.result is None:
            log.result = "1" if exit_code is None else str(exit_code)
        info = {"log_path": str(log.path), "host": details["host"], "pid": details.get("pid")}
        if exit_code is not None:
            info["exit_code"] = exit_code
        return ApplicationError(f"{message}; log: {log.path} on {details['host']}", info,
                                type=INVALID if invalid else TASK_FAILED, non_retryable=invalid)

    async def _build(self, request: TaskRequest, password: PasswordFn, label: str, log: DataxLog,
                     details: Mapping[str, Any]) -> BuiltJob:
        def resolve(datasource_id: int) -> ConnectionInfo:
            info = resolve_datasource(self.store, datasource_id)
            log.add_secret(info.password)  # before anything could print it
            return info

        try:
            return await asyncio.to_thread(build_job, request.task_params, request.params, request.timezone,
                                           resolve, password, describe_columns)
        except BuildError as e:
            raise self._fail(f"{label}: {e}", log, details, invalid=True) from None
        except DatasourceNotFound as e:
            raise self._fail(f"{label}: {e} in the registry (dataSource/dataTarget or a datasourceId marker)",
                             log, details, invalid=True) from None
        except SecretKeyError as e:
            raise self._fail(f"{label}: {e}", log, details, invalid=True) from None
        except Exception as e:  # the registry or a source database is down: retryable, no driver detail
            first = (str(getattr(e, "orig", None) or e).strip().splitlines() or [""])[0][:300]
            raise self._fail(f"{label}: cannot build the DataX job: {type(e).__name__}: {first}", log, details) \
                from None

    async def _run(self, request: TaskRequest, attempt: int, host: str, log: DataxLog,
                   details: dict[str, Any]) -> TaskResult:
        label = f"DATAX task {request.task_name!r}"
        try:
            xms, xmx = memory_gb(request.task_params)
            where = route(request.task_params, xmx, self.settings)
        except BuildError as e:
            raise self._fail(f"{label}: {e}", log, details, invalid=True) from None
        log.note(f"runs {where.where}: {where.why}")
        placeholders = SecretPlaceholders()
        password: PasswordFn = placeholders if where.where == "k8s" else (lambda info: info.password)
        built = await self._build(request, password, label, log, details)
        for note in built.notes:
            log.note(note)
        log.note(f"{built.mode} mode job: {built.summary()}; -Xms{xms}G -Xmx{xmx}G")
        log.flush()
        exit_code, pid = await self._execute(request, attempt, log, details, built, placeholders, where.where,
                                             xms, xmx, label)
        stats = log.parser.stats
        summary = stats.as_dict()
        log.note(f"DataX statistics: {summary or 'none printed'}")
        log.result = str(exit_code)
        produced = stats.out_values()
        return TaskResult(attempt=attempt, host=host, pid=pid, log_path=str(log.path), exit_code=exit_code,
                          var_pool=export_out_params(request.out_params, produced), stats=summary or None)

    async def _execute(self, request: TaskRequest, attempt: int, log: DataxLog, details: dict[str, Any],
                       built: BuiltJob, placeholders: SecretPlaceholders, where: str, xms: int, xmx: int,
                       label: str) -> tuple[int, int | None]:
        """Run the job; on failure raise with DataX's own error code in the message."""
        try:
            if where == "k8s":
                from .k8s import K8sRunner

                runner = K8sRunner(self.settings)
                code = await runner.run(built.render(), placeholders.values, request=request, attempt=attempt,
                                        log=log, details=details, xms=xms, xmx=xmx, label=label)
                return code, None
            launcher = [self.settings.datax_python, self.settings.datax_launcher]
            outcome = await run_local(built.render(), request=request, attempt=attempt, log=log, launcher=launcher,
                                      xms=xms, xmx=xmx, label=label)
            return outcome.exit_code, outcome.pid
        except ApplicationError as e:
            stats = log.parser.stats
            if e.type == INVALID or not stats.error_code:
                raise
            found = e.details[0] if e.details and isinstance(e.details[0], dict) else {}
            why = f" [DataX {stats.error_code}: {stats.error or ''}]"
            raise ApplicationError(log.masker.mask(e.message + why), found, type=e.type,
                                   non_retryable=e.non_retryable) from None


def datax_activities(settings: Settings) -> list[Callable[..., Any]]:
    """The DATAX activity for a worker (the same registry and key rules as the SQL activity)."""
    return [DataxTask(DatasourceStore.from_settings(settings), settings).run]
