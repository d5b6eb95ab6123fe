"""DolphinScheduler parameter preparation, substitution and OUT-parameter plumbing (reference §6).

Pure and deterministic: no clock, no I/O, standard library and the model package only, so the
Temporal workflow can call it directly. The DS 3.2 code paths ported here:

* built-ins (``BusinessTimeUtils`` + ``CuringParamsServiceImpl.setBuiltInParamsMap``) -> :func:`builtins`;
* ``CuringParamsServiceImpl.paramParsingPreparation`` -> :func:`prepare`;
* ``ParameterUtils.convertParameterPlaceholders`` (``${}`` then ``$[]``) -> :func:`substitute`;
* ``TaskOutputParameterParser`` -> :func:`parse_set_values`;
* ``AbstractParameters.dealOutParam`` -> :func:`export_out_params` and :func:`task_var_pool`;
* ``initializeTaskInstanceVarPool`` + ``VarPoolUtils.mergeVarPool`` -> :func:`merge_var_pool`;
* ``SwitchTaskUtils.generateContentWithTaskParams`` -> :func:`switch_condition_js`.

Where we deliberately differ from DS (DS throws and fails the task, we keep going), the docstring
says so; those choices are listed in docs/compatibility.md.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from model.definition import DataType, Direct, Property
from model.timeexpr import format_java, replace_time_placeholders

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison

__all__ = [
    "builtins",
    "export_out_params",
    "merge_var_pool",
    "merged_types",
    "parse_set_values",
    "prepare",
    "substitute",
    "switch_condition_js",
    "task_var_pool",
]

# Built-in parameter names (DS DateConstants / TaskConstants).
BIZ_DATE = "system.biz.date"
BIZ_CURDATE = "system.biz.curdate"
DATETIME = "system.datetime"
TASK_DEFINITION_NAME = "system.task.definition.name"
TASK_DEFINITION_CODE = "system.task.definition.code"
TASK_INSTANCE_ID = "system.task.instance.id"
TASK_EXECUTE_PATH = "system.task.execute.path"
WORKFLOW_INSTANCE_ID = "system.workflow.instance.id"
WORKFLOW_DEFINITION_CODE = "system.workflow.definition.code"
WORKFLOW_DEFINITION_NAME = "system.workflow.definition.name"
PROJECT_CODE = "system.project.code"
PROJECT_NAME = "system.project.name"

_PREFIX = "${"
_SUFFIX = "}"
_SIMPLE_PREFIX = "{"  # Spring: a '{' inside a placeholder opens a nested level


# --------------------------------------------------------------------------------------------------
# Built-ins and preparation
# --------------------------------------------------------------------------------------------------


def builtins(
    run_time: datetime,
    *,
    workflow_instance_id: str,
    definition_code: int,
    definition_name: str,
    project_code: int,
    project_name: str = "",
    task_code: int | None = None,
    task_name: str | None = None,
    task_instance_id: str | None = None,
    execute_path: str | None = None,
) -> dict[str, str]:
    """The ``system.*`` built-ins of reference §6.3.

    ``run_time`` is the schedule/complement time, or "now" taken once (outside the workflow's
    deterministic code) for manual runs, already in the schedule's timezone: the dates are that
    wall clock. ``system.biz.date`` is the day before (a calendar day, as ``Calendar.add`` does).
    Task-level entries are left out when not given, like DS leaves out a blank execute path.
    """
    result = {
        BIZ_DATE: format_java(run_time - timedelta(days=1), "yyyyMMdd"),
        BIZ_CURDATE: format_java(run_time, "yyyyMMdd"),
        DATETIME: format_java(run_time, "yyyyMMddHHmmss"),
        WORKFLOW_INSTANCE_ID: str(workflow_instance_id),
        WORKFLOW_DEFINITION_CODE: str(definition_code),
        WORKFLOW_DEFINITION_NAME: definition_name,
        PROJECT_CODE: str(project_code),
        PROJECT_NAME: project_name,
    }
    if task_code is not None:
        result[TASK_DEFINITION_CODE] = str(task_code)
    if task_name is not None:
        result[TASK_DEFINITION_NAME] = task_name
    if task_instance_id is not None:
        result[TASK_INSTANCE_ID] = str(task_instance_id)
    if execute_path:
        result[TASK_EXECUTE_PATH] = execute_path
    return result


def _input_locals(local_params: Iterable[Property]) -> list[Property]:
    """``getInputLocalParametersMap``: only IN local params are inputs; OUT ones are outputs."""
    return [p for p in local_params if p.direct is Direct.IN]


def prepare(
    *,
    builtins: Mapping[str, str],
    project: Sequence[Property] = (),
    global_params: Sequence[Property] = (),
    var_pool: Sequence[Property] = (),
    local_params: Sequence[Property] = (),
    start_params: Mapping[str, str] | None = None,
    base_time: datetime,
) -> dict[str, str]:
    """The parameter map a task runs with (reference §6.2).

    Layers, low to high: built-ins < project < global < upstream varPool < local IN < startup.
    Within a layer a later entry of the same name wins. Then every value containing ``$`` is
    resolved: ``${name}`` against the merged map (chains follow, since a resolved value is itself
    resolved), then ``$[...]`` against ``base_time``. Unknown ``${x}`` stays as written.

    Differences from DS, both about inputs DS rejects at run time: a reference cycle (``a=${b}``,
    ``b=${a}``) makes DS throw; we leave the placeholder that starts the cycle as written. A
    ``null`` value counts as ``""``. Finally ``system.datetime`` is forced back to the built-in
    value, as DS does when a schedule time exists, so a startup parameter cannot move it.
    """
    merged: dict[str, str] = dict(builtins)
    for layer in (project, global_params, var_pool, _input_locals(local_params)):
        for p in layer:
            merged[p.prop] = p.value or ""
    merged.update(start_params or {})

    resolved = {name: substitute(value, merged, base_time) if "$" in value else value for name, value in merged.items()}
    if DATETIME in builtins:
        resolved[DATETIME] = builtins[DATETIME]
    return resolved


def merged_types(
    *,
    project: Sequence[Property] = (),
    global_params: Sequence[Property] = (),
    var_pool: Sequence[Property] = (),
    local_params: Sequence[Property] = (),
    start_params: Mapping[str, str] | None = None,
) -> dict[str, DataType]:
    """The ``type`` of each parameter that :func:`prepare` would pick, for the SWITCH rules.

    Same precedence as :func:`prepare`. Startup parameters are VARCHAR (DS 3.2 turns the
    ``startParams`` map into VARCHAR properties), so a startup value overriding a typed global makes
    it VARCHAR; built-ins are VARCHAR too and need no entry (a missing type means VARCHAR).
    """
    types: dict[str, DataType] = {}
    for layer in (project, global_params, var_pool, _input_locals(local_params)):
        for p in layer:
            types[p.prop] = p.type
    for name in start_params or {}:
        types[name] = DataType.VARCHAR
    return types


# --------------------------------------------------------------------------------------------------
# ${...} substitution (Spring PropertyPlaceholderHelper, as vendored by DS)
# --------------------------------------------------------------------------------------------------


def substitute(text: str, params: Mapping[str, str], base_time: datetime | None = None) -> str:
    """Replace ``${name}`` from ``params``, then ``$[...]`` if ``base_time`` is given (reference §6.3).

    ``${}`` follows Spring's ``PropertyPlaceholderHelper`` in non-strict mode, as DS uses it: no
    ``:default`` syntax, a placeholder inside a name is resolved first (``${a_${b}}``), a resolved
    value is itself resolved, and unknown names are left untouched. A cycle is left untouched too
    (Spring would throw). ``$[...]`` is evaluated after all ``${}``, so a parameter may hold a time
    expression.
    """
    out = _parse_placeholders(text, params.get, set())
    if base_time is not None:
        out = replace_time_placeholders(out, base_time)
    return out


def _find_placeholder_end(buf: str, start: int) -> int:
    index = start + len(_PREFIX)
    nested = 0
    while index < len(buf):
        if buf.startswith(_SUFFIX, index):
            if nested > 0:
                nested -= 1
                index += len(_SUFFIX)
            else:
                return index
        elif buf.startswith(_SIMPLE_PREFIX, index):
            nested += 1
            index += len(_SIMPLE_PREFIX)
        else:
            index += 1
    return -1


class _Cycle(Exception):
    """A placeholder name came round again while resolving itself."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _parse_placeholders(value: str, resolve: Callable[[str], str | None], visiting: set[str]) -> str:
    """Spring ``parseStringValue``. On a cycle Spring throws; we unwind to the placeholder that
    started the cycle and leave that one as written, so each value keeps its own text."""
    result = value
    start = result.find(_PREFIX)
    while start != -1:
        end = _find_placeholder_end(result, start)
        if end == -1:
            break
        original = result[start + len(_PREFIX) : end]
        if original in visiting:
            raise _Cycle(original)
        visiting.add(original)
        try:
            name = _parse_placeholders(original, resolve, visiting)
            replacement = resolve(name)
            if replacement is not None:
                replacement = _parse_placeholders(replacement, resolve, visiting)
        except _Cycle as cycle:
            if cycle.name != original:
                raise
            replacement = None
        finally:
            visiting.discard(original)
        if replacement is not None:
            result = result[:start] + replacement + result[end + len(_SUFFIX) :]
            start = result.find(_PREFIX, start + len(replacement))
        else:
            start = result.find(_PREFIX, end + len(_SUFFIX))
    return result


