"""Alert templates: user-written Jinja2, rendered in a sandbox, in a separate process, with limits.

Templates are user input, so rendering one must never be able to read Porpoise's internals, touch a
file, import a module, hang a worker thread or exhaust its memory. The defences, outermost first:

1. **A separate render process.** Templates are parsed and rendered by a small, long-lived child
   process (``python -c ...``, loading only this file and Jinja), a few of them per API or worker
   process. The parent waits for each answer with a wall-clock deadline and *kills* the child when
   it is late; a fresh child takes the next job. The child runs with an address-space limit
   (``RLIMIT_AS``), so a memory bomb ends in ``MemoryError`` (or its death), never in the worker's.
   Jinja cannot be interrupted from another thread, so a process is the only bound that holds for
   every template: tight loops, C-level work and recursion alike. Forking the worker is not an
   option (it has threads, Temporal's among them); ``multiprocessing``'s forkserver would re-import
   the parent's ``__main__`` in every child; a plain subprocess we own is simple and predictable.
   The child's environment is scrubbed (no ``PORPOISE_SECRET_KEY``, no ``DATABASE_URL``) and its
   working directory is the temp directory.
2. **A deadline inside the child**: a trace function that raises after ``timeout`` seconds while a
   template's own code runs, so the usual runaway loop ends with a readable error and the child
   survives. The parent's kill is the backstop for whatever the tracer does not see.
3. **Jinja's ImmutableSandboxedEnvironment**: no ``_``-prefixed or internal attributes (no
   ``''.__class__.__mro__``), no mutating methods, a safe ``str.format``; plus our own rules:
   ``range()`` is limited to 10,000 items, ``*`` and ``**`` refuse huge results, ``lipsum`` is gone,
   and access to an unsafe attribute is an error, not a silently empty value.
4. **An output cap**: the template is streamed and stopped once it produced ``max_output``
   characters.

When the child cannot be started at all (a locked-down host), rendering falls back to the current
thread with layers 2-4 only, and says so in the log.

Two modes:

* **save time** (:func:`validate_templates`): the template is parsed, every placeholder checked against
  what Porpoise provides for that alert kind (with "did you mean" suggestions), business placeholders
  checked by the resolver, and then rendered against a realistic sample with ``StrictUndefined``;
* **send time** (:func:`render_messages`): unknown placeholders render as ``[unknown: name]`` and are
  reported; a template that fails anyway is replaced by the default template, with a note saying why.

This module is loaded by the child from its file path, so its top-level imports are the standard
library and Jinja only.
"""

from __future__ import annotations

import atexit
import difflib
import functools
import html
import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from jinja2 import ChainableUndefined, StrictUndefined, nodes
from jinja2 import meta as jinja_meta
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

if TYPE_CHECKING:
    from core.contracts import InstanceStatus, NodeStatus

    from .resolvers import BusinessResolver

log = logging.getLogger("porpoise.alerts")

# --------------------------------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------------------------------

MAX_TEMPLATE_CHARS = 32_000  # one subject or body template, as saved
MAX_OUTPUT_CHARS = 200_000  # what one template may produce
RENDER_TIMEOUT = 2.0  # seconds per template
MAX_RANGE = 10_000  # range() items
CHILD_MEMORY_BYTES = 1 << 30  # address space of a render process
POOL_SIZE = 4  # render processes per API / worker process
_GRACE = 1.0  # how long past the deadline the parent waits before it kills the child
_START_TIMEOUT = 20.0

KINDS = ("WORKFLOW_END", "TASK_TIMEOUT", "TASK_FAILURE")
FORMATS = ("html", "markdown", "text")
_DICT_METHODS = frozenset({"items", "keys", "values", "get"})

# --------------------------------------------------------------------------------------------------
# The sandbox
# --------------------------------------------------------------------------------------------------


class RenderTimeout(BaseException):
    """The template ran past its deadline. A BaseException, so no ``except Exception`` swallows it."""


class OutputTooLarge(Exception):
    pass


def _bounded_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise SecurityError(f"range() is limited to {MAX_RANGE} items in alert templates")
    return rng


def _duration(seconds: Any) -> str:
    """``3725`` -> ``1h 2m 5s``; the ``duration`` filter."""
    try:
        total = int(round(float(seconds)))
    except (TypeError, ValueError):
        return ""
    if total < 0:
        return ""
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d"] if days else []
    if hours or days:
        parts.append(f"{hours}h")
    if minutes or hours or days:
        parts.append(f"{minutes}m")
    parts.append(f"{secs}s")
    return " ".join(parts)


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_OUTPUT_CHARS:
                    raise SecurityError("the result of * is too large for an alert template")
        elif operator == "**" and isinstance(left, (int, float)) and isinstance(right, (int, float)):
            too_big = abs(right) > 1024 or (isinstance(left, int) and isinstance(right, int) and right > 0
                                           and left.bit_length() * right > 4096)
            if too_big:
                raise SecurityError("the result of ** is too large for an alert template")
        return super().call_binop(context, operator, left, right)

    def getattr(self, obj: Any, attribute: str) -> Any:
        if attribute.startswith("_"):
            raise SecurityError(f"'{attribute}' is an internal attribute: not allowed in alert templates")
        return super().getattr(obj, attribute)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"access to attribute {attribute!r} of a {type(obj).__name__!r} value is not allowed "
                            "in alert templates")


class _Biz(dict[str, Any]):
    """The business placeholders (``biz.name``), so that an unknown one is reported as ``biz.name``."""


class _AnyBiz(_Biz):
    """Save-time sample: any business name has a value (the resolver supplies the real ones)."""

    def __missing__(self, key: str) -> str:
        return f"<biz.{key}>"


_local = threading.local()


def _note_undefined(name: str) -> None:
    seen: list[str] | None = getattr(_local, "undefined", None)
    if seen is not None and name not in seen:
        seen.append(name)


class _FallbackUndefined(ChainableUndefined):
    """Send time: an unknown placeholder renders ``[unknown: name]`` (and is reported), never crashes."""

    __slots__ = ()

    def _label(self) -> str:
        if self._undefined_name is None:
            return str(self._undefined_hint or "value")
        prefix = "biz." if isinstance(self._undefined_obj, _Biz) else ""
        return f"{prefix}{self._undefined_name}"

    def __str__(self) -> str:
        label = self._label()
        _note_undefined(label)
        return f"[unknown: {label}]"

    def __html__(self) -> str:
        return html.escape(str(self))


