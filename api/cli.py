"""The `porpoise` command: run the stack, and submit, run and follow DS workflow definitions."""

from __future__ import annotations

import atexit
import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperOption

from services import schemas  # light: its submodules load on first use (PEP 562)

from .cli_tokens import client_token, keys_app, token_app, write_admin_token
from .cli_users import user_app

# Start-up time is part of every command (issue 15: `porpoise run` of a small DAG within 0.5 s end
# to end), so the module imports only typer, the stdlib and the schemas package (whose submodules,
# and pydantic with them, load when a command names a shape). httpx, rich, the settings and the
# definition parser are imported by the commands that use them.
#
# `import httpx` also imports httpx's own command-line tool (httpx._main) whenever click and rich are
# installed, as they are for typer: ~35 ms of every request-making command (pygments lexers,
# rich.progress, rich.syntax) for a tool Porpoise never calls. A None entry in sys.modules makes that
# one import fail, which httpx expects (it then defines a `httpx.main` that asks for httpx[cli]).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
if TYPE_CHECKING:
    import httpx
    from pydantic import BaseModel
    from rich.console import Console
    from rich.table import Table

    from core.settings import Settings


def _flags_without_type() -> None:
    """Typer's help shows ``<bool>`` next to every on/off flag (``--json <bool>``), which reads as if
    the flag took a value. Flags show no type; options that take a value keep theirs."""
    shown = TyperOption.display_type_rich

    def display(self: TyperOption, ctx: Any) -> str | None:
        return "" if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display  # type: ignore[method-assign]


_flags_without_type()
app = typer.Typer(help="Porpoise: DolphinScheduler workflows on Temporal.", no_args_is_help=True)
app.add_typer(token_app, name="token")
app.add_typer(keys_app, name="keys")
app.add_typer(user_app, name="user")


class _LazyConsole:
    """A rich Console made on first use: importing rich costs start-up time that commands which
    print nothing through it (and ``--help``) need not pay."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


out: Console = _LazyConsole()  # type: ignore[assignment]
err: Console = _LazyConsole(stderr=True)  # type: ignore[assignment]

FINISHED = {"SUCCESS", "FAILURE", "STOP", "PAUSE"}
# `porpoise run` follows the instance with long polls (GET /runs/{id}?wait=POLL_SECONDS): each one
# answers as soon as the instance ends, or after POLL_SECONDS with its progress. So the end is seen at
# once, not up to a poll interval late (a small DAG ends in a few hundred ms, issue 15).
POLL_SECONDS = 0.5


def get_settings() -> Settings:
    """core.settings.get_settings, imported on first use (pydantic-settings is slow to import)."""
    from core.settings import get_settings as settings

    return settings()


def _api() -> httpx.Client:
    """A new client of the API, for the caller to close."""
    import httpx

    token = client_token()  # PORPOISE_TOKEN, a 0600 token file, or `porpoise up`'s (api/cli_tokens.py)
    headers = {"authorization": f"Bearer {token}"} if token else {}
    url = get_settings().resolved_api_url
    # A client's TLS context loads the CA bundle when it is made (~20 ms), even for an http:// API that
    # never uses it; certificates are still verified for https:// (redirects are not followed).
    return httpx.Client(base_url=url, timeout=60, headers=headers, verify=not url.startswith("http://"))


@functools.cache
def _shared_api(api_url: str, token: str) -> httpx.Client:
    """One client for all the requests of a command (per API URL and token): making an httpx client
    costs milliseconds (tens for https://, whose TLS context loads the CA bundle) and `porpoise run`
    sends a request per poll; its connection is kept alive between them as well. Closed at exit."""
    client = _api()
    atexit.register(client.close)
    return client


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def _check(resp: httpx.Response) -> Any:
    if resp.status_code >= 400:
        try:
            body = resp.json()
        except ValueError:
            _fail(f"HTTP {resp.status_code}: {resp.text}")
        lines = [f"{body.get('title', 'error')}: {body.get('detail', '')}"]
        for p in body.get("problems") or []:
            who = f" (task {p['task']!r})" if p.get("task") else ""
            lines.append(f"  {p.get('pointer') or '/'}{who}: {p['message']}")
        _fail("\n".join(lines))
    return resp.json() if resp.content else None  # 204 No Content (deletes)


def _request(method: str, path: str, **kwargs: Any) -> Any:
    import httpx

    try:
        return _check(_shared_api(get_settings().resolved_api_url, client_token()).request(method, path, **kwargs))
    except httpx.ConnectError:
        _fail(f"cannot reach the Porpoise API at {get_settings().resolved_api_url}; start it with `porpoise up`")


def _print_json(value: Any, model: type[BaseModel] | None = None) -> None:
    """Print an API answer as JSON; through the route's response ``model`` when given, so ``--json``
    shows exactly the shape the API documents (services/schemas)."""
    if model is not None:
        from services.schemas.base import shape

        value = shape(model, value)
    out.print_json(json.dumps(value))


def _table(*columns: str, title: str | None = None) -> Table:
    """A table that stays readable at 80 columns: long cells fold instead of being cut."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", pad_edge=False, expand=False)
    for col in columns:
        table.add_column(col, overflow="fold")
    return table


def _when(value: Any, clock_only: bool = False) -> str:
    """An ISO timestamp as ``yyyy-MM-dd HH:mm:ss`` (``HH:mm:ss`` with ``clock_only``)."""
    text = str(value or "").replace("T", " ")[:19]
    return text[11:] if clock_only else text


