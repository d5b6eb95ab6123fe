"""Parse every accepted DS input format into :class:`WorkflowDefinition` models.

Accepted (reference §1):
* DS export files: 3.1/3.2 (`processDefinition`, `processTaskRelationList`) and 3.3
  (`workflowDefinition`, `workflowTaskRelationList`), as an array or a single object;
* the DS create-API form (fields, with `taskDefinitionJson`, `taskRelationJson`, `globalParams` and
  `locations` as JSON strings), posted as form fields or as JSON;
* pydolphinscheduler's ``Workflow.get_define()`` output (the same keys, already decoded, plus
  ``param`` and ``project``).

Tolerance copies DS's ObjectMapper (§1.2): numbers as strings, enum names or ordinals, ``""`` for a
null enum, ``taskParams`` as an object or a string, unknown keys ignored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, TypeVar

from . import json_limits
from .definition import (
    DataType,
    Direct,
    ExecutionType,
    FailureStrategy,
    Priority,
    Property,
    Relation,
    Schedule,
    TaskDefinition,
    TimeoutStrategy,
    WarningType,
    WorkflowDefinition,
)
from .problems import DefinitionError, Problem, pointer
from .validation import validate

E = TypeVar("E", bound=StrEnum)

# Task-type aliases: 3.3 renamed SUB_PROCESS to SUB_WORKFLOW (§1.3); we keep one name internally.
TYPE_ALIASES = {"SUB_WORKFLOW": "SUB_PROCESS"}


class _Collector:
    """Collects problems while converting; conversions return a default so parsing goes on."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, ptr: str, message: str, task: str | None = None, code: str = "invalid") -> None:
        self.problems.append(Problem(ptr, message, task, code))

    def json_string(self, value: Any, ptr: str, default: Any) -> Any:
        """Decode a field DS sends as a JSON string; accept it already decoded too."""
        if value is None or value == "":
            return default
        if isinstance(value, str):
            try:
                return json_limits.loads(value)
            except json_limits.JsonLimitError as e:
                self.add(ptr, f"in this JSON string: {e.message}", code="malformed-json")
                return default
        return value

    def integer(self, value: Any, ptr: str, default: int, task: str | None = None) -> int:
        n = self._integer(value, ptr, default, task)
        if not json_limits.in_int64(n):  # DS fields are Java ints and longs; the store's are BIGINT
            self.add(ptr, f"{n} is out of range: at most a 64-bit integer", task, "range")
            return default
        return n

    def _integer(self, value: Any, ptr: str, default: int, task: str | None = None) -> int:
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        self.add(ptr, f"expected an integer, got {value!r}", task, "type")
        return default

    def enum(self, cls: type[E], value: Any, ptr: str, default: E | None, task: str | None = None) -> E | None:
        """An enum by name or by ordinal; "" and unknown names become null as in DS."""
        if value is None or value == "":
            return default
        members = list(cls)
        if isinstance(value, int) and not isinstance(value, bool):
            if 0 <= value < len(members):
                return members[value]
            self.add(ptr, f"{cls.__name__} ordinal {value} out of range 0..{len(members) - 1}", task, "type")
            return default
        if isinstance(value, str):
            name = value.strip().upper()
            if name.isdigit():
                return self.enum(cls, int(name), ptr, default, task)
            try:
                return cls(name)
            except ValueError:
                # READ_UNKNOWN_ENUM_VALUES_AS_NULL: DS reads an unknown name as null.
                return default
        self.add(ptr, f"expected a {cls.__name__} name, got {value!r}", task, "type")
        return default

    def yes_no(self, value: Any, ptr: str, default: bool, yes: str = "YES", task: str | None = None) -> bool:
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value == (1 if yes in ("YES", "OPEN") else 0)
        if isinstance(value, str):
            v = value.strip().upper()
            if v in (yes, "1", "TRUE"):
                return True
            if v in ("NO", "CLOSE", "0", "FALSE"):
                return False
        self.add(ptr, f"expected {yes} or its opposite, got {value!r}", task, "type")
        return default

    def properties(self, value: Any, ptr: str, task: str | None = None) -> tuple[Property, ...]:
        value = self.json_string(value, ptr, [])
        if isinstance(value, Mapping):  # pydolphinscheduler `param` dict
            return tuple(Property(prop=str(k), value=None if v is None else str(v)) for k, v in value.items())
        if not isinstance(value, list):
            self.add(ptr, "expected a list of parameters {prop, direct, type, value}", task, "type")
            return ()
        out: list[Property] = []
        for i, item in enumerate(value):
            p = pointer_join(ptr, i)
            if not isinstance(item, Mapping) or not str(item.get("prop") or "").strip():
                self.add(p, "a parameter needs a non-empty 'prop'", task, "required")
                continue
            raw = item.get("value")
            out.append(
                Property(
                    prop=str(item["prop"]).strip(),
                    direct=self.enum(Direct, item.get("direct"), p + "/direct", Direct.IN, task) or Direct.IN,
                    type=self.enum(DataType, item.get("type"), p + "/type", DataType.VARCHAR, task)
                    or DataType.VARCHAR,
                    value=None if raw is None else (raw if isinstance(raw, str) else json.dumps(raw)),
                )
            )
        return tuple(out)