def _finalize(value: Any) -> Any:
    return "" if value is None else value


_ENVS: dict[tuple[bool, bool], _Sandbox] = {}
_ENVS_LOCK = threading.Lock()


def environment(*, strict: bool, autoescape: bool) -> _Sandbox:
    """The sandboxed environment: StrictUndefined at save time, the readable fallback at send time."""
    key = (strict, autoescape)
    with _ENVS_LOCK:
        env = _ENVS.get(key)
        if env is None:
            env = _Sandbox(undefined=StrictUndefined if strict else _FallbackUndefined, autoescape=autoescape,
                           trim_blocks=True, lstrip_blocks=True, finalize=_finalize, cache_size=200)
            env.globals.pop("lipsum", None)
            env.globals["range"] = _bounded_range
            env.filters["duration"] = _duration
            _ENVS[key] = env
    return env


GLOBALS = frozenset({"range", "dict", "cycler", "joiner", "namespace"})


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`RenderTimeout` in this thread once ``seconds`` pass while Python code runs."""
    deadline = time.monotonic() + seconds

    def local(frame: Any, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise RenderTimeout
        return local

    def global_(frame: Any, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise RenderTimeout
        return local if frame.f_code.co_filename == "<template>" else None

    previous = sys.gettrace()
    sys.settrace(global_)
    try:
        yield
    finally:
        sys.settrace(previous)


def _template_line(exc: BaseException) -> int | None:
    line = None
    for entry in traceback.extract_tb(exc.__traceback__):
        if entry.filename == "<template>":
            line = entry.lineno
    return line


def _describe(exc: BaseException) -> tuple[str, int | None]:
    if isinstance(exc, TemplateSyntaxError):
        return f"syntax error: {exc.message}", exc.lineno
    line = _template_line(exc)
    if isinstance(exc, RenderTimeout):
        return "the template ran too long (a loop that does not end?)", line
    if isinstance(exc, RecursionError):
        return "the template recurses too deeply", line
    if isinstance(exc, MemoryError):
        return "the template used too much memory", line
    if isinstance(exc, OutputTooLarge):
        return str(exc), line
    if isinstance(exc, SecurityError):
        return f"not allowed: {exc}", line
    name = type(exc).__name__
    message = str(exc) or name
    if name == "UndefinedError":
        match = re.match(r"^'(.+)' is undefined$", message)
        if match:
            message = f"unknown placeholder '{match.group(1)}'"
        return message, line
    return f"{name}: {message}" if name not in ("TemplateError", "TemplateRuntimeError") else message, line


def _render_job(job: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    """Render one template (in the child, or inline). Never raises."""
    key = job["key"]
    strict = bool(request.get("strict"))
    env = environment(strict=strict, autoescape=bool(job.get("autoescape")))
    context = dict(request.get("context") or {})
    biz = context.get("biz") or {}
    context["biz"] = _AnyBiz(biz) if request.get("permissive_biz") else _Biz(biz)
    max_output = int(request.get("max_output") or MAX_OUTPUT_CHARS)
    _local.undefined = []
    template = None
    try:
        source = job["source"]
        if len(source) > MAX_TEMPLATE_CHARS:
            raise OutputTooLarge(f"the template is longer than {MAX_TEMPLATE_CHARS} characters")
        with _time_limit(float(request.get("timeout") or RENDER_TIMEOUT)):
            template = env.from_string(source)
            out: list[str] = []
            size = 0
            for chunk in template.generate(context):
                size += len(chunk)
                if size > max_output:
                    raise OutputTooLarge(f"the template produced more than {max_output} characters")
                out.append(chunk)
        return {"key": key, "ok": True, "text": "".join(out), "undefined": list(_local.undefined)}
    except BaseException as e:  # noqa: BLE001 - whatever a template does is its own error
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        message, line = _describe(e)
        if isinstance(e, RenderTimeout) and template is not None and line is not None:
            line = template.get_corresponding_lineno(line)  # not rewritten by Jinja: a BaseException
        return {"key": key, "ok": False, "error": message, "line": line, "undefined": list(_local.undefined),
                "timeout": isinstance(e, RenderTimeout)}
    finally:
        _local.undefined = None


def _analyze_job(job: Mapping[str, Any]) -> dict[str, Any]:
    """What a template refers to: top-level names, attributes of names and of loop variables, and
    business names. Never raises."""
    key, source = job["key"], job["source"]
    if len(source) > MAX_TEMPLATE_CHARS:
        return {"key": key, "ok": False, "error": f"the template is longer than {MAX_TEMPLATE_CHARS} characters",
                "line": None}
    env = environment(strict=True, autoescape=False)
    try:
        with _time_limit(float(job.get("timeout") or RENDER_TIMEOUT)):
            ast = env.parse(source)
            variables = sorted(jinja_meta.find_undeclared_variables(ast))
            loops: dict[str, str | None] = {}
            for loop in ast.find_all(nodes.For):
                target = loop.target
                names = [target.name] if isinstance(target, nodes.Name) else \
                    [n.name for n in target.find_all(nodes.Name)]
                collection = loop.iter.name if isinstance(loop.iter, nodes.Name) else None
                for name in names:
                    loops[name] = collection if name not in loops or loops[name] == collection else None
            for assign in ast.find_all((nodes.Assign, nodes.AssignBlock, nodes.Macro, nodes.With)):
                for name_node in assign.find_all(nodes.Name):
                    if name_node.ctx in ("store", "param"):
                        loops[name_node.name] = None  # bound some other way too: not checked
            attributes: list[list[Any]] = []
            biz: set[str] = set()
            static_biz: set[int] = set()
            for found in ast.find_all((nodes.Getattr, nodes.Getitem)):
                node: Any = found
                attr: str | None
                if isinstance(node, nodes.Getattr):
                    attr = node.attr
                else:
                    attr = node.arg.value if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str) \
                        else None
                if attr is None or not isinstance(node.node, nodes.Name):
                    if attr is not None and attr.startswith("_"):
                        attributes.append(["", attr, node.lineno])
                    continue
                owner = node.node.name
                if owner == "biz" and attr not in _DICT_METHODS:
                    biz.add(attr)
                    static_biz.add(id(node.node))
                attributes.append([owner, attr, node.lineno])
            dynamic = any(n.name == "biz" and n.ctx == "load" and id(n) not in static_biz
                          for n in ast.find_all(nodes.Name))
        return {"key": key, "ok": True, "variables": variables, "attributes": attributes,
                "loops": {k: v for k, v in loops.items() if v}, "biz": sorted(biz), "biz_dynamic": dynamic}
    except BaseException as e:  # noqa: BLE001
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        message, line = _describe(e)
        return {"key": key, "ok": False, "error": message, "line": line}


def _handle(request: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for job in request.get("jobs") or []:
        if request.get("op") == "analyze":
            yield _analyze_job({**job, "timeout": request.get("timeout")})
        else:
            yield _render_job(job, request)


# --------------------------------------------------------------------------------------------------
# The render process
# --------------------------------------------------------------------------------------------------


def _serve() -> None:
    """The child: one JSON request per line on stdin, one JSON answer per job on stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent; we end on stdin EOF
    with suppress(Exception):
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = CHILD_MEMORY_BYTES if hard == resource.RLIM_INFINITY else min(CHILD_MEMORY_BYTES, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    sys.setrecursionlimit(2000)
    out = sys.stdout.buffer
    out.write(b'{"ready": true}\n')
    out.flush()
    for line in sys.stdin.buffer:
        try:
            request = json.loads(line)
        except ValueError:
            continue
        for answer in _handle(request):
            try:
                data = json.dumps(answer).encode()
            except (TypeError, ValueError) as e:
                data = json.dumps({"key": answer.get("key"), "ok": False, "error": f"unencodable result: {e}"}).encode()
            out.write(data + b"\n")
            out.flush()


_CHILD_CODE = (
    "import importlib.util as u, sys; s = u.spec_from_file_location('porpoise_alert_render', {path!r}); "
    "m = u.module_from_spec(s); sys.modules[s.name] = m; s.loader.exec_module(m); m._serve()"
)


_CHILD_ENV_KEEP = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "PYTHONPATH", "TMPDIR", "SYSTEMROOT")