# --------------------------------------------------------------------------------------------------
# OUT parameters and the varPool (reference §6.4)
# --------------------------------------------------------------------------------------------------

_SET_VALUE_STARTS = ("${setValue(", "#{setValue(")
_SET_VALUE_END = ")}"
_MAX_ROWS = 1024
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def parse_set_values(text: str) -> dict[str, str]:
    """Collect ``${setValue(key=value)}`` / ``#{setValue(key=value)}`` from task output.

    Line by line as DS's ``TaskOutputParameterParser`` reads the log: an expression may continue
    over following lines (joined with ``\\n``) until the first ``)}``; one that is still open
    after 1024 lines is dropped. The text is split at the first ``=`` and neither side is trimmed;
    no ``=`` means no value. Later settings of a key win. A line is searched for ``${setValue(``
    first and only then for ``#{setValue(``, and after an expression closes the rest of its line is
    searched again.
    """
    outputs: dict[str, str] = {}
    pending: list[str] | None = None

    for raw in _LINE_BREAK.split(text):
        line: str | None = raw
        while line is not None:
            if pending is None:
                begin = line.find(_SET_VALUE_STARTS[0])
                if begin == -1:
                    begin = line.find(_SET_VALUE_STARTS[1])
                if begin == -1:
                    break
                pending = []
                line = line[begin:]
            if len(pending) > _MAX_ROWS:
                pending = None  # too long: DS warns, drops it, and skips this line
                break
            end = line.find(_SET_VALUE_END)
            if end == -1:
                pending.append(line)
                break
            pending.append(line[: end + len(_SET_VALUE_END)])
            pair = _split_set_value("\n".join(pending))
            if pair is not None:
                outputs[pair[0]] = pair[1]
            pending = None
            rest = line[end + len(_SET_VALUE_END) :]
            line = rest or None
    return outputs