def pointer_join(base: str, *parts: object) -> str:
    return base + pointer(*parts)


def _first(d: Mapping[str, Any], *keys: str) -> tuple[str, Any]:
    for k in keys:
        if k in d:
            return k, d[k]
    return keys[0], None


def _task(c: _Collector, raw: Any, ptr: str) -> TaskDefinition | None:
    if not isinstance(raw, Mapping):
        c.add(ptr, "a task definition must be an object", code="type")
        return None
    name = str(raw.get("name") or "").strip()
    task = name or None
    if not name:
        c.add(ptr + "/name", "a task needs a non-empty name", code="required")
    code = c.integer(raw.get("code"), ptr + "/code", 0, task)
    if code <= 0:
        c.add(ptr + "/code", "a task needs a positive code (DS gen-task-codes)", task, "required")
    task_type = str(raw.get("taskType") or "").strip().upper()
    if not task_type:
        c.add(ptr + "/taskType", "a task needs a taskType", task, "required")
    task_type = TYPE_ALIASES.get(task_type, task_type)
    params = c.json_string(raw.get("taskParams"), ptr + "/taskParams", {})
    if not isinstance(params, Mapping):
        c.add(ptr + "/taskParams", "taskParams must be an object or a JSON string of one", task, "type")
        params = {}
    params = dict(params)
    if "workflowDefinitionCode" in params and "processDefinitionCode" not in params:
        params["processDefinitionCode"] = params["workflowDefinitionCode"]
    local = c.properties(params.get("localParams"), ptr + "/taskParams/localParams", task)
    timeout_enabled = c.yes_no(raw.get("timeoutFlag"), ptr + "/timeoutFlag", False, "OPEN", task)
    return TaskDefinition(
        code=code,
        name=name,
        version=c.integer(raw.get("version"), ptr + "/version", 1, task),
        task_type=task_type,
        task_params=params,
        local_params=local,
        description=str(raw.get("description") or ""),
        enabled=c.yes_no(raw.get("flag"), ptr + "/flag", True, "YES", task),
        task_priority=c.enum(Priority, raw.get("taskPriority"), ptr + "/taskPriority", Priority.MEDIUM, task)
        or Priority.MEDIUM,
        worker_group=str(raw.get("workerGroup") or "default"),
        environment_code=c.integer(raw.get("environmentCode"), ptr + "/environmentCode", -1, task),
        fail_retry_times=max(0, c.integer(raw.get("failRetryTimes"), ptr + "/failRetryTimes", 0, task)),
        fail_retry_interval=max(0, c.integer(raw.get("failRetryInterval"), ptr + "/failRetryInterval", 1, task)),
        timeout_enabled=timeout_enabled,
        timeout_strategy=c.enum(
            TimeoutStrategy, raw.get("timeoutNotifyStrategy"), ptr + "/timeoutNotifyStrategy", None, task
        ),
        timeout=max(0, c.integer(raw.get("timeout"), ptr + "/timeout", 0, task)),
        delay_time=max(0, c.integer(raw.get("delayTime"), ptr + "/delayTime", 0, task)),
        task_group_id=c.integer(raw.get("taskGroupId"), ptr + "/taskGroupId", 0, task),
        task_group_priority=c.integer(raw.get("taskGroupPriority"), ptr + "/taskGroupPriority", 0, task),
        cpu_quota=c.integer(raw.get("cpuQuota"), ptr + "/cpuQuota", -1, task),
        memory_max=c.integer(raw.get("memoryMax"), ptr + "/memoryMax", -1, task),
        is_cache=c.yes_no(raw.get("isCache"), ptr + "/isCache", False, "YES", task),
        task_execute_type=str(raw.get("taskExecuteType") or "BATCH").upper(),
    )