def _child_env() -> dict[str, str]:
    """Only what Python needs: no PORPOISE_SECRET_KEY, DATABASE_URL or any other secret reaches a
    process that runs user templates, should a sandbox escape ever be found."""
    env = {k: v for k, v in os.environ.items() if k in _CHILD_ENV_KEEP}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class _ProcessUnavailable(RuntimeError):
    pass


class _Server:
    def __init__(self) -> None:
        code = _CHILD_CODE.format(path=os.path.abspath(__file__))
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, close_fds=True, env=_child_env(), cwd=tempfile.gettempdir(),
            )
        except OSError as e:
            raise _ProcessUnavailable(f"cannot start a render process: {e}") from e
        self._buf = b""
        ready = self.recv(_START_TIMEOUT)
        if not ready or not ready.get("ready"):
            self.kill()
            raise _ProcessUnavailable("the render process did not start")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, request: Mapping[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request).encode() + b"\n")
        self.proc.stdin.flush()

    def recv(self, timeout: float) -> dict[str, Any] | None:
        """The next answer, or None when the child is late or gone."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return None  # EOF: the child died
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            answer: dict[str, Any] = json.loads(line)
        except ValueError:
            return None
        return answer

    def kill(self) -> None:
        with suppress(OSError):
            self.proc.kill()
        with suppress(Exception):
            self.proc.wait(5)
        for stream in (self.proc.stdin, self.proc.stdout):
            with suppress(Exception):
                stream.close()  # type: ignore[union-attr]

    def close(self) -> None:
        with suppress(Exception):
            self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(2)
        except Exception:  # noqa: BLE001
            self.kill()


class RenderPool:
    """A few render processes, started on demand, killed and replaced when a template overruns."""

    def __init__(self, size: int = POOL_SIZE) -> None:
        self.size = size
        self._idle: list[_Server] = []
        self._count = 0
        self._cond = threading.Condition()
        self.unavailable: str | None = None  # why rendering falls back to the current thread
        self.kills = 0

    def _acquire(self) -> _Server:
        with self._cond:
            while True:
                while self._idle:
                    server = self._idle.pop()
                    if server.alive:
                        return server
                    self._count -= 1
                if self._count < self.size:
                    self._count += 1
                    break
                self._cond.wait()
        try:
            return _Server()
        except BaseException:
            with self._cond:
                self._count -= 1
                self._cond.notify()
            raise

    def _release(self, server: _Server, healthy: bool) -> None:
        if not healthy:
            server.kill()
        with self._cond:
            if healthy and server.alive:
                self._idle.append(server)
            else:
                self._count -= 1
            self._cond.notify()

    def run(self, request: Mapping[str, Any], *, wait: float | None = None) -> list[dict[str, Any]]:
        """Answer every job of ``request``; ``wait``: how long to wait for each answer before the child
        is killed (default: the request's timeout plus a grace second)."""
        jobs = list(request.get("jobs") or [])
        timeout = float(request.get("timeout") or RENDER_TIMEOUT)
        patience = wait if wait is not None else timeout + _GRACE
        if self.unavailable is not None:
            return list(_handle(request))
        answers: list[dict[str, Any]] = []
        while len(answers) < len(jobs):
            pending = jobs[len(answers):]
            try:
                server = self._acquire()
            except _ProcessUnavailable as e:
                self.unavailable = str(e)
                log.warning("alert templates render in-process (%s): the time bound is a tracer only", e)
                answers.extend(_handle({**request, "jobs": pending}))
                break
            healthy = True
            try:
                server.send({**request, "jobs": pending})
                for job in pending:
                    answer = server.recv(patience)
                    if answer is None or answer.get("key") != job["key"]:
                        healthy = False
                        died = not server.alive
                        self.kills += 1
                        answers.append({"key": job["key"], "ok": False, "timeout": not died, "line": None,
                                        "error": "the render process died (memory limit?)" if died
                                        else "the template ran too long (a loop that does not end?)"})
                        break
                    answers.append(answer)
            except OSError:
                healthy = False
                answers.append({"key": pending[0]["key"], "ok": False, "line": None,
                                "error": "the render process died (memory limit?)"})
            finally:
                self._release(server, healthy)
        return answers

    def close(self) -> None:
        with self._cond:
            servers, self._idle = self._idle, []
            self._count -= len(servers)
        for server in servers:
            server.close()


_POOL = RenderPool()
atexit.register(_POOL.close)


def pool() -> RenderPool:
    return _POOL


# --------------------------------------------------------------------------------------------------
# Rendering and analysing, parent side
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    key: str
    source: str
    autoescape: bool = False


@dataclass
class Rendered:
    key: str
    ok: bool
    text: str = ""
    error: str | None = None
    line: int | None = None
    timed_out: bool = False
    undefined: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"line {self.line}: {self.error}" if self.line else str(self.error)


def render_many(jobs: Sequence[Job], context: Mapping[str, Any], *, strict: bool = False,
                permissive_biz: bool = False, timeout: float = RENDER_TIMEOUT,
                max_output: int = MAX_OUTPUT_CHARS) -> dict[str, Rendered]:
    """Render templates against one context (plain JSON data) in a render process. Never raises."""
    if not jobs:
        return {}
    request = {"op": "render", "jobs": [{"key": j.key, "source": j.source, "autoescape": j.autoescape} for j in jobs],
               "context": _jsonable(context), "strict": strict, "permissive_biz": permissive_biz,
               "timeout": timeout, "max_output": max_output}
    out: dict[str, Rendered] = {}
    for a in _POOL.run(request):
        out[a["key"]] = Rendered(key=a["key"], ok=bool(a.get("ok")), text=a.get("text") or "", error=a.get("error"),
                                 line=a.get("line"), timed_out=bool(a.get("timeout")),
                                 undefined=list(a.get("undefined") or []))
    return out


@dataclass
class Analysis:
    key: str
    ok: bool
    error: str | None = None
    line: int | None = None
    variables: list[str] = field(default_factory=list)
    attributes: list[tuple[str, str, int]] = field(default_factory=list)
    loops: dict[str, str] = field(default_factory=dict)  # loop variable -> the collection it iterates
    biz: list[str] = field(default_factory=list)
    biz_dynamic: bool = False


def analyze(sources: Mapping[str, str], timeout: float = RENDER_TIMEOUT) -> dict[str, Analysis]:
    """Parse templates (in a render process) and list what they refer to."""
    if not sources:
        return {}
    request = {"op": "analyze", "jobs": [{"key": k, "source": s} for k, s in sources.items()], "timeout": timeout}
    out: dict[str, Analysis] = {}
    for a in _POOL.run(request):
        out[a["key"]] = Analysis(key=a["key"], ok=bool(a.get("ok")), error=a.get("error"), line=a.get("line"),
                                 variables=list(a.get("variables") or []),
                                 attributes=[(str(o), str(n), int(ln)) for o, n, ln in a.get("attributes") or []],
                                 loops=dict(a.get("loops") or {}), biz=list(a.get("biz") or []),
                                 biz_dynamic=bool(a.get("biz_dynamic")))
    return out


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# --------------------------------------------------------------------------------------------------
# The context: Porpoise's own placeholders
# --------------------------------------------------------------------------------------------------

_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_TITLES = {
    "WORKFLOW_END": {"SUCCESS": "Workflow instance succeeded", "FAILURE": "Workflow instance failed",
                     "STOP": "Workflow instance stopped", "PAUSE": "Workflow instance paused"},
    "TASK_TIMEOUT": "Task timeout warning",
    "TASK_FAILURE": "Task failed",
}


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, KeyError, OSError):
        return ZoneInfo("UTC")


