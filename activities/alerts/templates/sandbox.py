"""The template sandbox: what runs user-written Jinja2, in the render process (or inline).

Templates are user input, so rendering one must never be able to read Porpoise's internals, touch a
file, import a module, hang a worker thread or exhaust its memory. This module holds the defences
that run where the template runs (the separate, killable process around them is
:mod:`.render_pool`):

* **a deadline inside the process**: a trace function that raises after ``timeout`` seconds while a
  template's own code runs, so the usual runaway loop ends with a readable error and the process
  survives (the pool's kill is the backstop for whatever the tracer does not see);
* **Jinja's ImmutableSandboxedEnvironment**: no ``_``-prefixed or internal attributes (no
  ``''.__class__.__mro__``), no mutating methods, a safe ``str.format``; plus our own rules:
  ``range()`` is limited to 10,000 items, ``*`` and ``**`` refuse huge results, ``lipsum`` is gone,
  and access to an unsafe attribute is an error, not a silently empty value;
* **an output cap**: the template is streamed and stopped once it produced ``max_output`` characters.

:func:`serve` is the render process's main loop: one JSON request per line on stdin, one JSON answer
per job on stdout. The process loads this file by its path, so its top-level imports are the
standard library and Jinja only (no ``core``, no settings, no secrets).
"""

from __future__ import annotations

import html
import json
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any

from jinja2 import ChainableUndefined, StrictUndefined, nodes
from jinja2 import meta as jinja_meta
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Limits
MAX_TEMPLATE_CHARS = 32_000  # one subject or body template, as saved
MAX_OUTPUT_CHARS = 200_000  # what one template may produce
RENDER_TIMEOUT = 2.0  # seconds per template
MAX_RANGE = 10_000  # range() items
CHILD_MEMORY_BYTES = 1 << 30  # address space of a render process
POOL_SIZE = 4  # render processes per API / worker process
GRACE = 1.0  # how long past the deadline the parent waits before it kills the child
START_TIMEOUT = 20.0
DICT_METHODS = frozenset({"items", "keys", "values", "get"})


class RenderTimeout(BaseException):
    """The template ran past its deadline. A BaseException, so no ``except Exception`` swallows it."""


class OutputTooLarge(Exception):
    pass


def _bounded_range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise SecurityError(f"range() is limited to {MAX_RANGE} items in alert templates")
    return rng


def format_duration(seconds: Any) -> str:
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
            env.filters["duration"] = format_duration
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
                if owner == "biz" and attr not in DICT_METHODS:
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


def handle(request: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for job in request.get("jobs") or []:
        if request.get("op") == "analyze":
            yield _analyze_job({**job, "timeout": request.get("timeout")})
        else:
            yield _render_job(job, request)


def serve() -> None:
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
        for answer in handle(request):
            try:
                data = json.dumps(answer).encode()
            except (TypeError, ValueError) as e:
                data = json.dumps({"key": answer.get("key"), "ok": False, "error": f"unencodable result: {e}"}).encode()
            out.write(data + b"\n")
            out.flush()