def _relations(c: _Collector, raw: Any, ptr: str) -> list[Relation]:
    if not isinstance(raw, list):
        c.add(ptr, "relations must be a list", code="type")
        return []
    out: list[Relation] = []
    for i, r in enumerate(raw):
        p = pointer_join(ptr, i)
        if not isinstance(r, Mapping):
            c.add(p, "a relation must be an object", code="type")
            continue
        pre = c.integer(r.get("preTaskCode"), p + "/preTaskCode", 0)
        post = c.integer(r.get("postTaskCode"), p + "/postTaskCode", 0)
        if post == 0:
            c.add(p + "/postTaskCode", "postTaskCode must not be 0", code="required")
            continue
        out.append(Relation(pre_task_code=pre, post_task_code=post))
    return out


def _schedule(c: _Collector, raw: Any, ptr: str) -> Schedule | None:
    raw = c.json_string(raw, ptr, None)
    if raw is None:
        return None
    if isinstance(raw, str):  # pydolphinscheduler passes the crontab alone
        return Schedule(crontab=raw)
    if not isinstance(raw, Mapping):
        c.add(ptr, "schedule must be an object", code="type")
        return None
    crontab = str(raw.get("crontab") or "").strip()
    if not crontab:
        c.add(ptr + "/crontab", "a schedule needs a crontab", code="required")
        return None
    _, prio = _first(raw, "processInstancePriority", "workflowInstancePriority")
    return Schedule(
        crontab=crontab,
        timezone_id=str(raw.get("timezoneId") or "UTC"),
        start_time=raw.get("startTime"),
        end_time=raw.get("endTime"),
        failure_strategy=c.enum(FailureStrategy, raw.get("failureStrategy"), ptr + "/failureStrategy",
                                FailureStrategy.CONTINUE) or FailureStrategy.CONTINUE,
        warning_type=c.enum(WarningType, raw.get("warningType"), ptr + "/warningType", WarningType.NONE)
        or WarningType.NONE,
        warning_group_id=c.integer(raw.get("warningGroupId"), ptr + "/warningGroupId", 0),
        instance_priority=c.enum(Priority, prio, ptr + "/processInstancePriority", Priority.MEDIUM)
        or Priority.MEDIUM,
        worker_group=str(raw.get("workerGroup") or "default"),
        tenant_code=str(raw.get("tenantCode") or "default"),
        environment_code=c.integer(raw.get("environmentCode"), ptr + "/environmentCode", -1),
    )


def _build(
    c: _Collector,
    ptr: str,
    meta: Mapping[str, Any],
    meta_ptr: str,
    tasks_raw: Any,
    tasks_ptr: str,
    relations_raw: Any,
    relations_ptr: str,
    schedule_raw: Any,
    schedule_ptr: str,
    source_format: str,
) -> WorkflowDefinition | None:
    before = len(c.problems)
    name = str(meta.get("name") or "").strip()
    if not name:
        c.add(meta_ptr + "/name", "a workflow definition needs a name", code="required")
    if not isinstance(tasks_raw, list) or not tasks_raw:
        c.add(tasks_ptr, "a workflow definition needs a non-empty list of task definitions", code="required")
        tasks_raw = tasks_raw if isinstance(tasks_raw, list) else []
    if not isinstance(relations_raw, list) or not relations_raw:
        c.add(relations_ptr, "a workflow definition needs a non-empty list of task relations", code="required")
        relations_raw = relations_raw if isinstance(relations_raw, list) else []
    tasks = [t for i, raw in enumerate(tasks_raw) if (t := _task(c, raw, pointer_join(tasks_ptr, i)))]
    relations = _relations(c, relations_raw, relations_ptr)
    globals_key, globals_raw = _first(meta, "globalParams", "param")
    definition = WorkflowDefinition(
        code=c.integer(meta.get("code"), meta_ptr + "/code", 0),
        name=name,
        version=max(1, c.integer(meta.get("version"), meta_ptr + "/version", 1)),
        project_code=c.integer(meta.get("projectCode"), meta_ptr + "/projectCode", 0),
        project_name=str(meta.get("projectName") or meta.get("project") or ""),
        description=str(meta.get("description") or ""),
        global_params=c.properties(globals_raw, pointer_join(meta_ptr, globals_key)),
        timeout=max(0, c.integer(meta.get("timeout"), meta_ptr + "/timeout", 0)),
        execution_type=c.enum(ExecutionType, meta.get("executionType"), meta_ptr + "/executionType",
                              ExecutionType.PARALLEL) or ExecutionType.PARALLEL,
        warning_group_id=c.integer(meta.get("warningGroupId"), meta_ptr + "/warningGroupId", 0),
        tasks=tuple(tasks),
        relations=tuple(relations),
        schedule=_schedule(c, schedule_raw, schedule_ptr),
        source_format=source_format,
    )
    if len(c.problems) > before:
        return None
    # Semantic checks need pointers back into the document.
    task_ptrs: dict[int, str] = {}
    for i, raw in enumerate(tasks_raw):
        if isinstance(raw, Mapping):
            task_ptrs.setdefault(c.integer(raw.get("code"), "", 0), pointer_join(tasks_ptr, i))
    c.problems.extend(validate(definition, task_ptrs=task_ptrs, relations_ptr=relations_ptr))
    return definition if len(c.problems) == before else None


