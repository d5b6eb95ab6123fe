"""The DataX job JSON of one task attempt, built at run time (reference §3 DATAX, notes §4.1 and §4.4).

**UI mode** (``customConfig`` 0) builds ``{"job": {"setting", "content": [{reader, writer}]}, "core"}``
as DS's ``DataxTask.buildDataxJsonFile`` does: reader and writer from their builders
(:mod:`.builders`), writer columns from the SELECT list (:mod:`.columns`), ``setting.speed.channel``
1 with the byte/record limits, ``errorLimit`` 0/0, and the same limits in
``core.transport.channel.speed`` so DataX's per-channel check passes (notes §4.1 "Channel logic").

**Custom mode** (``customConfig`` 1) keeps the user's JSON as a template. A reader or writer
``parameter`` holding ``"datasourceId": <id>`` is the *datasource marker*: at every run the marker is
removed and that datasource's ``username``, ``password`` and ``jdbcUrl`` (in every ``connection``
entry) are written in, so a changed password applies without editing the workflow.

In both modes ``${param}`` and ``$[...]`` are substituted as DS does (``convertParameterPlaceholders``),
but *before* any credential is written in: a password that happens to contain ``${x}`` stays as it is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from activities.process import ds_substitute
from storage.datasources import ConnectionInfo

from .builders import BuildError, PasswordFn, ReadSpec, Side, WriteSpec, builder_for
from .columns import ColumnError, select_columns

MARKER = "datasourceId"
CHANNELS = 1  # DS DATAX_CHANNEL_COUNT

Resolve = Callable[[int], ConnectionInfo]
Describe = Callable[[ConnectionInfo, str], list[str]]  # run "SELECT t.* ... WHERE 0 = 1" for column names


@dataclass
class BuiltJob:
    job: dict[str, Any]
    mode: str  # "ui" | "custom"
    datasources: list[ConnectionInfo] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # for the task log; never a secret

    def render(self) -> str:
        return json.dumps(self.job, indent=2, ensure_ascii=False) + "\n"

    def summary(self) -> str:
        parts = []
        for item in self.job.get("job", {}).get("content", []):
            reader, writer = (item.get(k, {}).get("name", "?") for k in ("reader", "writer"))
            parts.append(f"{reader} -> {writer}")
        return ", ".join(parts)


def int_param(params: Mapping[str, Any], key: str, default: int = 0) -> int:
    """A whole-number task param (DS sends numbers or strings); BuildError naming it otherwise."""
    value = params.get(key)
    if value in (None, ""):
        return default
    try:
        return int(str(value).strip())
    except ValueError:
        raise BuildError(f"{key} must be a whole number, got {value!r}") from None


def custom_mode(task_params: Mapping[str, Any]) -> bool:
    value = int_param(task_params, "customConfig", 0)
    if value not in (0, 1):
        raise BuildError(f"customConfig must be 0 (built from datasources) or 1 (custom json), got {value}")
    return value == 1


def _statements(task_params: Mapping[str, Any], key: str) -> list[str]:
    value = task_params.get(key)
    if value in (None, ""):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BuildError(f"{key} must be a list of SQL strings")
    return [v for v in value if v.strip()]


def _config(task_params: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = task_params.get(key) or {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise BuildError(f"{key} must be a JSON object") from None
    if not isinstance(value, dict):
        raise BuildError(f"{key} must be a JSON object")
    return value


def speed_blocks(task_params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """DS's ``setting`` and ``core`` blocks: channel 1, byte/record limits when > 0, errorLimit 0/0."""
    speed: dict[str, Any] = {"channel": CHANNELS}
    for key, name in (("jobSpeedByte", "byte"), ("jobSpeedRecord", "record")):
        value = int_param(task_params, key)
        if value < 0:
            raise BuildError(f"{key} must be 0 (no limit) or more, got {value}")
        if value > 0:
            speed[name] = value
    setting = {"speed": dict(speed), "errorLimit": {"record": 0, "percentage": 0}}
    core = {"transport": {"channel": {"speed": dict(speed)}}}
    return setting, core


