"""The SQL task (reference §3 SQL): statements against a registered datasource, OUT params from results.

How it is built:

* **Credentials at run time.** The task names a datasource id; the activity resolves it from the
  registry on the worker (:func:`activities.datasources.resolve_datasource`). Nothing secret is in
  the :class:`~core.contracts.TaskRequest`, the :class:`~core.contracts.TaskResult`, a failure
  message, a heartbeat or the task log: every text we produce passes the datasource's ``mask``.
* **Bound parameters.** ``${name}`` becomes a driver placeholder bound to the typed value, a LIST
  expands to one placeholder per element (:mod:`model.sql`); only DS's ``!{name}`` pastes raw text.
* **One transaction.** Pre-statements, the main statement(s) and post-statements run on one
  connection in one transaction: all commit, or (any failure, cancel, timeout) all roll back.
  MySQL/MariaDB commit DDL implicitly, so there a ``CREATE TABLE`` survives a later failure.
* **Engines.** One SQLAlchemy engine (a connection pool) per datasource per worker, keyed by the
  datasource's version: a changed datasource (password, host...) gets a new engine, the old one is
  disposed.
* **Threads.** The drivers block, so statements run in this worker's own thread pool, sized to its
  activity slots, while the event loop heartbeats (the only way a cancel reaches an activity).
* **Cancel.** On stop or timeout the running statement is interrupted on the server (PostgreSQL
  cancel request, MariaDB/MySQL ``KILL QUERY`` from a second connection, SQLite ``interrupt()``),
  the transaction rolls back, the connection is discarded, and the cancellation is re-raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.datasources import create_engine_for, resolve_datasource
from activities.logs import TaskLog
from activities.process import TASK_FAILED, heartbeat_details, heartbeat_every, heartbeat_interval, task_attempt
from core.contracts import TaskRequest, TaskResult
from model.definition import DataType, Direct, Property
from model.params import export_out_params
from model.sql import (
    BoundStatement,
    Paramstyle,
    SqlParamError,
    bind,
    dialect_for,
    format_table,
    out_values,
    split_statements,
    substitute_raw,
    update_count_out,
)
from model.timeexpr import replace_time_placeholders
from storage.datasources import (
    EXECUTABLE,
    MYSQL_LIKE,
    ConnectionInfo,
    DatasourceNotFound,
    DatasourceStore,
    SecretKeyError,
)

INVALID = "InvalidTaskParams"  # not retried (the workflow's RetryPolicy lists it as non-retryable)
SESSION_LOST = "SqlSessionLost"  # a write whose worker died: not retried (docs/compatibility.md)
QUERY_LIMIT = 10000  # DS TaskConstants.QUERY_LIMIT: rows fetched when `limit` is 0 or absent
DISPLAY_ROWS = 10  # DS default displayRows
CANCEL_WAIT_SECONDS = 10.0  # after the server-side cancel, how long the statement may take to stop
MAX_MESSAGE = 1000  # a database message longer than this is cut in failures (the log keeps it whole)


# --------------------------------------------------------------------------------------------------
# The plan: what to run, fully bound, before any connection is opened
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    label: str  # "pre-statement 1", "statement 2", "post-statement 1": how errors name it
    bound: BoundStatement


@dataclass(frozen=True)
class Plan:
    pre: list[Step]
    main: list[Step]
    post: list[Step]
    query: bool
    limit: int
    display_rows: int
    ignored: int = 0  # query type: main statements after the first, not run (as in DS)


def _int_param(params: Mapping[str, Any], key: str, default: int) -> int:
    value = params.get(key)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApplicationError(f"{key} must be a number, got {value!r}", type=INVALID, non_retryable=True) from None


def _sql_type_is_query(value: Any) -> bool:
    """DS sqlType: 0 (or "0", "QUERY") is a query, 1 (or "1", "NON_QUERY") is not."""
    text = str(value if value is not None else "0").strip().upper()
    if text in ("0", "QUERY"):
        return True
    if text in ("1", "NON_QUERY"):
        return False
    raise ApplicationError(f"sqlType must be 0 (query) or 1 (non-query), got {value!r}", type=INVALID,
                           non_retryable=True)


def _statements(value: Any, key: str) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):  # some exports carry the list as a JSON string
        try:
            value = json.loads(value)
        except ValueError:
            value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ApplicationError(f"{key} must be a list of SQL strings", type=INVALID, non_retryable=True)
    return [v for v in value if v.strip()]


def param_types(request: TaskRequest) -> dict[str, DataType]:
    """The DS type of each parameter, for binding: the request's own map when the workflow sends
    one, else what the task itself declares (localParams), so LIST and numeric locals bind right."""
    types: dict[str, DataType] = {}
    for raw in request.task_params.get("localParams") or []:
        if isinstance(raw, Mapping) and raw.get("prop") and raw.get("type"):
            with contextlib.suppress(ValueError):
                types[str(raw["prop"])] = DataType(str(raw["type"]).upper())
    sent: Mapping[str, Any] = getattr(request, "param_types", None) or {}
    for name, t in sent.items():
        with contextlib.suppress(ValueError):
            types[name] = DataType(str(t))
    return types


def _base_time(params: Mapping[str, str], timezone: str) -> datetime:
    zone = ZoneInfo(timezone)
    with contextlib.suppress(KeyError, ValueError):
        return datetime.strptime(params["system.datetime"], "%Y%m%d%H%M%S").replace(tzinfo=zone)
    return datetime.now(zone)


def build_plan(request: TaskRequest, db_type: str, paramstyle: Paramstyle) -> Plan:
    """Split, substitute and bind every statement (raises ApplicationError INVALID on bad input)."""
    tp = request.task_params
    sql = str(tp.get("sql") or "")
    if not sql.strip():
        raise ApplicationError("sql is empty", type=INVALID, non_retryable=True)
    dialect = dialect_for(db_type)
    params = dict(request.params)
    types = param_types(request)
    base = _base_time(params, request.timezone)

    def steps(texts: Sequence[str], label: str) -> list[Step]:
        out = []
        statements = [s for text in texts for s in split_statements(text, dialect)]
        for i, statement in enumerate(statements, 1):
            name = f"{label} {i}"
            try:
                text = replace_time_placeholders(statement, base)  # DS replaceScheduleTime
                text = substitute_raw(text, params)  # DS !{name}
                out.append(Step(name, bind(text, params, types, dialect=dialect, paramstyle=paramstyle)))
            except SqlParamError as e:
                raise ApplicationError(f"{name}: {e}", type=INVALID, non_retryable=True) from None
        return out

    query = _sql_type_is_query(tp.get("sqlType"))
    main = steps([sql], "statement")
    if not main:
        raise ApplicationError("sql holds no statement (only comments or blanks)", type=INVALID, non_retryable=True)
    ignored = 0
    if query and len(main) > 1:
        ignored = len(main) - 1
        main = main[:1]
    limit = _int_param(tp, "limit", 0)
    display = _int_param(tp, "displayRows", DISPLAY_ROWS)
    return Plan(
        pre=steps(_statements(tp.get("preStatements"), "preStatements"), "pre-statement"),
        main=main,
        post=steps(_statements(tp.get("postStatements"), "postStatements"), "post-statement"),
        query=query,
        limit=limit if limit > 0 else QUERY_LIMIT,
        display_rows=display if display > 0 else DISPLAY_ROWS,
        ignored=ignored,
    )


# --------------------------------------------------------------------------------------------------
# Engines, cancellation, execution
# --------------------------------------------------------------------------------------------------


class EngineCache:
    """One engine per datasource in this worker process, replaced when the datasource changes."""

    def __init__(self, pool_size: int) -> None:
        self.pool_size = max(1, pool_size)
        self._lock = threading.Lock()
        self._engines: dict[int, tuple[int, Engine]] = {}

    def get(self, info: ConnectionInfo) -> Engine:
        old: Engine | None = None
        with self._lock:
            current = self._engines.get(info.id)
            if current is not None and current[0] == info.version:
                return current[1]
            engine = create_engine_for(info, pool_size=min(self.pool_size, 10), max_overflow=self.pool_size)
            self._engines[info.id] = (info.version, engine)
            old = current[1] if current else None
        if old is not None:
            old.dispose()  # idle connections with the old settings close; busy ones close when returned
        return engine

    def drop(self, datasource_id: int) -> None:
        with self._lock:
            current = self._engines.pop(datasource_id, None)
        if current:
            current[1].dispose()

    def versions(self) -> dict[int, int]:
        with self._lock:
            return {k: v for k, (v, _) in self._engines.items()}

    def dispose_all(self) -> None:
        with self._lock:
            engines, self._engines = list(self._engines.values()), {}
        for _, engine in engines:
            engine.dispose()


class Cancelled(Exception):
    """Raised in the statement thread when the activity was cancelled meanwhile."""


class StatementError(Exception):
    def __init__(self, label: str, message: str) -> None:
        super().__init__(f"{label}: {message}")
        self.label, self.message = label, message


@dataclass
class Control:
    """Shared between the statement thread and the event loop: what to interrupt, and whether to."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    cancelled: bool = False
    committing: bool = False
    driver_conn: Any = None
    mysql_thread_id: int | None = None