def _fmt(value: datetime | None, zone: ZoneInfo) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(zone).strftime(_TIME_FORMAT)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds())


def _severity(kind: str, state: str) -> str:
    if kind == "TASK_TIMEOUT":
        return "warning"
    if kind == "TASK_FAILURE" or state == "FAILURE":
        return "failure"
    if state == "SUCCESS":
        return "success"
    return "warning" if state in ("STOP", "PAUSE") else "info"


def node_context(node: NodeStatus, *, zone: ZoneInfo, log_base: str) -> dict[str, Any]:
    seconds = _seconds(node.start_time, node.end_time)
    state = node.state.value
    has_log = bool(node.log_path) or (node.state.has_instance and node.attempts > 0)
    return {
        "code": node.code, "name": node.name, "type": node.task_type, "state": state,
        "attempts": node.attempts, "max_attempts": node.max_attempts,
        "start_time": _fmt(node.start_time, zone), "end_time": _fmt(node.end_time, zone),
        "duration": _duration(seconds) if seconds is not None else "",
        "duration_seconds": seconds, "host": node.host or "", "error": node.error or "",
        "timeout_warned": node.timeout_warned, "sub_instance_id": node.sub_instance_id or "",
        "log_url": f"{log_base}/tasks/{node.code}/log" if has_log and log_base else "",
    }