def _side(task_params: Mapping[str, Any], type_key: str, id_key: str, config_key: str,
          resolve: Resolve, notes: list[str]) -> tuple[Side, ConnectionInfo | None]:
    declared = str(task_params.get(type_key) or "").strip().upper()
    builder = builder_for(declared, type_key)
    if not builder.jdbc:
        return Side(declared, None, _config(task_params, config_key), id_key), None
    raw = task_params.get(id_key)
    try:
        datasource_id = int(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BuildError(f"{id_key} must be a datasource id, got {raw!r}") from None
    if datasource_id <= 0:
        raise BuildError(f"{id_key} datasource id is required for a {declared} side")
    info = resolve(datasource_id)
    kind = declared
    if builder_for(info.type, type_key) is not builder:
        notes.append(f"{type_key} says {declared}, datasource {info.id} is {info.type}: using {info.type}")
        kind = info.type
    return Side(kind, info, _config(task_params, config_key), id_key), info


def build_ui_job(task_params: Mapping[str, Any], params: Mapping[str, str], timezone: str, resolve: Resolve,
                 password: PasswordFn, describe: Describe | None = None) -> BuiltJob:
    notes: list[str] = []
    source, source_info = _side(task_params, "dsType", "dataSource", "sourceConfig", resolve, notes)
    target, target_info = _side(task_params, "dtType", "dataTarget", "targetConfig", resolve, notes)
    reader_builder = builder_for(source.type, "dsType")
    writer_builder = builder_for(target.type, "dtType")

    def sub(text: str) -> str:
        return ds_substitute(text.replace("\r\n", "\n"), params, timezone)

    sql = sub(str(task_params.get("sql") or ""))
    table = sub(str(task_params.get("targetTable") or "")).strip()
    try:
        if sql.strip():
            fallback = None
            if describe is not None and source_info is not None and source_info.executable:
                info = source_info
                fallback = lambda query: describe(info, query)  # noqa: E731
            columns = select_columns(sql, source.type, fallback)
        else:
            columns = (_names_of(target.config.get("column")) or reader_builder.source_columns(source) or [])
    except ColumnError as e:
        raise BuildError(f"sql: {e}") from None
    if writer_builder.jdbc and not columns:
        raise BuildError("sql is required (the writer's columns come from its SELECT list), or, for a reader "
                         "without SQL, targetConfig.column with the column names")
    pre = [sub(s) for s in _statements(task_params, "preStatements")]
    post = [sub(s) for s in _statements(task_params, "postStatements")]
    reader = reader_builder.reader(source, ReadSpec(sql), password)
    writer = writer_builder.writer(target, WriteSpec(table, columns, pre, post), password)
    setting, core = speed_blocks(task_params)
    job = {"job": {"content": [{"reader": reader, "writer": writer}], "setting": setting}, "core": core}
    datasources = [i for i in (source_info, target_info) if i is not None]
    return BuiltJob(job, "ui", _unique(datasources), notes)


def _names_of(columns: Any) -> list[str] | None:
    if isinstance(columns, list) and columns and all(isinstance(c, (str, dict)) for c in columns):
        names = [c if isinstance(c, str) else str(c.get("name") or "") for c in columns]
        return names if all(names) else None
    return None


def _unique(infos: list[ConnectionInfo]) -> list[ConnectionInfo]:
    seen: dict[int, ConnectionInfo] = {}
    for i in infos:
        seen.setdefault(i.id, i)
    return list(seen.values())


def build_custom_job(task_params: Mapping[str, Any], params: Mapping[str, str], timezone: str, resolve: Resolve,
                     password: PasswordFn) -> BuiltJob:
    template = str(task_params.get("json") or "")
    if not template.strip():
        raise BuildError("json is required in custom mode (customConfig 1)")
    text = ds_substitute(template.replace("\r\n", "\n"), params, timezone)
    try:
        job = json.loads(text)
    except ValueError as e:
        raise BuildError(f"json is not valid JSON after ${{}} substitution: {e}") from None
    content = job.get("job", {}).get("content") if isinstance(job, dict) else None
    if not isinstance(content, list) or not content:
        raise BuildError('json must hold {"job": {"content": [{"reader": ..., "writer": ...}]}} (notes §4.1)')
    notes: list[str] = []
    infos: list[ConnectionInfo] = []
    for i, item in enumerate(content):
        for role in ("reader", "writer"):
            plugin = item.get(role) if isinstance(item, dict) else None
            if not isinstance(plugin, dict) or not plugin.get("name") or not isinstance(plugin.get("parameter"), dict):
                raise BuildError(f"json: job.content[{i}].{role} needs a name and a parameter object")
            parameter = plugin["parameter"]
            if MARKER not in parameter:
                continue
            raw = parameter.pop(MARKER)
            try:
                datasource_id = int(raw)
            except (TypeError, ValueError):
                raise BuildError(f"json: job.content[{i}].{role}.parameter.{MARKER} must be an id, got {raw!r}") \
                    from None
            info = resolve(datasource_id)
            builder_for(info.type, f"json: job.content[{i}].{role} datasource {datasource_id}").fill(
                parameter, info, password, reader=role == "reader")
            notes.append(f"{role} {plugin['name']}: connection of datasource {info.id} ({info.type}) filled in")
            infos.append(info)
    if not infos:
        notes.append(f"custom json names no {MARKER}: its connections are used as written")
    return BuiltJob(job, "custom", _unique(infos), notes)


def build_job(task_params: Mapping[str, Any], params: Mapping[str, str], timezone: str, resolve: Resolve,
              password: PasswordFn, describe: Describe | None = None) -> BuiltJob:
    """The job of one attempt. Raises :class:`BuildError` naming the bad parameter."""
    if custom_mode(task_params):
        return build_custom_job(task_params, params, timezone, resolve, password)
    return build_ui_job(task_params, params, timezone, resolve, password, describe)