def _key_values(items: list[str] | None) -> dict[str, str]:
    """Repeated ``--param k=v`` options as a dict (the last value of a key wins)."""
    values: dict[str, str] = {}
    for item in items or []:
        if "=" not in item:
            _fail(f"--param {item!r} is not k=v")
        k, v = item.split("=", 1)
        values[k] = v
    return values


@app.command()
def up(
    data_dir: Annotated[Path | None, typer.Option(help="data directory (default: settings)")] = None,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
    pulsar: Annotated[str | None, typer.Option(
        "--pulsar", help="publish lifecycle events to this Pulsar broker, e.g. pulsar://127.0.0.1:6650 "
                         "(default: PORPOISE_PULSAR_URL; none = events stay in the outbox)")] = None,
    temporal: Annotated[str | None, typer.Option(
        "--temporal", help="use this Temporal server (HOST:PORT; TLS, namespace and API key from the "
                           "PORPOISE_TEMPORAL_* settings) instead of starting the dev server")] = None,
) -> None:
    """Run the embedded stack: Temporal dev server (SQLite, Web UI), a worker and the API. Ctrl-C stops all."""
    from .devserver import devserver_command, die_with_parent, wait_for_port
    from .routers.codec import ensure_ui_secret

    settings = get_settings()
    data = (data_dir or settings.data_dir).resolve()
    os.umask(0o077)  # every file the stack makes (databases, keys, logs) is the operator's alone
    data.mkdir(parents=True, exist_ok=True)
    data.chmod(0o700)
    settings = settings.model_copy(update={"data_dir": data})
    codec_endpoint = f"{settings.resolved_api_url}/codec/ui/{ensure_ui_secret(settings)}"
    admin_token = write_admin_token(settings)  # made on the first start; the CLI here finds it
    env = dict(os.environ, PORPOISE_DATA_DIR=str(data))
    if pulsar is not None:
        env["PORPOISE_PULSAR_URL"] = pulsar
    events_to = env.get("PORPOISE_PULSAR_URL") or settings.pulsar_url
    if temporal is not None:
        env["PORPOISE_TEMPORAL_ADDRESS"] = temporal
        settings = settings.model_copy(update={"temporal_address": temporal})
        _register_on(settings)
    host, port = settings.temporal_address.rsplit(":", 1)
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    logs = data / "process-logs"
    logs.mkdir(exist_ok=True)

    def spawn(name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        # Children write to files, never to a pipe nobody drains (temporal-notes: a worker can hang).
        log = (logs / f"{name}.log").open("ab")
        p = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                             preexec_fn=die_with_parent)  # killed outright, `up` takes its children along
        procs.append((name, p))
        return p

    def stop_all(*_: Any) -> None:
        for _name, p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for _name, p in reversed(procs):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()

    def interrupted(*_: Any) -> None:
        raise KeyboardInterrupt

    # SIGINT, SIGTERM and SIGHUP stop the stack: children run in their own sessions, so they would
    # otherwise outlive us. SIGINT explicitly, because a non-interactive shell starts background jobs
    # (`porpoise up &`) with SIGINT ignored, and Python then keeps it ignored.
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    try:
        if temporal is None:
            spawn("temporal", devserver_command(db_file=data / "temporal.db", port=int(port),
                                                ui_port=settings.temporal_ui_port, codec_endpoint=codec_endpoint))
            wait_for_port(host, int(port), 60)
        spawn("worker", [sys.executable, "-m", "api", "worker", "--processes", str(workers)])
        spawn("api", [sys.executable, "-m", "uvicorn", "api.main:app", "--host", settings.api_host,
                      "--port", str(settings.api_port)])
        wait_for_port(settings.api_host, settings.api_port, 60)
        out.print(f"[bold]Porpoise is up[/bold] (data in {data}, process logs in {logs})")
        out.print(f"  API          {settings.resolved_api_url}")
        out.print(f"  OpenAPI docs {settings.resolved_api_url}/docs")
        if temporal is not None:
            out.print(f"  Temporal     {temporal} (namespace {settings.temporal_namespace})")
        out.print(f"  Temporal UI  {settings.temporal_ui_url}")
        out.print(f"  Admin token  {admin_token} (the CLI on this machine uses it)")
        out.print(f"  Events       {'Pulsar ' + events_to if events_to else 'outbox only (porpoise events tail)'}")
        out.print("Press Ctrl-C to stop.")
        while all(p.poll() is None for _, p in procs):
            time.sleep(0.5)
        dead = [n for n, p in procs if p.poll() is not None]
        err.print(f"[red]{', '.join(dead)} exited; stopping everything (see {logs})[/red]")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        out.print("stopping ...")
    finally:
        stop_all()


def _register_on(settings: Settings) -> None:
    """Namespace and search attributes on an existing server, or a clear error (core/registration.py)."""
    import asyncio

    from core.registration import RegistrationError, ensure_registered
    from core.temporal import connect

    async def go() -> None:
        client = await connect(settings)
        done = await ensure_registered(client)
        if done.namespace_created:
            err.print(f"created namespace {settings.temporal_namespace}")
        if done.attributes_added:
            err.print(f"registered search attributes {', '.join(done.attributes_added)}")

    try:
        asyncio.run(go())
    except RegistrationError as e:
        _fail(str(e))
    except RuntimeError as e:  # cannot connect: the SDK says why (address, TLS)
        _fail(f"cannot use Temporal at {settings.temporal_address}: {e}")