def build_context(status: InstanceStatus, *, kind: str, task_code: int | None = None, project_name: str = "",
                  command_type: str = "START_PROCESS", warning_type: str = "NONE", timezone: str = "UTC",
                  temporal_url: str = "", api_url: str = "", biz: Mapping[str, Any] | None = None,
                  now: datetime | None = None, node_counts: Mapping[str, int] | None = None,
                  nodes_omitted: int = 0) -> dict[str, Any]:
    """Every system placeholder for one alert, as plain JSON data (times formatted in the run's zone)."""
    zone = _zone(timezone)
    state = status.state.value
    run_url = f"{api_url.rstrip('/')}/runs/{status.instance_id}" if api_url else ""
    nodes_ = [node_context(n, zone=zone, log_base=run_url) for n in status.nodes]
    failed = [n for n, raw in zip(nodes_, status.nodes, strict=True) if raw.state.is_failure]
    counts: dict[str, int] = dict(node_counts or {})
    if not counts:
        for n in nodes_:
            counts[n["state"]] = counts.get(n["state"], 0) + 1
    seconds = _seconds(status.start_time, status.end_time or (now if kind != "WORKFLOW_END" else None))
    duration = _duration(seconds) if seconds is not None else ""
    title = _TITLES[kind]
    ctx: dict[str, Any] = {
        "kind": kind,
        "title": title.get(state, f"Workflow instance {state}") if isinstance(title, dict) else title,
        "severity": _severity(kind, state),
        "state": state,
        "project": {"code": status.project_code, "name": project_name or str(status.project_code)},
        "definition": {"code": status.definition_code, "name": status.definition_name,
                       "version": status.definition_version},
        "instance": {
            "id": status.instance_id, "state": state, "run_times": status.run_times, "command_type": command_type,
            "failure_strategy": status.failure_strategy.value, "warning_type": warning_type,
            "dry_run": status.dry_run, "timeout_warned": status.timeout_warned,
            "start_time": _fmt(status.start_time, zone), "end_time": _fmt(status.end_time, zone),
            "schedule_time": _fmt(status.schedule_time, zone), "duration": duration, "duration_seconds": seconds,
            "url": run_url, "temporal_url": temporal_url,
        },
        "times": {"start": _fmt(status.start_time, zone), "end": _fmt(status.end_time, zone),
                  "schedule": _fmt(status.schedule_time, zone), "now": _fmt(now or datetime.now(UTC), zone),
                  "timezone": zone.key},
        "duration": duration,
        "failed_tasks": failed,
        "nodes": nodes_,
        "nodes_omitted": max(0, nodes_omitted),  # a big DAG's alert carries its failed nodes and a sample
        "counts": counts,
        "links": {"temporal": temporal_url, "run": run_url, "api": api_url.rstrip("/")},
        "biz": dict(biz or {}),
    }
    if kind != "WORKFLOW_END":
        task = next((n for n in nodes_ if n["code"] == task_code), None)
        ctx["task"] = task or {"code": task_code or 0, "name": f"task {task_code}", "type": "", "state": "",
                               "attempts": 0, "max_attempts": 0, "start_time": "", "end_time": "", "duration": "",
                               "duration_seconds": None, "host": "", "error": "", "timeout_warned": False,
                               "sub_instance_id": "", "log_url": ""}
    return ctx


def sample_status() -> InstanceStatus:
    """A realistic failed run (for save-time checks and the preview without a run id)."""
    from core.contracts import InstanceStatus, NodeStatus
    from model.definition import FailureStrategy
    from model.states import TaskState, WorkflowState

    t0 = datetime(2024, 6, 1, 2, 0, 0, tzinfo=UTC)

    def at(seconds: int) -> datetime:
        return datetime.fromtimestamp(t0.timestamp() + seconds, UTC)

    return InstanceStatus(
        instance_id="ds-1001-20240601020000-sample", definition_code=1001, definition_name="daily_orders_etl",
        definition_version=3, project_code=42, state=WorkflowState.FAILURE, failure_strategy=FailureStrategy.CONTINUE,
        start_time=t0, end_time=at(725), schedule_time=t0, run_times=1,
        nodes=[
            NodeStatus(code=1, name="extract_orders", task_type="SHELL", state=TaskState.SUCCESS, attempts=1,
                       start_time=at(1), end_time=at(62), host="worker-1", log_path="/logs/1.1.log"),
            NodeStatus(code=2, name="load_warehouse", task_type="SQL", state=TaskState.FAILURE, attempts=3,
                       max_attempts=3, start_time=at(63), end_time=at(700), host="worker-2",
                       log_path="/logs/2.3.log", error="relation \"dw.orders\" does not exist",
                       timeout_warned=True),
            NodeStatus(code=3, name="refresh_report", task_type="HTTP", state=TaskState.DEPEND_FAILED),
            NodeStatus(code=4, name="archive_raw", task_type="SHELL", state=TaskState.FORBIDDEN),
        ],
    )


def sample_context(kind: str, biz: Mapping[str, Any] | None = None, *, temporal_url: str = "",
                   api_url: str = "http://porpoise.example") -> dict[str, Any]:
    status = sample_status()
    return build_context(status, kind=kind, task_code=2 if kind != "WORKFLOW_END" else None,
                         project_name="sales", warning_type="FAILURE", timezone="Asia/Shanghai",
                         temporal_url=temporal_url or "http://temporal.example/namespaces/default/workflows/"
                         + status.instance_id, api_url=api_url, biz=biz,
                         now=datetime(2024, 6, 1, 2, 12, 5, tzinfo=UTC))


@functools.lru_cache(maxsize=8)
def schema(kind: str) -> dict[str, frozenset[str] | None]:
    """Top-level placeholders for ``kind``: the keys of a dict-valued one, or None for a scalar or list."""
    ctx = sample_context(kind)
    return {k: frozenset(v) if isinstance(v, dict) and k not in ("biz", "counts") else None for k, v in ctx.items()}


NODE_FIELDS = frozenset({
    "code", "name", "type", "state", "attempts", "max_attempts", "start_time", "end_time", "duration",
    "duration_seconds", "host", "error", "timeout_warned", "sub_instance_id", "log_url"})

# --------------------------------------------------------------------------------------------------
# Default templates
# --------------------------------------------------------------------------------------------------

SUBJECTS = {
    "WORKFLOW_END": "[Porpoise] {{ definition.name }} {{ state }} · {{ project.name }} · {{ instance.id }}",
    "TASK_TIMEOUT": "[Porpoise] Task timeout warning: {{ task.name }} in {{ definition.name }}",
    "TASK_FAILURE": "[Porpoise] Task failed: {{ task.name }} in {{ definition.name }}",
}