class SafeLog:
    """The task log, thread-safe, with the datasource's password masked from every line."""

    def __init__(self, log: TaskLog, mask: Callable[[str], str]) -> None:
        self._log, self._mask, self._lock = log, mask, threading.Lock()

    def note(self, text: str) -> None:
        with self._lock:
            for line in self._mask(text).splitlines() or [""]:
                self._log.note(line)
            self._log.flush()


@dataclass
class Outcome:
    columns: list[str] = field(default_factory=list)
    rows: list[Sequence[Any]] = field(default_factory=list)
    update_count: int = 0
    truncated: bool = False


def _db_message(e: BaseException) -> str:
    """The database's own message: psycopg's primary message + detail, PyMySQL's text, sqlite's."""
    diag = getattr(e, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    if primary:
        detail = getattr(diag, "message_detail", None)
        sqlstate = getattr(diag, "sqlstate", None)
        return f"{primary}" + (f" ({detail})" if detail else "") + (f" [SQLSTATE {sqlstate}]" if sqlstate else "")
    args: tuple[Any, ...] = tuple(getattr(e, "args", ()))
    if len(args) >= 2 and isinstance(args[0], int):  # PyMySQL: (errno, message)
        return f"{args[1]} [error {args[0]}]"
    return str(e).strip() or type(e).__name__


def _execute_step(cur: Any, step: Step, log: SafeLog, ctl: Control) -> None:
    with ctl.lock:
        if ctl.cancelled:
            raise Cancelled()
    log.note(f"{step.label}: {step.bound.sql}")
    if step.bound.values:
        log.note(f"  params: {step.bound.describe_params()}")
    started = time.monotonic()
    try:
        cur.execute(step.bound.sql, step.bound.values)
    except Exception as e:
        with ctl.lock:
            if ctl.cancelled:
                raise Cancelled() from None
        raise StatementError(step.label, _db_message(e)) from None
    log.note(f"  done in {(time.monotonic() - started) * 1000:.0f} ms, rowcount {cur.rowcount}")


def run_plan(engine: Engine, info: ConnectionInfo, plan: Plan, log: SafeLog, ctl: Control) -> Outcome:
    """Blocking: run the plan on one pooled connection, in one transaction. Runs in a worker thread."""
    try:
        raw = engine.raw_connection()
    except Exception as e:
        cause = getattr(e, "orig", None) or e
        raise StatementError("connect", _db_message(cause)) from None
    committed = False
    try:
        driver: Any = raw.driver_connection
        with ctl.lock:
            if ctl.cancelled:
                raise Cancelled()
            ctl.driver_conn = driver
            if info.type in MYSQL_LIKE:
                ctl.mysql_thread_id = driver.thread_id()
        cur = raw.cursor()
        if info.type == "SQLITE":
            cur.execute("BEGIN")
        outcome = Outcome()
        for step in plan.pre:
            _execute_step(cur, step, log, ctl)
        if plan.query:
            step = plan.main[0]
            _execute_step(cur, step, log, ctl)
            if cur.description:
                outcome.columns = [str(d[0]) for d in cur.description]
                outcome.rows = list(cur.fetchmany(plan.limit))
                outcome.truncated = len(outcome.rows) == plan.limit and cur.fetchone() is not None
        else:
            for step in plan.main:
                _execute_step(cur, step, log, ctl)
                outcome.update_count = max(cur.rowcount, 0)
        for step in plan.post:
            _execute_step(cur, step, log, ctl)
        with ctl.lock:
            if ctl.cancelled:
                raise Cancelled()
            ctl.committing = True
        try:
            raw.commit()
        except Exception as e:
            raise StatementError("commit", _db_message(e)) from None
        committed = True
        with contextlib.suppress(Exception):
            cur.close()
        return outcome
    finally:
        with ctl.lock:
            ctl.driver_conn = None  # from here on nothing may be interrupted
        if not committed:
            try:
                raw.rollback()
                log.note("transaction rolled back")
            except Exception as e:
                log.note(f"rollback failed ({_db_message(e)}): connection discarded")
                raw.invalidate()
        if ctl.cancelled:
            raw.invalidate()  # whatever state a killed statement left, this connection is not reused
        raw.close()


def _interrupt(engine: Engine, info: ConnectionInfo, ctl: Control) -> str:
    """Blocking: ask the server to stop the running statement. Returns what was done, for the log."""
    with ctl.lock:
        conn, thread_id = ctl.driver_conn, ctl.mysql_thread_id
    if conn is None:
        return "no statement running"
    if info.type == "POSTGRESQL":
        if hasattr(conn, "cancel_safe"):
            conn.cancel_safe(timeout=CANCEL_WAIT_SECONDS)
        else:
            conn.cancel()
        return "sent a PostgreSQL cancel request"
    if info.type in MYSQL_LIKE and thread_id is not None:
        cargs, cparams = engine.dialect.create_connect_args(engine.url)
        killer = engine.dialect.loaded_dbapi.connect(*cargs, **cparams)
        try:
            with killer.cursor() as cur:
                cur.execute(f"KILL QUERY {int(thread_id)}")
        finally:
            killer.close()
        return f"sent KILL QUERY {thread_id}"
    if info.type == "SQLITE":
        conn.interrupt()
        return "interrupted the SQLite statement"
    return "this driver has no cancel"


# --------------------------------------------------------------------------------------------------
# The activity
# --------------------------------------------------------------------------------------------------


class SqlTask:
    """Holds the worker-wide pieces (registry, engines, threads); :meth:`run` is the SQL activity."""

    def __init__(self, store: DatasourceStore, *, threads: int) -> None:
        self.store = store
        self.engines = EngineCache(threads)
        self.executor = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="porpoise-sql")

    def close(self) -> None:
        self.engines.dispose_all()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def _blocking(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.wrap_future(self.executor.submit(fn, *args))

    @activity.defn(name="SQL")
    async def run(self, request: TaskRequest) -> TaskResult:
        """Run the task's SQL on its datasource; OUT params from the result (reference §3 SQL)."""
        attempt = task_attempt(request)
        host = socket.gethostname()
        log = TaskLog.for_task(request, attempt)  # the worker's cap, the type's masking, secret params
        details = heartbeat_details(request, log.path, None)
        with log.open(task_name=request.task_name, task_type=request.task_type, attempt=attempt, host=host):
            activity.heartbeat(details)
            if request.dry_run:
                log.note("dry run: skipped")
                log.result = "skipped"
                return TaskResult(attempt=attempt, host=host, log_path=str(log.path))
            beat = asyncio.create_task(heartbeat_every(heartbeat_interval(), details))
            try:
                produced = await self._run(request, log, details)
            finally:
                beat.cancel()
                await asyncio.wait({beat})
            log.result = "0"
            return TaskResult(attempt=attempt, host=host, log_path=str(log.path), exit_code=0,
                              var_pool=export_out_params(request.out_params, produced))

    def _fail(self, message: str, log: TaskLog, details: Mapping[str, Any], *,
              invalid: bool = False) -> ApplicationError:
        log.note(f"failed: {message}")
        log.result = "1"
        return ApplicationError(f"{message}; log: {log.path} on {details['host']}",
                                {"log_path": str(log.path), "host": details["host"]},
                                type=INVALID if invalid else TASK_FAILED, non_retryable=invalid)

    async def _run(self, request: TaskRequest, log: TaskLog, details: Mapping[str, Any]) -> dict[str, str]:
        label = f"SQL task {request.task_name!r}"
        raw_id = request.task_params.get("datasource")
        try:
            datasource_id = int(raw_id)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise self._fail(f"{label}: datasource must be a datasource id, got {raw_id!r}", log, details,
                             invalid=True) from None
        try:
            info: ConnectionInfo = await self._blocking(resolve_datasource, self.store, datasource_id)
        except DatasourceNotFound:
            self.engines.drop(datasource_id)
            raise self._fail(f"{label}: datasource {datasource_id} does not exist in the registry", log, details,
                             invalid=True) from None
        except SecretKeyError as e:
            raise self._fail(f"{label}: {e}", log, details, invalid=True) from None
        except Exception as e:  # the registry database is down, say: retryable, and no driver detail
            first = (str(getattr(e, "orig", None) or e).strip().splitlines() or [""])[0][:300]
            raise self._fail(f"{label}: cannot read datasource {datasource_id} from the registry: "
                             f"{type(e).__name__}: {first}", log, details) from None
        if not info.executable:
            raise self._fail(f"{label}: {info.label} has no Python driver in Porpoise; SQL tasks run on "
                             f"{', '.join(sorted(EXECUTABLE))}", log, details, invalid=True)
        log.add_secret(info.password)  # masked by the log itself too, whatever path forgets info.mask
        slog = SafeLog(log, info.mask)
        declared = str(request.task_params.get("type") or "").upper()
        if declared and declared != info.type and not (declared in MYSQL_LIKE and info.type in MYSQL_LIKE):
            slog.note(f"task says type {declared}, the registry says {info.type}: using {info.type}")
        slog.note(f"{info.label} at {info.where()}, datasource version {info.version}")
        try:
            plan = build_plan(request, info.type, "qmark" if info.type == "SQLITE" else "format")
        except ApplicationError as e:
            raise self._fail(info.mask(f"{label}: {e.message}"), log, details, invalid=True) from None
        lost = request.lost_attempt
        if lost is not None and (not plan.query or plan.pre or plan.post):
            # The lost worker's session died with it: its transaction was rolled back, or committed
            # just before the worker died. Nobody can tell which, so a write is not run a second time
            # behind the operator's back (docs/compatibility.md); recover re-runs it on purpose.
            slog.note(f"worker lost during attempt {lost.attempt} (host {lost.host or '?'}): its session died "
                      "mid-task and its writes may or may not have committed; not re-run automatically")
            log.result = "1"
            raise ApplicationError(
                f"{label}: the worker running attempt {lost.attempt} was lost; its statements may or may not "
                f"have committed, so they are not run again automatically (check, then recover); log: {log.path}",
                {"log_path": str(log.path), "host": details["host"]}, type=SESSION_LOST, non_retryable=True)
        if lost is not None:
            slog.note(f"worker lost during attempt {lost.attempt}: a query only reads, running it again")
        _, _, ignored_params = info.driver_config()
        if ignored_params:
            slog.note(f"connection params not understood by the Python driver, ignored: {', '.join(ignored_params)}")
        if plan.ignored:
            slog.note(f"WARNING: sqlType is query: only the first of {plan.ignored + 1} statements runs (as in DS); "
                      "use a non-query task or preStatements for the others")
        slog.note(f"sqlType {'query' if plan.query else 'non-query'}, {len(plan.pre)} pre, {len(plan.main)} main, "
                  f"{len(plan.post)} post statement(s), one transaction")

        engine = self.engines.get(info)
        ctl = Control()
        future: Future[Outcome] = self.executor.submit(run_plan, engine, info, plan, slog, ctl)
        try:
            outcome = await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            await self._cancel(future, engine, info, ctl, slog, request.kill_grace_seconds)
            log.result = "killed"
            raise
        except Cancelled:
            log.result = "killed"
            raise asyncio.CancelledError() from None
        except StatementError as e:
            message = e.message if len(e.message) <= MAX_MESSAGE else e.message[:MAX_MESSAGE] + "..."
            where = "could not connect" if e.label == "connect" else f"{e.label} failed"
            raise self._fail(info.mask(f"{label} on {info.label}: {where}: {message}"), log, details) from None

        if plan.query:
            shown = outcome.rows[: plan.display_rows]
            slog.note(f"{len(outcome.rows)} row(s)" + (f" (limit {plan.limit} reached, more not fetched)"
                                                       if outcome.truncated else "")
                      + (f"; the first {len(shown)}:" if shown else ""))
            if outcome.columns:
                slog.note("\n".join(format_table(outcome.columns, shown)))
            produced = out_values(request.out_params, outcome.columns, outcome.rows)
        else:
            slog.note(f"{outcome.update_count} row(s) affected by the last statement")
            produced = update_count_out(request.out_params, outcome.update_count)
        return self._safe_outputs(produced, request.out_params, info, slog)

    @staticmethod
    def _safe_outputs(produced: dict[str, str], declared: Sequence[Property], info: ConnectionInfo,
                      log: SafeLog) -> dict[str, str]:
        """OUT values go to Temporal history: a value holding the datasource password is masked."""
        out = {}
        for k, v in produced.items():
            masked = info.mask(v)
            if masked != v:
                log.note(f"OUT parameter {k} held the datasource password: masked")
            out[k] = masked
        for p in declared:
            if p.direct is not Direct.OUT:
                continue
            if p.prop in out:
                log.note(f"OUT {p.prop} = {_clip(out[p.prop])}")
            else:
                log.note(f"OUT {p.prop} not set (no column of that name, or several rows and not a LIST): "
                         f"keeps its declared value {_clip(p.value or '')!r}")
        return out

    async def _cancel(self, future: Future[Outcome], engine: Engine, info: ConnectionInfo, ctl: Control,
                      log: SafeLog, grace: float) -> None:
        """Interrupt the running statement, wait for its thread to roll back and let go of the connection."""
        with ctl.lock:
            ctl.cancelled = True
            committing = ctl.committing
        if future.cancel():
            log.note("cancelled before the statements started")
            return
        if committing:
            log.note("cancelled while committing: the transaction may have committed")
        log.note("cancel requested: interrupting the running statement")
        loop = asyncio.get_running_loop()
        try:
            what = await asyncio.wait_for(loop.run_in_executor(None, _interrupt, engine, info, ctl),
                                          CANCEL_WAIT_SECONDS)
            log.note(f"cancelled: {what}")
        except Exception as e:  # the cancel itself failed: still wait, then leave the thread be
            log.note(f"cancelled: server-side cancel failed: {type(e).__name__}: {info.mask(str(e))}")
        deadline = time.monotonic() + max(grace, 0.0) + CANCEL_WAIT_SECONDS
        while not future.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if future.done():
            log.note("statement stopped, transaction rolled back, connection released")
        else:
            log.note("WARNING: the statement did not stop; its connection is discarded when it does")


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def sql_activities(settings: Any) -> list[Callable[..., Any]]:
    """The SQL activity for a worker: registry from settings, threads = the worker's activity slots.

    Raises :class:`~storage.crypto.SecretKeyError` when no key is configured outside dev
    mode, which stops the worker from starting.
    """
    task = SqlTask(DatasourceStore.from_settings(settings), threads=settings.max_concurrent_activities)
    return [task.run]