def _from_export_item(c: _Collector, item: Any, ptr: str) -> WorkflowDefinition | None:
    if not isinstance(item, Mapping):
        c.add(ptr, "an export element must be an object", code="type")
        return None
    def_key, meta = _first(item, "processDefinition", "workflowDefinition")
    rel_key, rels = _first(item, "processTaskRelationList", "workflowTaskRelationList")
    if not isinstance(meta, Mapping):
        c.add(pointer_join(ptr, def_key), "missing processDefinition/workflowDefinition object", code="required")
        return None
    version = "3.3" if def_key == "workflowDefinition" else "3.1/3.2"
    return _build(
        c, ptr, meta, pointer_join(ptr, def_key),
        item.get("taskDefinitionList"), pointer_join(ptr, "taskDefinitionList"),
        rels, pointer_join(ptr, rel_key),
        item.get("schedule"), pointer_join(ptr, "schedule"),
        f"export {version}",
    )


def _from_form(c: _Collector, form: Mapping[str, Any], ptr: str) -> WorkflowDefinition | None:
    is_pyds = "tasks" in form or "param" in form
    tasks = c.json_string(form.get("taskDefinitionJson"), ptr + "/taskDefinitionJson", None)
    rels = c.json_string(form.get("taskRelationJson"), ptr + "/taskRelationJson", None)
    if tasks is None and rels is None and c.problems:
        return None
    return _build(
        c, ptr, form, ptr,
        tasks, ptr + "/taskDefinitionJson",
        rels, ptr + "/taskRelationJson",
        form.get("schedule") or form.get("scheduleJson"), ptr + "/schedule",
        "pydolphinscheduler" if is_pyds else "create-api",
    )


def detect_format(doc: Any) -> str:
    if isinstance(doc, list):
        return "export"
    if isinstance(doc, Mapping):
        if "processDefinition" in doc or "workflowDefinition" in doc:
            return "export"
        if "taskDefinitionJson" in doc or "taskRelationJson" in doc:
            return "create-api"
    return "unknown"


def parse_document(doc: Any) -> list[WorkflowDefinition]:
    """Parse one submitted document into definitions, or raise :class:`DefinitionError`."""
    c = _Collector()
    kind = detect_format(doc)
    out: list[WorkflowDefinition | None] = []
    if kind == "export" and isinstance(doc, list):
        if not doc:
            c.add("", "the export array is empty", code="required")
        out = [_from_export_item(c, item, pointer(i)) for i, item in enumerate(doc)]
    elif kind == "export":
        out = [_from_export_item(c, doc, "")]
    elif kind == "create-api":
        out = [_from_form(c, doc, "")]
    else:
        c.add("", "not a DolphinScheduler definition: expected a DS export (processDefinition or "
              "workflowDefinition), the create-API form (taskDefinitionJson, taskRelationJson) or "
              "pydolphinscheduler get_define() output", code="format")
    if c.problems:
        raise DefinitionError(c.problems)
    return [d for d in out if d is not None]


def parse_text(text: str | bytes, *, max_bytes: int | None = None) -> list[WorkflowDefinition]:
    """Parse a JSON document given as text, with an optional size limit."""
    size = len(text.encode() if isinstance(text, str) else text)
    if max_bytes is not None and size > max_bytes:
        raise DefinitionError([Problem("", f"payload is {size} bytes, over the limit of {max_bytes}",
                                       code="too-large")])
    try:
        doc = json_limits.loads(text)
    except json_limits.JsonLimitError as e:
        raise DefinitionError([Problem("", e.message, code="malformed-json")]) from None
    return parse_document(doc)


def dump_document(definition: WorkflowDefinition) -> dict[str, Any]:
    """The normalised definition as plain JSON (what `porpoise validate --json` prints)."""
    return definition.model_dump(mode="json")


Loader = Callable[[Any], list[WorkflowDefinition]]