_HTML = """\
{% set colors = {"success": "#1a7f37", "failure": "#cf222e", "warning": "#9a6700", "info": "#0969da"} %}
{% set badge = {"SUCCESS": "#1a7f37", "FORCED_SUCCESS": "#1a7f37", "FAILURE": "#cf222e", "KILL": "#cf222e",
   "STOP": "#cf222e", "NEED_FAULT_TOLERANCE": "#cf222e", "DEPEND_FAILED": "#bc4c00", "PAUSE": "#9a6700",
   "RUNNING_EXECUTION": "#0969da"} %}
{% set color = colors[severity] %}
{% set c6 = "padding:6px;border:1px solid #d0d7de" %}
{% set c5 = "padding:5px;border:1px solid #d0d7de" %}
<!DOCTYPE html>
<html><body style="margin:0;padding:16px;background:#f6f8fa;font-family:-apple-system,'Segoe UI',Helvetica,Arial,\
'PingFang SC','Microsoft YaHei',sans-serif;color:#1f2328;font-size:14px">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="max-width:760px;margin:0 auto;\
background:#ffffff;border:1px solid #d0d7de;border-radius:6px">
<tr><td style="padding:14px 20px;border-top:6px solid {{ color }};border-radius:6px 6px 0 0">
  <div style="font-size:12px;color:#656d76;text-transform:uppercase;letter-spacing:.05em">{{ project.name }}</div>
  <div style="font-size:20px;font-weight:600;margin-top:2px">{{ title }}: {{ definition.name }}</div>
  {% if task is defined %}<div style="margin-top:4px">Task <b>{{ task.name }}</b> ({{ task.type }}) \
<span style="color:{{ color }};font-weight:600">{{ task.state }}</span></div>{% endif %}
</td></tr>
<tr><td style="padding:4px 20px 12px">
<table role="presentation" cellpadding="0" cellspacing="0" style="border-collapse:collapse;font-size:14px">
{% for label, value in [
    ("State", state),
    ("Workflow", definition.name ~ " (code " ~ definition.code ~ ", v" ~ definition.version ~ ")"),
    ("Instance", instance.id ~ (" · run " ~ instance.run_times if instance.run_times > 1 else "")),
    ("Started", times.start), ("Ended", times.end), ("Duration", duration),
    ("Schedule time", times.schedule), ("Command", instance.command_type),
    ("Failure strategy", instance.failure_strategy)] if value %}
<tr><td style="padding:3px 16px 3px 0;color:#656d76;white-space:nowrap">{{ label }}</td>
<td style="padding:3px 0">{% if label == "State" %}<b style="color:{{ color }}">{{ value }}</b>{% else %}{{ value }}\
{% endif %}</td></tr>
{% endfor %}
{% if times.timezone %}<tr><td style="padding:3px 16px 3px 0;color:#656d76">Time zone</td>\
<td style="padding:3px 0">{{ times.timezone }}</td></tr>{% endif %}
</table>
</td></tr>
{% if task is defined and task.error %}
<tr><td style="padding:0 20px 12px"><div style="background:#fff8f8;border:1px solid #ffcecb;border-radius:6px;\
padding:10px 12px;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;white-space:pre-wrap">\
{{ task.error|truncate(2000) }}</div></td></tr>
{% endif %}
{% if failed_tasks %}
<tr><td style="padding:0 20px 12px">
<div style="font-weight:600;margin:4px 0 6px">Failed tasks ({{ failed_tasks|length }})</div>
<table cellpadding="0" cellspacing="0" width="100%" style="border-collapse:collapse;font-size:13px">
<tr style="background:#f6f8fa;text-align:left"><th style="{{ c6 }}">Task</th>\
<th style="{{ c6 }}">State</th><th style="{{ c6 }}">Attempts</th>\
<th style="{{ c6 }}">Error</th><th style="{{ c6 }}">Log</th></tr>
{% for t in failed_tasks[:50] %}
<tr><td style="{{ c6 }}"><b>{{ t.name }}</b><br><span style="color:#656d76">{{ t.type }} · \
{{ t.code }}{% if t.host %} · {{ t.host }}{% endif %}</span></td>
<td style="{{ c6 }};color:{{ badge.get(t.state, '#656d76') }};font-weight:600">{{ t.state }}</td>
<td style="{{ c6 }}">{{ t.attempts }}/{{ t.max_attempts }}</td>
<td style="{{ c6 }};font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px">\
{{ t.error|truncate(300) }}</td>
<td style="{{ c6 }}">{% if t.log_url %}<a href="{{ t.log_url }}">log</a>{% endif %}</td></tr>
{% endfor %}
</table>
</td></tr>
{% endif %}
{% if nodes %}
<tr><td style="padding:0 20px 12px">
<div style="font-weight:600;margin:4px 0 6px">All tasks ({{ nodes|length + nodes_omitted }})</div>
<table cellpadding="0" cellspacing="0" width="100%" style="border-collapse:collapse;font-size:13px">
<tr style="background:#f6f8fa;text-align:left"><th style="{{ c5 }}">Task</th>\
<th style="{{ c5 }}">Type</th><th style="{{ c5 }}">State</th>\
<th style="{{ c5 }}">Duration</th></tr>
{% for n in nodes[:200] %}
<tr><td style="{{ c5 }}">{{ n.name }}</td>\
<td style="{{ c5 }};color:#656d76">{{ n.type }}</td>\
<td style="{{ c5 }};color:{{ badge.get(n.state, '#656d76') }}">{{ n.state }}\
{% if n.timeout_warned %} ⏱{% endif %}</td><td style="{{ c5 }}">{{ n.duration }}</td></tr>
{% endfor %}
{% set more = nodes_omitted + [nodes|length - 200, 0]|max %}
{% if more %}<tr><td colspan="4" style="padding:5px;color:#656d76">… and {{ more }} more \
({% for state, n in counts|dictsort %}{{ state }} {{ n }}{{ ", " if not loop.last }}{% endfor %})</td></tr>{% endif %}
</table>
</td></tr>
{% endif %}
<tr><td style="padding:4px 20px 18px">
{% if links.temporal %}<a href="{{ links.temporal }}" style="display:inline-block;background:{{ color }};color:#ffffff;\
text-decoration:none;padding:8px 14px;border-radius:6px;font-weight:600">Open in Temporal UI</a> {% endif %}
{% if links.run %}<a href="{{ links.run }}" style="display:inline-block;margin-left:8px;color:#0969da;\
padding:8px 4px">Instance status (API)</a>{% endif %}
</td></tr>
</table>
<div style="max-width:760px;margin:8px auto 0;color:#8c959f;font-size:12px;text-align:center">Sent by Porpoise \
at {{ times.now }} ({{ times.timezone }}) · alert {{ kind }}</div>
</body></html>
"""