def _split_set_value(expression: str) -> tuple[str, str] | None:
    if not expression.startswith(_SET_VALUE_STARTS) or not expression.endswith(_SET_VALUE_END):
        return None
    body = expression[len(_SET_VALUE_STARTS[0]) : -len(_SET_VALUE_END)]
    if "=" not in body:
        return None
    key, value = body.split("=", 1)
    return key, value


def export_out_params(declared: Sequence[Property], produced: Mapping[str, str]) -> list[Property]:
    """The task's OUT parameters with the values it produced (``dealOutParam``).

    Only names declared OUT in ``localParams`` are exported; other produced keys are dropped. A
    declared OUT that was never set is still exported with its declared default (reference §6.4).
    """
    exported: list[Property] = []
    for p in declared:
        if p.direct is not Direct.OUT:
            continue
        value = produced.get(p.prop)
        exported.append(p if value is None else p.model_copy(update={"value": value}))
    return exported


def task_var_pool(
    inherited: Sequence[Property], declared: Sequence[Property], produced: Mapping[str, str]
) -> list[Property]:
    """The varPool a finished task hands downstream: what it received plus its own OUTs, later wins.

    DS ``dealOutParam``: a task without declared OUT params passes its varPool on unchanged, so
    upstream values flow transitively along a path; otherwise the two lists are merged as in
    :func:`merge_var_pool` (OUT entries only, the task's own values winning).
    """
    outs = export_out_params(declared, produced)
    if not outs:
        return list(inherited)
    return _merge_out([inherited, outs])


def merge_var_pool(
    predecessors: Sequence[tuple[SupportsRichComparison, Sequence[Property]]],
) -> list[Property]:
    """The varPool a task receives from its direct predecessors, DS 3.2 rule (reference §6.4).

    Predecessors are sorted by end time ascending (stable, so ties keep the given order) and merged
    with later-wins, keeping only OUT entries. The **latest-finishing** predecessor therefore wins
    a duplicate key, the opposite of DS's documentation and of 3.1. Entries stay OUT so they keep
    flowing downstream. DS returns a single predecessor's varPool unfiltered; we filter it too.
    Order of the result: first appearance of each name.
    """
    ordered = sorted(predecessors, key=lambda pair: pair[0])
    return _merge_out([pool for _, pool in ordered])


def _merge_out(pools: Iterable[Sequence[Property]]) -> list[Property]:
    merged: dict[str, Property] = {}
    for pool in pools:
        for p in pool:
            if p.direct is Direct.OUT:
                merged[p.prop] = p
    return list(merged.values())


# --------------------------------------------------------------------------------------------------
# SWITCH condition pre-processing (reference §4.8)
# --------------------------------------------------------------------------------------------------