@app.command()
def worker(
    processes: Annotated[int, typer.Option(help="worker processes")] = 1,
    group: Annotated[list[str] | None, typer.Option(
        "--group", help="a worker group whose tasks this worker runs (repeatable); DS workerGroup")] = None,
    no_default: Annotated[bool, typer.Option(
        "--no-default", help="do not run tasks of the default group (workflows still run here)")] = False,
) -> None:
    """Run a Porpoise worker against the configured Temporal."""
    from .worker import main, served_groups

    try:
        groups = served_groups(group or [], default=not no_default)
    except ValueError as e:
        _fail(str(e))
        raise
    main(processes, groups)


@app.command()
def api() -> None:
    """Run the HTTP API."""
    import uvicorn

    settings = get_settings()
    uvicorn.run("api.main:app", host=settings.api_host, port=settings.api_port)


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as e:
        _fail(f"cannot read {file}: {e.strerror}")
        raise


@app.command()
def validate(file: Path, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Validate a DS definition file offline. Exit 0 when valid, 1 with every problem otherwise."""
    from model.formats import dump_document, parse_text
    from model.problems import DefinitionError

    try:
        definitions = parse_text(_read(file), max_bytes=get_settings().max_definition_bytes)
    except DefinitionError as e:
        if as_json:
            out.print_json(json.dumps({"valid": False, "problems": [p.as_dict() for p in e.problems]}))
        else:
            for p in e.problems:
                err.print(f"[red]✗[/red] {p}")
        raise typer.Exit(1) from None
    if as_json:
        out.print_json(json.dumps({"valid": True, "definitions": [dump_document(d) for d in definitions]}))
    else:
        for d in definitions:
            out.print(f"[green]✓[/green] {d.name}: {len(d.tasks)} tasks ({d.source_format})")


@app.command()
def submit(file: Path) -> None:
    """Submit a DS definition file; prints each definition's code and version."""
    for d in _request("POST", "/definitions", content=_read(file), headers={"content-type": "application/json"}):
        out.print(f"{d['name']}: code {d['code']} version {d['version']}")


def _print_status(status: dict[str, Any]) -> None:
    table = _table("task", "type", "state", "try", "start", "end", "error",
                   title=f"{status['definitionName']} — {status['instanceId']}: {status['state']}")
    for n in status["nodes"]:
        table.add_row(n["name"], n["taskType"], n["state"], str(n["attempts"]), _when(n["startTime"], True),
                      _when(n["endTime"], True), n.get("error") or n.get("waiting") or "")
    err.print(table)


@app.command()
def run(
    file: Path,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="start param k=v")] = None,
    wait: Annotated[bool, typer.Option(help="wait for the end")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print the final state as JSON")] = False,
    failure_strategy: Annotated[str, typer.Option(help="CONTINUE or END")] = "CONTINUE",
    dry_run: Annotated[bool, typer.Option(help="DS dry run: tasks are not executed")] = False,
    name: Annotated[str | None, typer.Option(help="which definition of a multi-definition file")] = None,
    worker_group: Annotated[str | None, typer.Option(
        help="DS workerGroup of the run: tasks left in default run in this group")] = None,
) -> None:
    """Submit FILE, start it, show progress, and print the final instance state with every node."""
    params = _key_values(param)
    saved = _request("POST", "/definitions", content=_read(file), headers={"content-type": "application/json"})
    target = next((d for d in saved if name in (None, d["name"])), None) if name else saved[-1]
    if target is None:
        _fail(f"no definition named {name!r} in {file}")
        return
    body = {"startParams": params, "failureStrategy": failure_strategy, "dryRun": dry_run}
    if worker_group:
        body["workerGroup"] = worker_group
    created = _request("POST", f"/definitions/{target['code']}/runs", json=body)
    err.print(f"started {created['instanceId']} — {created['temporalUiUrl']}")
    if not wait:
        if as_json:
            _print_json(created, schemas.RunCreated)
        return
    seen: dict[str, str] = {}
    while True:
        asked = time.monotonic()
        status = _request("GET", f"/runs/{created['instanceId']}", params={"wait": POLL_SECONDS})
        for n in status["nodes"]:
            if seen.get(n["name"]) != n["state"]:
                seen[n["name"]] = n["state"]
                err.print(f"  {n['name']}: {n['state']}")
        if status["state"] in FINISHED and status.get("temporalStatus") != "RUNNING":
            break
        time.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - asked)))  # an API without the long poll
    if as_json:
        _print_json(status, schemas.RunStatus)
    else:
        _print_status(status)
    raise typer.Exit(0 if status["state"] == "SUCCESS" else 1)