_MARKDOWN = {
    "WORKFLOW_END": """\
{% set color = {"success": "info", "failure": "warning", "warning": "comment", "info": "comment"}[severity] %}
### {{ title }}
**{{ definition.name }}** <font color="{{ color }}">{{ state }}</font>
> Project: {{ project.name }}
> Instance: {{ instance.id }}{% if instance.run_times > 1 %} (run {{ instance.run_times }}){% endif %}

> Time: {{ times.start }} → {{ times.end }} ({{ duration }})
{% if times.schedule %}> Schedule: {{ times.schedule }}
{% endif %}
{% if failed_tasks %}

**Failed tasks ({{ failed_tasks|length }})**
{% for t in failed_tasks[:5] %}
> <font color="warning">{{ t.state }}</font> {{ t.name }} ({{ t.type }}, {{ t.attempts }}/{{ t.max_attempts }})\
{% if t.error %}: {{ t.error|truncate(80) }}{% endif %}{% if t.log_url %} [log]({{ t.log_url }}){% endif %}

{% endfor %}
{% if failed_tasks|length > 5 %}> … and {{ failed_tasks|length - 5 }} more
{% endif %}
{% endif %}
{% if links.temporal %}

[Open in Temporal UI]({{ links.temporal }})
{% endif %}
""",
    "TASK": """\
### {{ title }}
**{{ task.name }}** ({{ task.type }}) <font color="warning">{{ task.state or state }}</font>
> Workflow: {{ definition.name }} · {{ project.name }}
> Instance: {{ instance.id }}
> Started: {{ task.start_time }}{% if task.duration %} ({{ task.duration }}){% endif %}

> Attempts: {{ task.attempts }}/{{ task.max_attempts }}{% if task.host %} on {{ task.host }}{% endif %}

{% if task.error %}> Error: {{ task.error|truncate(200) }}
{% endif %}
{% if task.log_url %}[Task log]({{ task.log_url }}){% endif %}{% if links.temporal %} · \
[Temporal UI]({{ links.temporal }}){% endif %}
""",
}

_TEXT = {
    "WORKFLOW_END": """\
{{ title }}: {{ definition.name }} {{ state }}
Project: {{ project.name }}
Instance: {{ instance.id }} (run {{ instance.run_times }})
Time: {{ times.start }} -> {{ times.end }} ({{ duration }}, {{ times.timezone }})
{% if failed_tasks %}
Failed tasks:
{% for t in failed_tasks %}
- {{ t.name }} ({{ t.type }}) {{ t.state }}, {{ t.attempts }}/{{ t.max_attempts }} attempts\
{% if t.error %}: {{ t.error|truncate(200) }}{% endif %}{% if t.log_url %} log: {{ t.log_url }}{% endif %}

{% endfor %}
{% endif %}
{% if links.temporal %}Temporal UI: {{ links.temporal }}{% endif %}
""",
    "TASK": """\
{{ title }}: {{ task.name }} ({{ task.type }}) {{ task.state }}
Workflow: {{ definition.name }} ({{ project.name }})
Instance: {{ instance.id }}
Started: {{ task.start_time }}; attempts {{ task.attempts }}/{{ task.max_attempts }}
{% if task.error %}Error: {{ task.error|truncate(500) }}
{% endif %}
{% if task.log_url %}Log: {{ task.log_url }}
{% endif %}
{% if links.temporal %}Temporal UI: {{ links.temporal }}{% endif %}
""",
}


def default_template(kind: str, fmt: str, part: str) -> str:
    """The built-in ``subject`` or ``body`` template for an alert kind and a message format."""
    if part == "subject":
        return SUBJECTS[kind]
    if fmt == "html":
        return _HTML
    table = _MARKDOWN if fmt == "markdown" else _TEXT
    return table["WORKFLOW_END" if kind == "WORKFLOW_END" else "TASK"]


def defaults() -> dict[str, dict[str, dict[str, str]]]:
    """Every default template: ``{format: {kind: {subject, body}}}``."""
    return {fmt: {kind: {"subject": default_template(kind, fmt, "subject"), "body": default_template(kind, fmt, "body")}
                  for kind in KINDS} for fmt in FORMATS}


# --------------------------------------------------------------------------------------------------
# Save time: validation
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateProblem:
    kind: str
    part: str  # subject | body
    message: str
    line: int | None = None

    @property
    def pointer(self) -> str:
        return f"/templates/{self.kind}/{self.part}"

    def text(self) -> str:
        return f"{self.kind} {self.part}" + (f", line {self.line}" if self.line else "") + f": {self.message}"


