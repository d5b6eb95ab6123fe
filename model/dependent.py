"""DEPENDENT task logic, DS 3.2 (reference §3 DEPENDENT, §4.10): pure and deterministic.

Ported from DS:

* ``DependentUtils.getDateIntervalList`` + ``DependentDateUtils`` + the ``DateUtils`` helpers they
  use -> :func:`date_intervals`;
* ``DependentUtils.getDependResultForRelation`` -> :func:`combine`;
* ``DependentExecute.finish`` + ``DependentAsyncTaskExecuteFunction.isAllDependentTaskFinished`` /
  ``calculateDependResult`` -> :func:`decide`;
* ``DependentExecute.dependResultByWorkflowInstance`` / ``...ByAllTaskOfWorkflowInstance`` /
  ``...BySingleTaskInstance`` / ``getDependResultOfTask`` -> :func:`instance_result`;
* ``DependentUtils.addTaskVarPool`` (earlier-finished wins) -> :func:`merge_passed_var_pool`;
* ``DependentParameters`` JSON, tolerant of the shapes DS and its UI really send -> :func:`parse_dependence`.

No clock and no I/O: the workflow calls :func:`decide` and :func:`parse_dependence` directly, the
``check_dependent`` activity (:mod:`activities.dependent`) calls :func:`date_intervals` and
:func:`instance_result`. That activity's request and response are :mod:`core.contracts.dependent`;
:class:`ItemCheck`, one item's outcome, is domain data and stays here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from model.definition import Direct, Property
from model.states import TaskState, WorkflowState

__all__ = [
    "ALL_TASKS",
    "DATE_VALUES",
    "WORKFLOW",
    "DependGroup",
    "DependItem",
    "DependResult",
    "Dependence",
    "FailurePolicy",
    "ItemCheck",
    "Relation",
    "combine",
    "date_intervals",
    "decide",
    "group_result",
    "has_task_instance",
    "instance_result",
    "merge_passed_var_pool",
    "parse_dependence",
    "passed_var_pool",
]

WORKFLOW = 0  # depTaskCode 0: the instance's own final state (Constants.DEPENDENT_WORKFLOW_CODE)
ALL_TASKS = -1  # depTaskCode -1: every enabled task succeeded (Constants.DEPENDENT_ALL_TASK_CODE, 3.2+)
DEFAULT_CHECK_INTERVAL = 10  # seconds (DependentAsyncTaskExecuteFunction.DEFAULT_STATE_CHECK_INTERVAL)


class DependResult(StrEnum):
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    WAITING = "WAITING"


class Relation(StrEnum):
    AND = "AND"
    OR = "OR"


class FailurePolicy(StrEnum):
    FAILURE = "DEPENDENT_FAILURE_FAILURE"  # a FAILED result ends the task at once
    WAITING = "DEPENDENT_FAILURE_WAITING"  # keep polling until failureWaitingTime past the business date


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class DependItem(_Frozen):
    project_code: int = 0
    definition_code: int
    dep_task_code: int = WORKFLOW
    cycle: str = "day"
    date_value: str = "today"
    parameter_passing: bool = False

    @property
    def key(self) -> str:
        """DS ``DependentItem.getKey()``: results are cached per key."""
        return f"{self.definition_code}-{self.dep_task_code}-{self.cycle}-{self.date_value}"


class DependGroup(_Frozen):
    relation: Relation = Relation.AND
    items: tuple[DependItem, ...] = ()


class Dependence(_Frozen):
    relation: Relation = Relation.AND
    check_interval: int = DEFAULT_CHECK_INTERVAL  # seconds
    failure_policy: FailurePolicy = FailurePolicy.FAILURE
    failure_waiting_time: int | None = None  # minutes; None with the WAITING policy fails at once, as DS
    groups: tuple[DependGroup, ...] = ()

    @property
    def items(self) -> list[DependItem]:
        """Every distinct item (by key), in order of appearance."""
        seen: dict[str, DependItem] = {}
        for g in self.groups:
            for i in g.items:
                seen.setdefault(i.key, i)
        return list(seen.values())


# -- one item's check (the check_dependent activity's answer, core.contracts.dependent) -----------


class ItemCheck(BaseModel):
    key: str
    result: DependResult
    instance_id: str | None = None  # the matched instance of the last interval checked
    end_time: datetime | None = None  # when the matched instance (or task) finished, for varPool order
    var_pool: list[Property] = Field(default_factory=list)  # OUT entries, only with parameterPassing
    detail: str = ""


# -- parsing ---------------------------------------------------------------------------------------


def _int(value: Any, default: int | None) -> int | None:
    """DS numbers, which the UI and older exports send as strings ("10", "-1", "", null)."""
    if value is None or isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    text = str(value).strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        try:
            return int(float(text))
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _relation(value: Any) -> Relation:
    text = str(value or "AND").strip().upper()
    if text not in ("AND", "OR"):
        raise ValueError(f"relation must be AND or OR, got {value!r}")
    return Relation(text)


def _policy(value: Any) -> FailurePolicy:
    text = str(value or FailurePolicy.FAILURE.value).strip().upper()
    if text in ("WAITING", FailurePolicy.WAITING.value):
        return FailurePolicy.WAITING
    if text in ("FAILURE", FailurePolicy.FAILURE.value):
        return FailurePolicy.FAILURE
    raise ValueError(f"failurePolicy must be DEPENDENT_FAILURE_FAILURE or DEPENDENT_FAILURE_WAITING, got {value!r}")


def _item(raw: Mapping[str, Any], where: str) -> DependItem:
    code = _int(raw.get("definitionCode", raw.get("processDefinitionCode", raw.get("workflowDefinitionCode"))), 0)
    if not code or code <= 0:
        raise ValueError(f"{where}: definitionCode is required")
    return DependItem(
        project_code=_int(raw.get("projectCode"), 0) or 0,
        definition_code=code,
        dep_task_code=_int(raw.get("depTaskCode"), WORKFLOW) or 0,
        cycle=str(raw.get("cycle") or "day").strip(),
        date_value=str(raw.get("dateValue") or "").strip(),
        parameter_passing=_bool(raw.get("parameterPassing", False)),
    )


def parse_dependence(task_params: Mapping[str, Any]) -> Dependence:
    """The DEPENDENT ``taskParams``: ``{"dependence": {...}}`` (3.2 export), or the same keys at the
    top level (3.2.0's flattened ``DependentParameters``). Raises ValueError naming what is wrong.

    Tolerated DS quirks: numbers as strings, lower-case relations, a missing relation (AND), missing or
    non-positive ``checkInterval`` (10 s, as DS's default; 0 would poll in a hot loop), ``dependItemList``
    entries that are not objects (skipped). ``failureWaitingTime`` stays None when absent: DS then
    fails at once even under DEPENDENT_FAILURE_WAITING.
    """
    dep = task_params.get("dependence")
    if isinstance(dep, str):
        try:  # the UI sometimes stores nested JSON as a string
            dep = json.loads(dep) if dep.strip() else None
        except ValueError as e:
            raise ValueError(f"dependence is not JSON: {e}") from None
    if not isinstance(dep, Mapping):
        dep = task_params if "dependTaskList" in task_params else None
    if dep is None:
        raise ValueError("dependence is required")
    groups = []
    for gi, raw_group in enumerate(dep.get("dependTaskList") or []):
        if not isinstance(raw_group, Mapping):
            continue
        items = tuple(
            _item(raw, f"dependTaskList[{gi}].dependItemList[{ii}]")
            for ii, raw in enumerate(raw_group.get("dependItemList") or [])
            if isinstance(raw, Mapping)
        )
        groups.append(DependGroup(relation=_relation(raw_group.get("relation")), items=items))
    interval = _int(dep.get("checkInterval"), DEFAULT_CHECK_INTERVAL)
    waiting = _int(dep.get("failureWaitingTime"), None)
    return Dependence(
        relation=_relation(dep.get("relation")),
        check_interval=interval if interval and interval > 0 else DEFAULT_CHECK_INTERVAL,
        failure_policy=_policy(dep.get("failurePolicy")),
        failure_waiting_time=waiting,
        groups=tuple(groups),
    )


# -- date intervals (DependentDateUtils) -----------------------------------------------------------
#
# DS works on java.util.Calendar in the master's timezone: wall-clock field arithmetic, weeks start on
# Monday, an interval is [start of hour/day, end of hour/day] with the end at xx:59:59.999 (inclusive).
# Aware Python datetimes with one tzinfo do the same wall-clock arithmetic; a wall time in a DST gap
# resolves to the same instant as Java's lenient Calendar (the offset before the transition).


def _start_of_hour(d: datetime) -> datetime:
    return d.replace(minute=0, second=0, microsecond=0)


def _end_of_hour(d: datetime) -> datetime:
    return d.replace(minute=59, second=59, microsecond=999_000)


def _start_of_day(d: datetime) -> datetime:
    return d.replace(hour=0, minute=0, second=0, microsecond=0)


def _end_of_day(d: datetime) -> datetime:
    return d.replace(hour=23, minute=59, second=59, microsecond=999_000)


def _some_hour(d: datetime, offset: int) -> datetime:
    """``DateUtils.getSomeHourOfDay``: HOUR_OF_DAY + offset, minutes and below cleared."""
    return _start_of_hour(d + timedelta(hours=offset))


def _some_day(d: datetime, days: int) -> datetime:
    return d + timedelta(days=days)


def _monday(d: datetime) -> datetime:
    """``DateUtils.getMonday``: Monday of d's week, weeks running Monday..Sunday; time kept."""
    return d - timedelta(days=d.weekday())


def _first_day_of_month(d: datetime) -> datetime:
    return d.replace(day=1)


Interval = tuple[datetime, datetime]


def _hour(d: datetime) -> Interval:
    return _start_of_hour(d), _end_of_hour(d)


def _day(d: datetime) -> Interval:
    return _start_of_day(d), _end_of_day(d)


def _last_hours(b: datetime, n: int) -> list[Interval]:
    if n == 0:
        return [_hour(_some_hour(b, 0))]
    return [_hour(_some_hour(b, -i)) for i in range(n, 0, -1)]


def _last_24_hours(b: datetime) -> list[Interval]:
    """``getSpecialLastDayInterval``: yesterday 01:00 through today 00:59:59.999 whatever the hour of
    b, not a rolling 24 hours (DS's own comment: "yesterday 1:00 - today 1:00")."""
    start = b.hour + 23
    return [_hour(_some_hour(b, -i)) for i in range(start, start - 24, -1)]


def _last_days(b: datetime, n: int) -> list[Interval]:
    return [_day(_some_day(b, -i)) for i in range(n, 0, -1)]


def _between(first: datetime, last: datetime) -> list[Interval]:
    """``getDateIntervalListBetweenTwoDates``: one interval per day while first <= last."""
    out = []
    while not first > last:
        out.append(_day(first))
        first = _some_day(first, 1)
    return out


def _this_month(b: datetime) -> list[Interval]:
    return _between(_first_day_of_month(b), b)


def _last_month(b: datetime) -> list[Interval]:
    last_day = _some_day(_first_day_of_month(b), -1)
    return _between(_first_day_of_month(last_day), last_day)


def _needed_month(b: datetime, begin: bool, offset_days: int) -> list[Interval]:
    """``getNeededMonthBeginInterval(b, isBeginDay, neededMonth)``. Note DS adds ``neededMonth`` as
    *days* to the first day of this month: -1 gives last month's last day, but 0 gives the first day of
    this month, so DS's ``thisMonthEnd`` is the 1st of the month, not its last day. Kept as DS does."""
    last_day = _some_day(_first_day_of_month(b), offset_days)
    first_day = _first_day_of_month(last_day)
    day = first_day if begin else last_day
    return _between(day, day)


def _this_week(b: datetime) -> list[Interval]:
    return _between(_monday(b), b)


def _last_week_monday(b: datetime) -> tuple[datetime, datetime]:
    sunday = _some_day(_monday(b), -1)
    return _monday(sunday), sunday


def _last_week(b: datetime) -> list[Interval]:
    monday, sunday = _last_week_monday(b)
    return _between(monday, sunday)


def _last_week_day(b: datetime, day_of_week: int) -> list[Interval]:
    monday, _ = _last_week_monday(b)
    day = _some_day(monday, day_of_week - 1)
    return _between(day, day)


_DATE_VALUES: dict[str, Any] = {
    "currentHour": lambda b: _last_hours(b, 0),
    "last1Hour": lambda b: _last_hours(b, 1),
    "last2Hours": lambda b: _last_hours(b, 2),
    "last3Hours": lambda b: _last_hours(b, 3),
    "last24Hours": _last_24_hours,
    "today": lambda b: [_day(b)],
    "last1Days": lambda b: _last_days(b, 1),
    "last2Days": lambda b: _last_days(b, 2),
    "last3Days": lambda b: _last_days(b, 3),
    "last7Days": lambda b: _last_days(b, 7),
    "thisWeek": _this_week,
    "lastWeek": _last_week,
    "lastMonday": lambda b: _last_week_day(b, 1),
    "lastTuesday": lambda b: _last_week_day(b, 2),
    "lastWednesday": lambda b: _last_week_day(b, 3),
    "lastThursday": lambda b: _last_week_day(b, 4),
    "lastFriday": lambda b: _last_week_day(b, 5),
    "lastSaturday": lambda b: _last_week_day(b, 6),
    "lastSunday": lambda b: _last_week_day(b, 7),
    "thisMonth": _this_month,
    "thisMonthBegin": lambda b: _needed_month(b, True, 0),
    "thisMonthEnd": lambda b: _needed_month(b, False, 0),
    "lastMonth": _last_month,
    "lastMonthBegin": lambda b: _needed_month(b, True, -1),
    "lastMonthEnd": lambda b: _needed_month(b, False, -1),
}
DATE_VALUES = frozenset(_DATE_VALUES)


def date_intervals(business_date: datetime, date_value: str) -> list[Interval]:
    """``DependentUtils.getDateIntervalList``: the [start, end] intervals (both inclusive, end at
    .999 ms), oldest first, in ``business_date``'s timezone. ``cycle`` plays no part, as in DS. An
    unknown dateValue gives no interval, which DS then judges FAILED."""
    if business_date.tzinfo is None:
        raise ValueError("the business date must be timezone-aware")
    fn = _DATE_VALUES.get(date_value)
    return list(fn(business_date)) if fn else []


# -- combining and finishing -----------------------------------------------------------------------


def combine(relation: Relation | str, results: Iterable[DependResult]) -> DependResult:
    """``DependentUtils.getDependResultForRelation``, exactly as DS 3.2 codes it.

    AND: WAITING if any item waits, else FAILED if any failed, else SUCCESS. DS tests FAILED first and
    then lets WAITING overwrite it, so a group with one failed and one pending item keeps waiting
    (reference §4.7 lists FAILED first; the code says otherwise). OR: SUCCESS if any succeeded, else
    WAITING if any waits, else FAILED. An empty AND is SUCCESS, an empty OR is FAILED.
    """
    rs = list(results)
    if str(relation).upper() == "OR":
        if DependResult.SUCCESS in rs:
            return DependResult.SUCCESS
        return DependResult.WAITING if DependResult.WAITING in rs else DependResult.FAILED
    if DependResult.WAITING in rs:
        return DependResult.WAITING
    return DependResult.FAILED if DependResult.FAILED in rs else DependResult.SUCCESS


def group_result(group: DependGroup, results: Mapping[str, DependResult]) -> DependResult:
    """One dependTaskList entry; an item without a result yet counts as WAITING."""
    return combine(group.relation, (results.get(i.key, DependResult.WAITING) for i in group.items))


def decide(dependence: Dependence, results: Mapping[str, DependResult], elapsed: timedelta,
           minute: timedelta = timedelta(minutes=1)) -> DependResult | None:
    """The task's outcome, or None to poll again (``isAllDependentTaskFinished`` then
    ``calculateDependResult``).

    Every group must be finished before the outer relation is applied, even under OR: a group is
    finished when it is not WAITING, and a FAILED group under DEPENDENT_FAILURE_WAITING only once more
    than ``failureWaitingTime`` minutes have passed since the business date (``elapsed``; DS measures
    from the schedule time, or from the task's start for a manual run). ``minute`` is the length of a
    DS minute (shortened in tests).
    """
    outcomes = []
    for g in dependence.groups:
        r = group_result(g, results)
        if r is DependResult.WAITING:
            return None
        if (r is DependResult.FAILED and dependence.failure_policy is FailurePolicy.WAITING
                and dependence.failure_waiting_time is not None
                and not elapsed > minute * dependence.failure_waiting_time):
            return None
        outcomes.append(r)
    return combine(dependence.relation, outcomes)


# -- judging one upstream instance -----------------------------------------------------------------


class NodeLike(Protocol):
    @property
    def code(self) -> int: ...
    @property
    def state(self) -> TaskState: ...
    @property
    def attempts(self) -> int: ...
    @property
    def max_attempts(self) -> int: ...
    @property
    def end_time(self) -> datetime | None: ...
    @property
    def var_pool(self) -> list[Property]: ...


_RUNNING_TASK = {TaskState.SUBMITTED_SUCCESS, TaskState.DELAY_EXECUTION, TaskState.DISPATCH,
                 TaskState.RUNNING_EXECUTION}


def _outs(pool: Iterable[Property]) -> list[Property]:
    return [p for p in pool if p.direct is Direct.OUT]


def has_task_instance(dep_task_code: int, nodes: Sequence[NodeLike]) -> bool:
    """Whether an instance is a candidate for a task-level item. DS 3.2 only considers instances that
    have a task instance of that task (an inner join on t_ds_task_instance), so an instance where the
    task was not reached, skipped or not in startNodeList is passed over for an older one. Forbidden
    tasks never get a task instance; they are kept as candidates so that they count as success
    (§4.6), otherwise DS's own "forbidden counts as success" branch could never be reached. A code
    that is not a node of the instance is kept too, and judged FAILED. 0 and -1 match every instance."""
    if dep_task_code in (WORKFLOW, ALL_TASKS):
        return True
    node = next((n for n in nodes if n.code == dep_task_code), None)
    return node is None or node.state is TaskState.FORBIDDEN or node.state.has_instance


def instance_result(
    dep_task_code: int,
    *,
    state: WorkflowState,
    finished: bool,
    nodes: Sequence[NodeLike],
    var_pool: Sequence[Property] = (),
    end_time: datetime | None = None,
) -> tuple[DependResult, list[Property], datetime | None, str]:
    """Judge the matched upstream instance for one item: (result, OUT varPool, its end time, why).

    * 0: the instance's own state: unfinished WAITING, SUCCESS SUCCESS, anything else (FAILURE, STOP,
      PAUSE) FAILED.
    * -1: unfinished WAITING; finished and SUCCESS with every enabled (not forbidden) node SUCCESS or
      FORCED_SUCCESS -> SUCCESS; otherwise FAILED. A node that got no task instance (skipped by a
      branch, not in startNodeList) fails it, as a missing task instance does in DS.
    * a task code: that node's last instance. Running WAITING, success SUCCESS; failed (FAILURE, KILL,
      PAUSE, ...) WAITING while the instance is RUNNING_EXECUTION and the task has attempts left, else
      FAILED. Without a task instance: forbidden SUCCESS; otherwise WAITING while the instance runs,
      FAILED once it ended. A code that is not a node of that instance's definition: FAILED.
    """
    if dep_task_code == WORKFLOW:
        if not finished:
            return DependResult.WAITING, [], None, f"instance is {state.value}"
        if state is WorkflowState.SUCCESS:
            return DependResult.SUCCESS, _outs(var_pool), end_time, "instance SUCCESS"
        return DependResult.FAILED, [], None, f"instance ended {state.value}"
    if dep_task_code == ALL_TASKS:
        if not finished:
            return DependResult.WAITING, [], None, f"instance is {state.value}"
        if state is not WorkflowState.SUCCESS:
            return DependResult.FAILED, [], None, f"instance ended {state.value}"
        for n in nodes:
            if n.state is not TaskState.FORBIDDEN and not n.state.is_success:
                return DependResult.FAILED, [], None, f"task {n.code} is {n.state.value}"
        return DependResult.SUCCESS, _outs(var_pool), end_time, "all enabled tasks succeeded"
    node = next((n for n in nodes if n.code == dep_task_code), None)
    if node is None:
        return DependResult.FAILED, [], None, f"task {dep_task_code} is not in that instance's definition"
    if node.state is TaskState.FORBIDDEN:
        return DependResult.SUCCESS, [], None, "task is forbidden"
    if not node.state.has_instance:  # not reached yet, skipped, depend-failed, not run
        if not finished:
            return DependResult.WAITING, [], None, f"task is {node.state.value}"
        return DependResult.FAILED, [], None, f"task ended {node.state.value} with no task instance"
    if node.state in _RUNNING_TASK:
        return DependResult.WAITING, [], None, f"task is {node.state.value}"
    if node.state.is_success:
        return DependResult.SUCCESS, _outs(node.var_pool), node.end_time, f"task {node.state.value}"
    if not finished and state is WorkflowState.RUNNING_EXECUTION and node.attempts < node.max_attempts:
        return DependResult.WAITING, [], None, f"task {node.state.value}, may retry"
    return DependResult.FAILED, [], None, f"task ended {node.state.value}"


# -- parameter passing -----------------------------------------------------------------------------


def merge_passed_var_pool(pieces: Iterable[tuple[datetime | None, Sequence[Property]]]) -> list[Property]:
    """``DependentUtils.addTaskVarPool``: OUT entries of the matched instances; on a duplicate name the
    earlier-finished instance wins (an unknown end time sorts last; ties keep the first given)."""
    merged: dict[str, tuple[datetime | None, Property]] = {}
    for end, pool in pieces:
        for p in pool:
            if p.direct is not Direct.OUT:
                continue
            old = merged.get(p.prop)
            if old is None or (end is not None and (old[0] is None or end < old[0])):
                merged[p.prop] = (end, p)
    return [p for _, p in merged.values()]


def passed_var_pool(dependence: Dependence, checks: Mapping[str, ItemCheck]) -> list[Property]:
    """The varPool a successful DEPENDENT task exports: items with parameterPassing that succeeded, in
    groups that succeeded (``calculateDependResult`` imports only SUCCESS groups)."""
    results = {k: c.result for k, c in checks.items()}
    pieces: list[tuple[datetime | None, Sequence[Property]]] = []
    for g in dependence.groups:
        if group_result(g, results) is not DependResult.SUCCESS:
            continue
        for i in g.items:
            c = checks.get(i.key)
            if i.parameter_passing and c is not None and c.result is DependResult.SUCCESS:
                pieces.append((c.end_time, c.var_pool))
    return merge_passed_var_pool(pieces)