@app.command()
def status(instance_id: str, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show a workflow instance and every node's state."""
    st = _request("GET", f"/runs/{instance_id}")
    if as_json:
        _print_json(st, schemas.RunStatus)
    else:
        _print_status(st)


@app.command()
def logs(
    instance_id: str,
    task_code: int,
    attempt: Annotated[int | None, typer.Option()] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing until the attempt ends")] = False,
    tail: Annotated[int | None, typer.Option("--tail", "-n", min=1, help="only the last N lines")] = None,
) -> None:
    """Print a task instance's log (masked); --tail N for its last lines, --follow to stream it."""
    import httpx

    params: dict[str, Any] = {"attempt": attempt} if attempt else {}
    if tail is not None:
        params["lines"] = tail
    if follow:
        params["follow"] = "true"
    path = f"/runs/{instance_id}/tasks/{task_code}/log"
    try:
        with _api() as c:
            if not follow:
                resp = c.get(path, params=params)
                if resp.status_code >= 400:
                    _check(resp)
                sys.stdout.write(resp.text)
                return
            # A followed log may be quiet for longer than any read timeout: none while streaming.
            with c.stream("GET", path, params=params, timeout=httpx.Timeout(60, read=None)) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    _check(resp)
                for text in resp.iter_text():
                    sys.stdout.write(text)
                    sys.stdout.flush()
    except httpx.ConnectError:
        _fail("cannot reach the Porpoise API; start it with `porpoise up`")
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


@app.command()
def stop(instance_id: str) -> None:
    """Stop a running workflow instance: running tasks are killed, the instance ends STOP."""
    _print_json(_request("POST", f"/runs/{instance_id}/stop"), schemas.RunOperation)


@app.command()
def pause(instance_id: str) -> None:
    """Pause: running tasks finish, nothing new starts; `porpoise recover` resumes."""
    _print_json(_request("POST", f"/runs/{instance_id}/pause"), schemas.RunOperation)


@app.command()
def recover(instance_id: str) -> None:
    """Recover a FAILURE (re-run failed tasks) or resume a PAUSE/STOP instance; successes are kept."""
    _print_json(_request("POST", f"/runs/{instance_id}/recover"), schemas.RunCreated)


@app.command()
def rerun(instance_id: str) -> None:
    """Run the whole DAG of a finished instance again."""
    _print_json(_request("POST", f"/runs/{instance_id}/rerun"), schemas.RunCreated)


@app.command("force-success")
def force_success(instance_id: str, task_code: int) -> None:
    """Mark a failed task of a finished instance FORCED_SUCCESS; `porpoise recover` continues from it."""
    _print_json(_request("POST", f"/runs/{instance_id}/tasks/{task_code}/force-success"), schemas.ForcedSuccess)


# -- listing definitions and runs ------------------------------------------------------------------

definitions_app = typer.Typer(help="Stored workflow definitions (latest versions).", no_args_is_help=True)
app.add_typer(definitions_app, name="definitions")
runs_app = typer.Typer(help="Workflow instances (Temporal visibility).", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


@definitions_app.command("list")
def definitions_list(
    project: Annotated[int | None, typer.Option("--project", help="only this project code")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List definitions, most recently changed first."""
    params: dict[str, Any] = {"limit": limit} | ({"projectCode": project} if project is not None else {})
    rows = _request("GET", "/definitions", params=params)
    if as_json:
        _print_json(rows, schemas.DefinitionListItem)
        return
    table = _table("code", "name", "version", "updated")
    for r in rows:
        table.add_row(str(r["code"]), r["name"], str(r["version"]), _when(r["updatedAt"]))
    out.print(table)


@runs_app.command("list")
def runs_list(
    definition: Annotated[int | None, typer.Option("--definition", help="only this definition code")] = None,
    state: Annotated[str | None, typer.Option(help="only this DS state, e.g. FAILURE")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List workflow instances, newest first."""
    params: dict[str, Any] = {"limit": limit}
    if definition is not None:
        params["definitionCode"] = definition
    if state:
        params["state"] = state.upper()
    rows = _request("GET", "/runs", params=params)
    if as_json:
        _print_json(rows, schemas.RunSummary)
        return
    table = _table("instance", "definition", "state", "started")
    for r in rows:
        table.add_row(r["instanceId"], r.get("definitionName") or str(r.get("definitionCode") or ""),
                      r.get("state") or r.get("temporalStatus") or "", _when(r.get("startTime")))
    out.print(table)


# -- datasources (docs/datasources.md) ---------------------------------------------------------------

datasource_app = typer.Typer(help="Datasources for SQL and DataX tasks; passwords are stored encrypted and "
                                  "never shown.", no_args_is_help=True)
app.add_typer(datasource_app, name="datasource")


def _ds_password(password: str | None, password_stdin: bool, ask_password: bool) -> str | None:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if ask_password:
        return str(typer.prompt("password", hide_input=True))
    return password


def _ds_params(param: list[str] | None) -> dict[str, str] | None:
    return None if param is None else _key_values(param)


def _ds_print(rows: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        _print_json(rows, schemas.DatasourceView)
        return
    table = _table("id", "name", "type", "where", "user", "password", title="datasources")
    for d in rows:
        where = d["database"] if d["type"] == "SQLITE" else f"{d['host']}:{d['port']}/{d['database']}"
        table.add_row(str(d["id"]), d["name"], d["type"], where, d["userName"], "set" if d["hasPassword"] else "-")
    out.print(table)


PasswordOpt = Annotated[str | None, typer.Option(help="the password (visible in the process list: prefer "
                                                      "--ask-password or --password-stdin)")]
PasswordStdinOpt = Annotated[bool, typer.Option("--password-stdin", help="read the password from stdin")]
AskPasswordOpt = Annotated[bool, typer.Option("--ask-password", help="prompt for the password")]
ParamOpt = Annotated[list[str] | None, typer.Option("--param", "-p", help="extra connection param k=v")]


@datasource_app.command("create")
def datasource_create(
    name: str,
    type_: Annotated[str, typer.Option("--type", help="POSTGRESQL, MYSQL, MARIADB, SQLITE, HIVE, ORACLE, ...")],
    host: Annotated[str, typer.Option()] = "",
    port: Annotated[int | None, typer.Option()] = None,
    database: Annotated[str, typer.Option(help="database name; for SQLITE the absolute file path")] = "",
    user: Annotated[str, typer.Option()] = "",
    password: PasswordOpt = None,
    password_stdin: PasswordStdinOpt = False,
    ask_password: AskPasswordOpt = False,
    param: ParamOpt = None,
    note: Annotated[str, typer.Option()] = "",
    id_: Annotated[int | None, typer.Option("--id", help="keep the id a DS export refers to")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Register a datasource."""
    body: dict[str, Any] = {"name": name, "type": type_, "host": host, "port": port, "database": database,
                            "userName": user, "note": note, "other": _ds_params(param) or {}}
    secret = _ds_password(password, password_stdin, ask_password)
    if secret:
        body["password"] = secret
    if id_ is not None:
        body["id"] = id_
    _ds_print([_request("POST", "/datasources", json=body)], as_json)


@datasource_app.command("list")
def datasource_list(as_json: Annotated[bool, typer.Option("--json")] = False,
                    type_: Annotated[str | None, typer.Option("--type")] = None) -> None:
    """List datasources."""
    _ds_print(_request("GET", "/datasources", params={"type": type_} if type_ else {}), as_json)


@datasource_app.command("get")
def datasource_get(datasource_id: int, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Show one datasource (never its password)."""
    _ds_print([_request("GET", f"/datasources/{datasource_id}")], as_json)


@datasource_app.command("update")
def datasource_update(
    datasource_id: int,
    name: Annotated[str | None, typer.Option()] = None,
    type_: Annotated[str | None, typer.Option("--type")] = None,
    host: Annotated[str | None, typer.Option()] = None,
    port: Annotated[int | None, typer.Option()] = None,
    database: Annotated[str | None, typer.Option()] = None,
    user: Annotated[str | None, typer.Option()] = None,
    password: PasswordOpt = None,
    password_stdin: PasswordStdinOpt = False,
    ask_password: AskPasswordOpt = False,
    param: ParamOpt = None,
    note: Annotated[str | None, typer.Option()] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Change a datasource; what is not given stays (the password too). Next task runs use it."""
    fields = {"name": name, "type": type_, "host": host, "port": port, "database": database, "userName": user,
              "note": note, "other": _ds_params(param), "password": _ds_password(password, password_stdin,
                                                                                  ask_password)}
    body = {k: v for k, v in fields.items() if v is not None}
    _ds_print([_request("PUT", f"/datasources/{datasource_id}", json=body)], as_json)


@datasource_app.command("delete")
def datasource_delete(datasource_id: int) -> None:
    """Delete a datasource."""
    import httpx

    try:
        with _api() as c:
            resp = c.delete(f"/datasources/{datasource_id}")
    except httpx.ConnectError:
        _fail(f"cannot reach the Porpoise API at {get_settings().resolved_api_url}; start it with `porpoise up`")
        return
    if resp.status_code >= 400:
        _check(resp)
    out.print(f"deleted datasource {datasource_id}")


@datasource_app.command("test")
def datasource_test(datasource_id: int, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Connect to a datasource once (from the API host). Exit 1 when it fails."""
    result = _request("POST", f"/datasources/{datasource_id}/test")
    if as_json:
        _print_json(result, schemas.ConnectionTest)
    elif result["ok"]:
        out.print(f"[green]ok[/green] {result['name']}: {result['message']} ({result['elapsedMs']} ms)")
    else:
        err.print(f"[red]failed[/red] {result['name']}: {result['message']}")
    raise typer.Exit(0 if result["ok"] else 1)


@datasource_app.command("rotate-keys")
def datasource_rotate_keys() -> None:
    """Re-encrypt every password with the first key of PORPOISE_SECRET_KEY (see docs/datasources.md)."""
    _print_json(_request("POST", "/datasources/rotate-keys"), schemas.KeysRotated)


if __name__ == "__main__":
    app()


events_app = typer.Typer(help="Lifecycle events recorded in the outbox (and published to Pulsar when set).")
app.add_typer(events_app, name="events")


@events_app.command("tail")
def events_tail(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing new events")] = False,
    instance: Annotated[str | None, typer.Option(help="only this workflow instance")] = None,
    last: Annotated[int, typer.Option(help="start with the last N events")] = 20,
) -> None:
    """Print events from the durable outbox, one JSON object per line."""
    from storage.outbox import Outbox

    outbox = Outbox(get_settings().resolved_database_url)
    after = max(0, outbox.last_id() - last) if not instance else 0
    try:
        while True:
            rows = outbox.tail(after, 500, instance)
            for row_id, event in rows:
                sys.stdout.write(json.dumps(event) + "\n")
                after = row_id
            sys.stdout.flush()
            if not follow:
                break
            if not rows:
                time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        outbox.dispose()


@events_app.command("schema")
def events_schema(
    out_dir: Annotated[Path, typer.Option(help="where to write the JSON Schema")] = Path("docs/events"),
) -> None:
    """Write the event JSON Schema (versioned) for consumers."""
    from core.events import SCHEMA_VERSION, LifecycleEvent

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"lifecycle-event.v{SCHEMA_VERSION}.schema.json"
    path.write_text(json.dumps(LifecycleEvent.model_json_schema(), indent=2) + "\n")
    out.print(f"wrote {path}")
# -- schedules and complement data (docs/schedules.md) ------------------------------------------------

schedule_app = typer.Typer(help="DS schedules (Temporal Schedules): create, update, online/offline, runs.",
                           no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")
complement_app = typer.Typer(help="Complement data (backfill): one instance per business date.",
                             no_args_is_help=True)
app.add_typer(complement_app, name="complement")

JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def _schedule_print(rows: list[dict[str, Any]], as_json: bool) -> None:
    """A table of the schedules (misfire and overlap policies: --json), or their JSON."""
    if as_json:
        _print_json(rows, schemas.ScheduleView)
        return
    table = _table("id", "definition", "crontab", "timezone", "state", "next fire", title="schedules")
    for s in rows:
        upcoming = (s.get("temporal") or {}).get("nextFireTimes") or [""]
        table.add_row(str(s["id"]), f"{s['processDefinitionName']} ({s['processDefinitionCode']}) "
                                    f"v{s['processDefinitionVersion']}",
                      s["crontab"], s["timezoneId"], s["releaseState"], _when(upcoming[0]))
    out.print(table)


def _schedule_body(crontab: str | None, timezone: str | None, start: str | None, end: str | None,
                   failure_strategy: str | None, warning_type: str | None, priority: str | None,
                   misfire: str | None, threshold: int | None, overlap: str | None) -> dict[str, Any]:
    fields = {"crontab": crontab, "timezoneId": timezone, "startTime": start, "endTime": end,
              "failureStrategy": failure_strategy, "warningType": warning_type, "processInstancePriority": priority,
              "misfirePolicy": misfire, "misfireThresholdSeconds": threshold, "overlapPolicy": overlap}
    return {k: v for k, v in fields.items() if v is not None}


CrontabOpt = Annotated[str | None, typer.Option(help="Quartz crontab, e.g. '0 0 2 * * ? *'")]
TimezoneOpt = Annotated[str | None, typer.Option("--timezone", help="IANA zone (timezoneId)")]
StartOpt = Annotated[str | None, typer.Option("--start", help="startTime 'yyyy-MM-dd HH:mm:ss'")]
EndOpt = Annotated[str | None, typer.Option("--end", help="endTime 'yyyy-MM-dd HH:mm:ss'")]
FailureOpt = Annotated[str | None, typer.Option(help="CONTINUE or END")]
WarningOpt = Annotated[str | None, typer.Option(help="NONE, SUCCESS, FAILURE or ALL")]
PriorityOpt = Annotated[str | None, typer.Option("--priority", help="HIGHEST .. LOWEST")]
MisfireOpt = Annotated[str | None, typer.Option(help="FIRE_ALL_MISSED, FIRE_ONCE_NOW or SKIP_MISSED")]
ThresholdOpt = Annotated[int | None, typer.Option("--misfire-threshold", help="seconds late that still count as "
                                                                            "on time (default 60)")]
OverlapOpt = Annotated[str | None, typer.Option(help="ALLOW_ALL, SKIP, BUFFER_ONE, BUFFER_ALL, CANCEL_OTHER, "
                                                     "TERMINATE_OTHER")]


@schedule_app.command("create")
def schedule_create(
    definition_code: int,
    crontab: Annotated[str, typer.Option(help="Quartz crontab, e.g. '0 0 2 * * ? *'")],
    timezone: TimezoneOpt = None, start: StartOpt = None, end: EndOpt = None, failure_strategy: FailureOpt = None,
    warning_type: WarningOpt = None, priority: PriorityOpt = None, misfire: MisfireOpt = None,
    misfire_threshold: ThresholdOpt = None, overlap: OverlapOpt = None,
    online: Annotated[bool, typer.Option("--online", help="put it online at once (default: offline, as DS)")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create the schedule of a definition (offline unless --online)."""
    body = _schedule_body(crontab, timezone, start, end, failure_strategy, warning_type, priority, misfire,
                          misfire_threshold, overlap) | {"processDefinitionCode": definition_code}
    if online:
        body["releaseState"] = "ONLINE"
    _schedule_print([_request("POST", "/schedules", json=body)], as_json)


@schedule_app.command("update")
def schedule_update(
    schedule_id: int, crontab: CrontabOpt = None, timezone: TimezoneOpt = None, start: StartOpt = None,
    end: EndOpt = None, failure_strategy: FailureOpt = None, warning_type: WarningOpt = None,
    priority: PriorityOpt = None, misfire: MisfireOpt = None, misfire_threshold: ThresholdOpt = None,
    overlap: OverlapOpt = None, as_json: JsonOpt = False,
) -> None:
    """Change a schedule; what is not given stays. It also moves to the definition's current version."""
    body = _schedule_body(crontab, timezone, start, end, failure_strategy, warning_type, priority, misfire,
                          misfire_threshold, overlap)
    _schedule_print([_request("PUT", f"/schedules/{schedule_id}", json=body)], as_json)


@schedule_app.command("list")
def schedule_list(definition_code: Annotated[int | None, typer.Option("--definition")] = None,
                  as_json: JsonOpt = False) -> None:
    """List schedules."""
    params = {"definitionCode": definition_code} if definition_code is not None else {}
    _schedule_print(_request("GET", "/schedules", params=params), as_json)


@schedule_app.command("get")
def schedule_get(schedule_id: int, as_json: JsonOpt = False) -> None:
    """One schedule with its next fire times."""
    _schedule_print([_request("GET", f"/schedules/{schedule_id}")], as_json)


@schedule_app.command("online")
def schedule_online(schedule_id: int) -> None:
    """Put a schedule online: it fires."""
    out.print(_request("POST", f"/schedules/{schedule_id}/online")["releaseState"])


@schedule_app.command("offline")
def schedule_offline(schedule_id: int) -> None:
    """Take a schedule offline: it stops firing."""
    out.print(_request("POST", f"/schedules/{schedule_id}/offline")["releaseState"])


@schedule_app.command("delete")
def schedule_delete(schedule_id: int) -> None:
    """Delete an offline schedule."""
    _request("DELETE", f"/schedules/{schedule_id}")
    out.print(f"deleted schedule {schedule_id}")


@schedule_app.command("trigger")
def schedule_trigger(schedule_id: int) -> None:
    """Fire a schedule once now."""
    _request("POST", f"/schedules/{schedule_id}/trigger")
    out.print(f"triggered schedule {schedule_id}")


@schedule_app.command("runs")
def schedule_runs(schedule_id: int, limit: Annotated[int, typer.Option()] = 20, as_json: JsonOpt = False) -> None:
    """The instances a schedule started, newest business time first."""
    rows = _request("GET", f"/schedules/{schedule_id}/runs", params={"limit": limit})
    if as_json:
        _print_json(rows, schemas.ScheduleRun)
        return
    table = _table("instance", "scheduleTime", "state", "start", "end", title=f"runs of schedule {schedule_id}")
    for r in rows:
        table.add_row(r["instanceId"], _when(r["scheduleTime"]), r["state"] or "", _when(r["startTime"], True),
                      _when(r["closeTime"], True))
    out.print(table)


@schedule_app.command("preview")
def schedule_preview(crontab: str, timezone: Annotated[str, typer.Option("--timezone")] = "UTC",
                     count: Annotated[int, typer.Option()] = 5) -> None:
    """The next fire times of a Quartz crontab."""
    for t in _request("POST", "/schedules/preview", json={"crontab": crontab, "timezoneId": timezone,
                                                          "count": count})["fireTimes"]:
        out.print(t)


def _complement_print(st: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _print_json(st, schemas.ComplementView)
        return
    table = _table("scheduleTime", "chain", "state", "instance",
                   title=f"{st['definitionName']} — {st['complementId']}: {st['state']} "
                         f"({st['runMode']}, {st['chains']} chain{'s' if st['chains'] > 1 else ''})")
    for d in st["dates"]:
        table.add_row(_when(d["scheduleTime"]), str(d["chain"]), d["state"], d["instanceId"] or "")
    err.print(table)


@complement_app.command("start")
def complement_start(
    definition_code: int,
    start: Annotated[str | None, typer.Option("--start", help="complementStartDate 'yyyy-MM-dd HH:mm:ss'")] = None,
    end: Annotated[str | None, typer.Option("--end", help="complementEndDate")] = None,
    dates: Annotated[str | None, typer.Option("--dates", help="complementScheduleDateList: d1,d2,...")] = None,
    parallel: Annotated[int, typer.Option("--parallel", help="RUN_MODE_PARALLEL with this many chains "
                                                             "(0: serial)")] = 0,
    ascending: Annotated[bool, typer.Option("--asc", help="oldest date first (default newest first)")] = False,
    continue_on_failure: Annotated[bool, typer.Option("--continue-on-failure")] = False,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="start param k=v")] = None,
    failure_strategy: Annotated[str, typer.Option(help="CONTINUE or END")] = "CONTINUE",
    timezone: Annotated[str | None, typer.Option("--timezone")] = None,
    dry_run: Annotated[bool, typer.Option(help="DS dry run")] = False,
    wait: Annotated[bool, typer.Option(help="wait for the end")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Complement data: run the definition once per business date (a range or a list)."""
    if dates:
        schedule_time: dict[str, Any] = {"complementScheduleDateList": dates}
    elif start and end:
        schedule_time = {"complementStartDate": start, "complementEndDate": end}
    else:
        _fail("give --start and --end, or --dates")
        return
    params = _key_values(param)
    body: dict[str, Any] = {"scheduleTime": schedule_time, "startParams": params, "failureStrategy": failure_strategy,
                            "dryRun": dry_run, "executionOrder": "ASC_ORDER" if ascending else "DESC_ORDER",
                            "continueOnFailure": continue_on_failure,
                            "runMode": "RUN_MODE_PARALLEL" if parallel else "RUN_MODE_SERIAL"}
    if parallel:
        body["expectedParallelismNumber"] = parallel
    if timezone:
        body["timezone"] = timezone
    created = _request("POST", f"/definitions/{definition_code}/complements", json=body)
    err.print(f"started {created['complementId']} — {len(created['dates'])} dates — {created['temporalUiUrl']}")
    if not wait:
        if as_json:
            _print_json(created, schemas.ComplementCreated)
        return
    while True:
        st = _request("GET", f"/complements/{created['complementId']}")
        if st["temporalStatus"] != "RUNNING":
            break
        time.sleep(1.0)
    _complement_print(st, as_json)
    raise typer.Exit(0 if st["state"] == "SUCCESS" else 1)


@complement_app.command("status")
def complement_status(complement_id: str, as_json: JsonOpt = False) -> None:
    """Every date of a complement with its instance and state."""
    _complement_print(_request("GET", f"/complements/{complement_id}"), as_json)


@complement_app.command("stop")
def complement_stop(complement_id: str) -> None:
    """Stop a complement: running dates are stopped, no new date starts."""
    _print_json(_request("POST", f"/complements/{complement_id}/stop"), schemas.ComplementStopped)


# -- alerts (docs/alerts.md) -----------------------------------------------------------------------------

alert_app = typer.Typer(help="Alert groups (DS warningGroupId), their channels and templates.", no_args_is_help=True)
app.add_typer(alert_app, name="alert")


def _json_arg(value: str) -> Any:
    """Inline JSON, or @FILE for JSON read from a file (channels hold templates: files are easier)."""
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        _fail(f"not JSON ({e.msg} at line {e.lineno} column {e.colno})")


@alert_app.command("group-create")
def alert_group_create(name: str, description: Annotated[str, typer.Option()] = "",
                       group_id: Annotated[int | None, typer.Option("--id", help="keep a DS warningGroupId")] = None
                       ) -> None:
    """Create an alert group."""
    body: dict[str, Any] = {"name": name, "description": description}
    if group_id is not None:
        body["id"] = group_id
    _print_json(_request("POST", "/alert-groups", json=body), schemas.AlertGroupView)


@alert_app.command("groups")
def alert_groups() -> None:
    """List alert groups and their channels (never a secret)."""
    table = _table("id", "name", "channels", title="alert groups")
    for g in _request("GET", "/alert-groups"):
        table.add_row(str(g["id"]), g["name"], ", ".join(f"{c['name']} ({c['type']})" for c in g.get("channels", [])))
    out.print(table)


@alert_app.command("group")
def alert_group(group_id: int) -> None:
    """One alert group with its channels, as JSON."""
    _print_json(_request("GET", f"/alert-groups/{group_id}"), schemas.AlertGroupView)


@alert_app.command("group-delete")
def alert_group_delete(group_id: int) -> None:
    """Delete an alert group and its channels."""
    _request("DELETE", f"/alert-groups/{group_id}")
    out.print(f"deleted alert group {group_id}")


@alert_app.command("channel-add")
def alert_channel_add(group_id: int, channel: Annotated[str, typer.Argument(
        help='the channel as JSON or @file.json: {"name", "type", "params", "events"?, "templates"?}')]) -> None:
    """Add a channel to a group; its templates are validated first."""
    _print_json(_request("POST", f"/alert-groups/{group_id}/channels", json=_json_arg(channel)),
                schemas.AlertChannelView)


@alert_app.command("channel-update")
def alert_channel_update(channel_id: int, changes: Annotated[str, typer.Argument(
        help="the fields to change, as JSON or @file.json; an absent secret keeps the stored one")]) -> None:
    """Change a channel."""
    _print_json(_request("PUT", f"/alert-channels/{channel_id}", json=_json_arg(changes)), schemas.AlertChannelView)


@alert_app.command("channel-delete")
def alert_channel_delete(channel_id: int) -> None:
    """Delete a channel."""
    _request("DELETE", f"/alert-channels/{channel_id}")
    out.print(f"deleted alert channel {channel_id}")


KindOpt = Annotated[str, typer.Option("--kind", help="WORKFLOW_END, TASK_FAILURE or TASK_TIMEOUT")]


@alert_app.command("preview")
def alert_preview(group_id: int, kind: KindOpt = "WORKFLOW_END",
                  run_id: Annotated[str | None, typer.Option("--run", help="a finished run (default: a sample)")]
                  = None,
                  param: Annotated[list[str] | None, typer.Option("--param", "-p", help="business value k=v")] = None,
                  ) -> None:
    """Render the group's templates against a sample or a real finished run, without sending."""
    body: dict[str, Any] = {"kind": kind, "runId": run_id}
    if param:
        body["startParams"] = _key_values(param)
    for m in _request("POST", f"/alert-groups/{group_id}/preview", json=body)["messages"]:
        out.rule(f"{m['channelName'] or m['format']} ({m['format']})")
        if m["subject"]:
            out.print(f"[bold]{m['subject']}[/bold]", highlight=False)
        out.print(m["body"], markup=False, highlight=False)
        if m["templateError"]:
            err.print(f"template error, default used: {m['templateError']}")


@alert_app.command("test")
def alert_test(group_id: int, kind: KindOpt = "WORKFLOW_END") -> None:
    """Send a test alert (a sample failed run) to the group's channels now."""
    result = _request("POST", f"/alert-groups/{group_id}/test", json={"kind": kind})
    out.print(result["summary"])
    if not result["ok"]:
        raise typer.Exit(1)


@alert_app.command("deliveries")
def alert_deliveries(instance_id: Annotated[str | None, typer.Option("--instance")] = None,
                     group_id: Annotated[int | None, typer.Option("--group")] = None,
                     limit: Annotated[int, typer.Option()] = 50) -> None:
    """Alert delivery attempts, newest first, with their errors."""
    params: dict[str, Any] = {"limit": limit}
    if instance_id:
        params["instanceId"] = instance_id
    if group_id is not None:
        params["groupId"] = group_id
    rows = _request("GET", "/alerts/deliveries", params=params)
    table = _table("time", "instance", "kind", "channel", "try", "ok", "error", title="alert deliveries")
    for r in rows:
        table.add_row(_when(r.get("time")), *(str(r.get(k) if r.get(k) is not None else "") for k in
                                              ("instanceId", "kind", "channelName", "attempt", "ok", "error")))
    out.print(table)