def _suggest(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _static_problems(kind: str, part: str, a: Analysis) -> list[TemplateProblem]:
    known = schema(kind)
    problems: list[TemplateProblem] = []
    for name in a.variables:
        if name in known or name in GLOBALS:
            continue
        if name == "task":
            msg = "'task' is only available in TASK_TIMEOUT and TASK_FAILURE templates"
        else:
            msg = f"unknown placeholder '{name}'" + _suggest(name, sorted(set(known) | GLOBALS))
        problems.append(TemplateProblem(kind, part, msg))
    for owner, attr, line in a.attributes:
        if attr.startswith("_"):
            problems.append(TemplateProblem(kind, part, f"'{attr}' is an internal attribute: not allowed", line))
            continue
        fields: frozenset[str] | None = None
        label = owner
        if owner in a.loops and a.loops[owner] in ("nodes", "failed_tasks"):
            fields, label = NODE_FIELDS, f"{owner} (an item of {a.loops[owner]})"
        elif owner in known and owner not in a.loops:
            fields = known[owner]
        if fields is None or attr in fields or attr in _DICT_METHODS:
            continue
        problems.append(TemplateProblem(kind, part, f"unknown placeholder '{owner}.{attr}' ({label} has "
                                        f"{', '.join(sorted(fields))})" + _suggest(attr, sorted(fields)), line))
    return problems


def validate_templates(templates: Mapping[str, Mapping[str, str | None]], fmt: str,
                       resolver: BusinessResolver | None = None, *,
                       timeout: float = RENDER_TIMEOUT) -> list[TemplateProblem]:
    """Check a channel's templates ``{kind: {"subject": ..., "body": ...}}`` before they are saved.

    Syntax, unknown placeholders (system ones per kind; business ones by the resolver), internal
    attributes, then a strict render against a sample failed run: runtime errors, escapes, time and
    output limits. Returns every problem found (empty: the templates are good).
    """
    problems: list[TemplateProblem] = []
    sources: dict[str, str] = {}
    for kind, parts in templates.items():
        if kind not in KINDS:
            problems.append(TemplateProblem(str(kind), "", f"unknown alert kind; one of {', '.join(KINDS)}"))
            continue
        for part, source in (parts or {}).items():
            if part not in ("subject", "body"):
                problems.append(TemplateProblem(kind, str(part), "a template is a 'subject' or a 'body'"))
            elif source is not None and source.strip():
                sources[f"{kind}/{part}"] = source
    analyses = analyze(sources, timeout)
    biz_names: set[str] = set()
    for key, a in analyses.items():
        kind, part = key.split("/")
        if not a.ok:
            problems.append(TemplateProblem(kind, part, str(a.error), a.line))
            continue
        problems.extend(_static_problems(kind, part, a))
        biz_names.update(a.biz)
        if resolver is not None and a.biz:
            problems.extend(TemplateProblem(kind, part, msg) for msg in resolver.validate(set(a.biz)).values())
    if problems:
        return problems
    # A strict trial render per kind against the sample run, with a value for every business name.
    sample_biz = resolver.sample(biz_names) if resolver is not None else {}
    for kind in {k.split("/")[0] for k in sources}:
        jobs = [Job(key, src, autoescape=(fmt == "html" and key.endswith("/body")))
                for key, src in sources.items() if key.startswith(kind + "/")]
        rendered = render_many(jobs, sample_context(kind, sample_biz), strict=True, permissive_biz=True,
                               timeout=timeout)
        for key, r in rendered.items():
            if not r.ok:
                _, part = key.split("/")
                problems.append(TemplateProblem(kind, part, str(r.error), r.line))
    return problems


# --------------------------------------------------------------------------------------------------
# Send time: render with fallback
# --------------------------------------------------------------------------------------------------


@dataclass
class Message:
    subject: str
    body: str
    format: str  # html | markdown | text
    template_error: str | None = None  # the custom template failed; the default one was used
    unknown: list[str] = field(default_factory=list)  # unknown placeholders rendered as [unknown: ...]


@dataclass(frozen=True)
class MessageSpec:
    """One message to render: a key (the channel), its format, and its custom templates (None: default)."""

    key: str
    fmt: str
    subject: str | None = None
    body: str | None = None


def business_names(specs: Sequence[MessageSpec]) -> tuple[set[str], bool]:
    """The ``biz.*`` names the custom templates use, and whether one uses ``biz`` dynamically."""
    sources = {f"{s.key}/{part}": src for s in specs for part, src in (("subject", s.subject), ("body", s.body))
               if src}
    names: set[str] = set()
    dynamic = False
    for a in analyze(sources).values():
        names.update(a.biz)
        dynamic = dynamic or a.biz_dynamic
    return names, dynamic


def _note(fmt: str, message: str) -> str:
    text = f"Note: this channel's alert template failed ({message}); Porpoise's default message follows."
    if fmt == "html":
        return (f'<div style="font-family:sans-serif;background:#fff8c5;border:1px solid #d4a72c;padding:8px 12px;'
                f'margin:8px">{html.escape(text)}</div>\n')
    return f"> {text}\n\n" if fmt == "markdown" else f"{text}\n\n"


def _emergency(context: Mapping[str, Any]) -> tuple[str, str]:
    """If even a default template fails (it should not), a message without Jinja."""
    d = context.get("definition") or {}
    i = context.get("instance") or {}
    subject = f"[Porpoise] {d.get('name', '')} {context.get('state', '')} {i.get('id', '')}".strip()
    return subject, f"{context.get('title', '')}\n{subject}\n{(context.get('links') or {}).get('temporal', '')}"


def render_messages(specs: Sequence[MessageSpec], kind: str, context: Mapping[str, Any], *,
                    timeout: float = RENDER_TIMEOUT, max_output: int = MAX_OUTPUT_CHARS) -> dict[str, Message]:
    """Render every channel's subject and body at once; a failing custom template falls back to the default."""
    jobs: list[Job] = []
    for fmt in sorted({s.fmt for s in specs}):
        jobs.append(Job(f"default:{fmt}/subject", default_template(kind, fmt, "subject")))
        jobs.append(Job(f"default:{fmt}/body", default_template(kind, fmt, "body"), autoescape=fmt == "html"))
    for s in specs:
        if s.subject:
            jobs.append(Job(f"custom:{s.key}/subject", s.subject))
        if s.body:
            jobs.append(Job(f"custom:{s.key}/body", s.body, autoescape=s.fmt == "html"))
    rendered = render_many(jobs, context, timeout=timeout, max_output=max_output)
    fallback_subject, fallback_body = _emergency(context)
    out: dict[str, Message] = {}
    for s in specs:
        errors: list[str] = []
        unknown: list[str] = []
        parts: dict[str, str] = {}
        for part, custom in (("subject", s.subject), ("body", s.body)):
            r = rendered.get(f"custom:{s.key}/{part}") if custom else None
            if r is not None and r.ok:
                parts[part] = r.text
                unknown.extend(u for u in r.undefined if u not in unknown)
                continue
            if r is not None:
                errors.append(f"{part}: {r.where}")
            d = rendered.get(f"default:{s.fmt}/{part}")
            parts[part] = d.text if d is not None and d.ok else (fallback_subject if part == "subject"
                                                                   else fallback_body)
        subject = " ".join(parts["subject"].split())[:255] or fallback_subject
        body = parts["body"]
        if errors:
            body = _note(s.fmt, "; ".join(errors)) + body
        out[s.key] = Message(subject=subject, body=body, format=s.fmt,
                             template_error="; ".join(errors) or None, unknown=unknown)
    return out


def html_to_text(markup: str) -> str:
    """A readable plain-text alternative of an HTML body (for the text/plain part of an email)."""
    text = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", "", markup)
    text = re.sub(r"\s+", " ", text)  # whitespace in HTML source means nothing
    text = re.sub(r'(?is)<a\b[^>]*href="([^"]*)"[^>]*>(.*?)</a>', r"\2 (\1)", text)
    text = re.sub(r"(?i)<br\s*/?>|</(p|div|tr|h\d|li|table)>", "\n", text)
    text = re.sub(r"(?i)</t[dh]>", "  ", text)
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    out: list[str] = []
    for line in (" ".join(raw.split()) for raw in text.splitlines()):
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip() + "\n"