_SWITCH_PLACEHOLDER = re.compile(r"""['"]*\$\{(.*?)\}['"]*""")
_NUMERIC = {DataType.INTEGER, DataType.LONG, DataType.FLOAT, DataType.DOUBLE}
_JAVA_FLOAT = re.compile(r"[+-]?(NaN|Infinity|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFdD]?)")
_JAVA_INT = re.compile(r"[+-]?[0-9]+")


def switch_condition_js(
    condition: str,
    params: Mapping[str, str],
    types: Mapping[str, DataType],
    *,
    strip_quotes: bool = False,
) -> str:
    """Turn a SWITCH condition into the JavaScript DS evaluates (``generateContentWithTaskParams``).

    Every ``'`` becomes ``"`` first. Then each known ``${name}`` is replaced everywhere: INTEGER,
    LONG, FLOAT, DOUBLE and BOOLEAN values (by ``types``; missing = VARCHAR) raw, as Java prints the
    parsed value (``Double`` ``1`` -> ``1.0``, ``Boolean`` ``yes`` -> ``false``), anything else
    wrapped in ``"``. An unknown ``${x}`` stays literal, which makes the JS fail, i.e. "not matched".

    Quotes around the placeholder: DS's regex matches ``['"]*`` on both sides, but it replaces only
    the ``${name}`` text, so the quotes stay: ``'${s}' == 'A'`` with VARCHAR ``s=A`` becomes
    ``""A"" == "A"`` (a JS syntax error, not matched) and ``'${flag}' == 'true'`` with BOOLEAN
    ``true`` becomes ``"true" == "true"`` (matched). That is the default here. ``strip_quotes=True``
    replaces the whole match instead, quotes included, as reference §4.8 describes it.

    Raises :class:`ValueError` when a typed value does not parse (Java ``NumberFormatException``);
    the caller treats that condition as not matched, as DS does.
    """
    content = condition.replace("'", '"')
    original = content
    for m in _SWITCH_PLACEHOLDER.finditer(original):
        name = m.group(1)
        if name not in params:
            continue
        rendered = _js_value(params[name], types.get(name, DataType.VARCHAR))
        if strip_quotes:
            content = content.replace(m.group(0), rendered, 1)
        else:
            content = content.replace(_PREFIX + name + _SUFFIX, rendered)
    return content


def _js_value(value: str, data_type: DataType) -> str:
    """``ParameterUtils.getParameterValue`` printed with Java's ``toString``."""
    if data_type is DataType.BOOLEAN:
        return "true" if value.lower() == "true" else "false"
    if data_type in (DataType.INTEGER, DataType.LONG):
        if not _JAVA_INT.fullmatch(value):
            raise ValueError(f"not a Java {data_type.value.lower()}: {value!r}")
        number = int(value)
        bits = 31 if data_type is DataType.INTEGER else 63
        if not -(2**bits) <= number < 2**bits:
            raise ValueError(f"out of range for a Java {data_type.value.lower()}: {value!r}")
        return str(number)
    if data_type in _NUMERIC:
        return _java_float_string(value, single=data_type is DataType.FLOAT)
    return '"' + value + '"'


def _java_float_string(value: str, *, single: bool) -> str:
    """``Float.valueOf(v).toString()`` / ``Double.valueOf(v).toString()``, without hex literals."""
    text = value.strip()
    if not _JAVA_FLOAT.fullmatch(text):
        raise ValueError(f"not a Java floating-point number: {value!r}")
    number = float(text.rstrip("fFdD"))
    if single:
        number = _to_float32(number)
    if number != number:
        return "NaN"
    if number in (float("inf"), float("-inf")):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "-0.0" if str(number).startswith("-") else "0.0"
    digits, exponent = _shortest_digits(number, single)
    sign = "-" if number < 0 else ""
    if 1e-3 <= abs(number) < 1e7:
        point = exponent + 1  # digits before the decimal point
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        if point >= len(digits):
            return f"{sign}{digits}{'0' * (point - len(digits))}.0"
        return f"{sign}{digits[:point]}.{digits[point:]}"
    mantissa = digits[0] + "." + (digits[1:] or "0")
    return f"{sign}{mantissa}E{exponent}"


def _to_float32(number: float) -> float:
    try:
        result: float = struct.unpack("f", struct.pack("f", number))[0]
    except OverflowError:
        return float("inf") if number > 0 else float("-inf")
    return result


def _shortest_digits(number: float, single: bool) -> tuple[str, int]:
    """Shortest decimal digits that read back as ``number`` (as float32 when ``single``)."""
    for precision in range(1, 18):
        text = f"{abs(number):.{precision - 1}e}"
        back = float(text)
        if (_to_float32(back) if single else back) == abs(number):
            break
    mantissa, exp = text.split("e")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    return digits, int(exp)
