"""DEPENDENT: DS date intervals computed by hand from DS 3.2's DependentDateUtils rules, the AND/OR
combination, the finishing rule, dependence parsing and judging one upstream instance (§3, §4.10).

Rules used for the expected values (DependentDateUtils + DateUtils): weeks run Monday..Sunday; a day
interval is [00:00:00.000, 23:59:59.999], an hour interval [hh:00:00.000, hh:59:59.999]; "last N"
lists are oldest first; last24Hours is yesterday 01:00 through today 00:59 whatever the hour;
thisWeek / thisMonth run up to and including the business day; thisMonthEnd is (as DS codes it) the
first day of the month; cycle plays no part.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.contracts import NodeStatus
from model.clock import in_zone
from model.definition import Direct, Property
from model.dependent import (
    ALL_TASKS,
    DATE_VALUES,
    WORKFLOW,
    Dependence,
    DependGroup,
    DependItem,
    DependResult,
    FailurePolicy,
    ItemCheck,
    Relation,
    combine,
    date_intervals,
    decide,
    has_task_instance,
    instance_result,
    merge_passed_var_pool,
    parse_dependence,
    passed_var_pool,
)
from model.states import TaskState, WorkflowState

S, F, W = DependResult.SUCCESS, DependResult.FAILED, DependResult.WAITING


def at(text: str, tz: str = "UTC") -> datetime:
    """'2024-03-01 08:30' in `tz`."""
    fmt = "%Y-%m-%d %H:%M:%S" if text.count(":") == 2 else "%Y-%m-%d %H:%M"
    return datetime.strptime(text, fmt).replace(tzinfo=ZoneInfo(tz))


def days(*names: str) -> list[tuple[datetime, datetime]]:
    out = []
    for n in names:
        d = datetime.strptime(n, "%Y-%m-%d").replace(tzinfo=UTC)
        out.append((d, d.replace(hour=23, minute=59, second=59, microsecond=999_000)))
    return out


def day_range(first: str, last: str) -> list[tuple[datetime, datetime]]:
    a = datetime.strptime(first, "%Y-%m-%d")
    b = datetime.strptime(last, "%Y-%m-%d")
    return days(*[(a + timedelta(days=i)).strftime("%Y-%m-%d") for i in range((b - a).days + 1)])


def hours(*names: str) -> list[tuple[datetime, datetime]]:
    out = []
    for n in names:
        h = datetime.strptime(n, "%Y-%m-%d %H").replace(tzinfo=UTC)
        out.append((h, h.replace(minute=59, second=59, microsecond=999_000)))
    return out


DAY_CASES = [
    # today
    ("2024-03-01 08:30", "today", days("2024-03-01")),
    ("2024-02-29 23:59:59", "today", days("2024-02-29")),
    ("2024-03-01 00:00", "today", days("2024-03-01")),
    # lastNDays: the N days before the business day, oldest first
    ("2024-03-01 00:00", "last1Days", days("2024-02-29")),  # leap year
    ("2023-03-01 00:00", "last1Days", days("2023-02-28")),
    ("2024-01-01 12:00", "last1Days", days("2023-12-31")),  # year boundary
    ("2024-03-01 12:00", "last2Days", days("2024-02-28", "2024-02-29")),
    ("2023-03-02 12:00", "last3Days", days("2023-02-27", "2023-02-28", "2023-03-01")),
    ("2019-02-10 07:00", "last3Days", days("2019-02-07", "2019-02-08", "2019-02-09")),  # DS's own test
    ("2024-01-03 07:00", "last7Days", day_range("2023-12-27", "2024-01-02")),
    ("2019-02-10 07:00", "last7Days", day_range("2019-02-03", "2019-02-09")),  # DS's own test
    # thisWeek: Monday of the business day's week up to the business day
    ("2024-03-03 10:00", "thisWeek", day_range("2024-02-26", "2024-03-03")),  # a Sunday: the whole week
    ("2024-02-26 00:00", "thisWeek", days("2024-02-26")),  # a Monday: just that day
    ("2025-01-01 09:00", "thisWeek", days("2024-12-30", "2024-12-31", "2025-01-01")),  # across the year
    # lastWeek: Monday..Sunday of the week before
    ("2024-01-03 07:00", "lastWeek", day_range("2023-12-25", "2023-12-31")),
    ("2024-03-04 00:00", "lastWeek", day_range("2024-02-26", "2024-03-03")),  # Monday: the week just ended
    ("2024-03-03 23:59", "lastWeek", day_range("2024-02-19", "2024-02-25")),  # Sunday: still its own week
    ("2019-02-10 07:00", "lastWeek", day_range("2019-01-28", "2019-02-03")),  # DS's own test
    # lastMonday..lastSunday: one day of the week before
    ("2024-03-01 12:00", "lastMonday", days("2024-02-19")),
    ("2024-03-01 12:00", "lastTuesday", days("2024-02-20")),
    ("2024-03-01 12:00", "lastWednesday", days("2024-02-21")),
    ("2024-03-01 12:00", "lastThursday", days("2024-02-22")),
    ("2024-03-01 12:00", "lastFriday", days("2024-02-23")),
    ("2024-03-01 12:00", "lastSaturday", days("2024-02-24")),
    ("2024-03-01 12:00", "lastSunday", days("2024-02-25")),
    ("2024-01-03 07:00", "lastMonday", days("2023-12-25")),
    ("2024-01-03 07:00", "lastSunday", days("2023-12-31")),
    ("2024-03-04 00:00", "lastThursday", days("2024-02-29")),  # leap day, seen from the next Monday
    ("2024-03-03 10:00", "lastSunday", days("2024-02-25")),  # from a Sunday: not today
    # thisMonth: the 1st up to the business day
    ("2024-02-29 10:00", "thisMonth", day_range("2024-02-01", "2024-02-29")),
    ("2023-02-28 10:00", "thisMonth", day_range("2023-02-01", "2023-02-28")),
    ("2024-03-01 00:00", "thisMonth", days("2024-03-01")),
    ("2024-12-31 23:59", "thisMonth", day_range("2024-12-01", "2024-12-31")),
    # thisMonthBegin / thisMonthEnd (DS: the end is also the 1st; see model.dependent._needed_month)
    ("2024-02-29 10:00", "thisMonthBegin", days("2024-02-01")),
    ("2024-01-01 00:00", "thisMonthBegin", days("2024-01-01")),
    ("2024-02-15 10:00", "thisMonthEnd", days("2024-02-01")),
    ("2024-02-29 10:00", "thisMonthEnd", days("2024-02-01")),
    # lastMonth: the whole previous month
    ("2024-03-15 10:00", "lastMonth", day_range("2024-02-01", "2024-02-29")),  # 29 days
    ("2023-03-31 10:00", "lastMonth", day_range("2023-02-01", "2023-02-28")),  # 28 days
    ("2024-01-15 10:00", "lastMonth", day_range("2023-12-01", "2023-12-31")),  # across the year
    ("2100-03-01 00:00", "lastMonth", day_range("2100-02-01", "2100-02-28")),  # 2100 is not a leap year
    ("2000-03-01 00:00", "lastMonth", day_range("2000-02-01", "2000-02-29")),  # 2000 is
    ("2019-02-10 07:00", "lastMonth", day_range("2019-01-01", "2019-01-31")),  # DS's own test
    # lastMonthBegin / lastMonthEnd
    ("2024-01-10 10:00", "lastMonthBegin", days("2023-12-01")),
    ("2024-03-31 10:00", "lastMonthBegin", days("2024-02-01")),
    ("2024-03-15 10:00", "lastMonthEnd", days("2024-02-29")),
    ("2023-03-15 10:00", "lastMonthEnd", days("2023-02-28")),
    ("2024-01-10 10:00", "lastMonthEnd", days("2023-12-31")),
    ("2024-05-31 10:00", "lastMonthEnd", days("2024-04-30")),
    ("2100-03-01 00:00", "lastMonthEnd", days("2100-02-28")),
]

LAST_24_FEB_29 = hours(*[f"2024-02-29 {h:02d}" for h in range(1, 24)], "2024-03-01 00")
HOUR_CASES = [
    ("2020-05-15 12:10", "currentHour", hours("2020-05-15 12")),  # DS's own test
    ("2024-03-01 00:00", "currentHour", hours("2024-03-01 00")),
    ("2024-03-01 00:10", "last1Hour", hours("2024-02-29 23")),  # leap day, across midnight
    ("2019-02-04 10:00", "last1Hour", hours("2019-02-04 09")),  # DS's own test
    ("2024-01-01 00:59:59", "last2Hours", hours("2023-12-31 22", "2023-12-31 23")),  # across the year
    ("2024-03-01 01:05", "last3Hours", hours("2024-02-29 22", "2024-02-29 23", "2024-03-01 00")),
    ("2019-02-04 10:00", "last3Hours", hours("2019-02-04 07", "2019-02-04 08", "2019-02-04 09")),
    # last24Hours: yesterday 01:00 .. today 00:59, not a rolling window
    ("2020-05-15 12:10", "last24Hours",
     hours(*[f"2020-05-14 {h:02d}" for h in range(1, 24)], "2020-05-15 00")),  # DS's own test
    ("2024-03-01 00:30", "last24Hours", LAST_24_FEB_29),
    ("2024-03-01 23:59", "last24Hours", LAST_24_FEB_29),
    ("2023-03-01 05:00", "last24Hours", hours(*[f"2023-02-28 {h:02d}" for h in range(1, 24)], "2023-03-01 00")),
]


@pytest.mark.parametrize(("business", "date_value", "expected"), DAY_CASES + HOUR_CASES,
                         ids=[f"{c[1]}@{c[0]}" for c in DAY_CASES + HOUR_CASES])
def test_date_intervals(business: str, date_value: str, expected: list[tuple[datetime, datetime]]) -> None:
    assert date_intervals(at(business), date_value) == expected


def test_every_date_value_is_covered() -> None:
    covered = {c[1] for c in DAY_CASES + HOUR_CASES}
    assert covered == DATE_VALUES
    assert len(DATE_VALUES) == 25


def test_ends_are_inclusive_to_the_millisecond() -> None:
    [(start, end)] = date_intervals(at("2024-03-01 08:30"), "today")
    assert (start.hour, start.minute, start.second, start.microsecond) == (0, 0, 0, 0)
    assert (end.hour, end.minute, end.second, end.microsecond) == (23, 59, 59, 999_000)
    assert end - start == timedelta(days=1) - timedelta(milliseconds=1)


def test_intervals_are_taken_in_the_business_dates_timezone() -> None:
    # 01:30 in Shanghai is still the previous day in UTC: the day is Shanghai's.
    business = in_zone(datetime(2024, 2, 29, 17, 30, tzinfo=UTC), "Asia/Shanghai")
    [(start, end)] = date_intervals(business, "today")
    assert start == datetime(2024, 2, 29, 16, 0, tzinfo=UTC)
    assert end == datetime(2024, 3, 1, 15, 59, 59, 999_000, tzinfo=UTC)
    [(start, _)] = date_intervals(business, "last1Days")
    assert start == datetime(2024, 2, 28, 16, 0, tzinfo=UTC)


def test_dst_gap_resolves_like_javas_lenient_calendar() -> None:
    # New York springs forward at 02:00 on 2024-03-10: wall-clock hour arithmetic, a wall time in the
    # gap meaning the instant with the pre-transition offset (Java moves 02:xx to 03:xx EDT).
    business = at("2024-03-10 04:30", "America/New_York")
    got = [(s.astimezone(UTC), e.astimezone(UTC)) for s, e in date_intervals(business, "last3Hours")]
    assert got == [
        (datetime(2024, 3, 10, 6, 0, tzinfo=UTC), datetime(2024, 3, 10, 6, 59, 59, 999_000, tzinfo=UTC)),
        (datetime(2024, 3, 10, 7, 0, tzinfo=UTC), datetime(2024, 3, 10, 7, 59, 59, 999_000, tzinfo=UTC)),
        (datetime(2024, 3, 10, 7, 0, tzinfo=UTC), datetime(2024, 3, 10, 7, 59, 59, 999_000, tzinfo=UTC)),
    ]
    [(start, end)] = date_intervals(business, "today")  # a 23-hour day
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23) - timedelta(milliseconds=1)


def test_unknown_date_value_gives_no_interval_and_naive_dates_are_refused() -> None:
    assert date_intervals(at("2024-03-01 08:30"), "last5Days") == []
    assert date_intervals(at("2024-03-01 08:30"), "") == []
    with pytest.raises(ValueError):
        date_intervals(datetime(2024, 3, 1), "today")


# -- AND / OR -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("relation", "results", "expected"), [
    ("AND", [S, S], S),
    ("AND", [S, F], F),
    ("AND", [F], F),
    ("AND", [S, W], W),
    ("AND", [F, W], W),  # DS: WAITING overwrites FAILED under AND
    ("AND", [W, F, S], W),
    ("AND", [], S),
    ("OR", [F, S], S),
    ("OR", [W, S], S),
    ("OR", [W, F], W),
    ("OR", [F, F], F),
    ("OR", [F], F),
    ("OR", [], F),
    ("or", [F, S], S),
    ("and", [S, F], F),
])
def test_combine(relation: str, results: list[DependResult], expected: DependResult) -> None:
    assert combine(relation, results) is expected


def item(code: int, dep: int = WORKFLOW, date_value: str = "today", passing: bool = False) -> DependItem:
    return DependItem(definition_code=code, dep_task_code=dep, date_value=date_value, parameter_passing=passing)


A, B, C = item(1), item(2), item(3)


def dependence(*groups: tuple[str, list[DependItem]], relation: str = "AND",
               policy: FailurePolicy = FailurePolicy.FAILURE, waiting: int | None = None) -> Dependence:
    return Dependence(relation=Relation(relation), failure_policy=policy, failure_waiting_time=waiting,
                      groups=tuple(DependGroup(relation=Relation(r), items=tuple(i)) for r, i in groups))


def test_decide_needs_every_group_finished_even_under_or() -> None:
    dep = dependence(("AND", [A]), ("AND", [B]), relation="OR")
    assert decide(dep, {A.key: S}, timedelta(0)) is None  # B has no result yet: WAITING
    assert decide(dep, {A.key: S, B.key: W}, timedelta(0)) is None
    assert decide(dep, {A.key: S, B.key: F}, timedelta(0)) is S
    assert decide(dep, {A.key: F, B.key: F}, timedelta(0)) is F


def test_decide_and_group_with_a_failure_and_a_pending_item_keeps_waiting() -> None:
    dep = dependence(("AND", [A, B]))
    assert decide(dep, {A.key: F, B.key: W}, timedelta(0)) is None
    assert decide(dep, {A.key: F, B.key: S}, timedelta(0)) is F
    assert decide(dep, {A.key: S, B.key: S}, timedelta(0)) is S


def test_decide_or_group_succeeds_without_waiting_for_the_rest() -> None:
    dep = dependence(("OR", [A, B, C]))
    assert decide(dep, {B.key: S}, timedelta(0)) is S


def test_failure_waiting_policy_waits_failure_waiting_time_past_the_business_date() -> None:
    dep = dependence(("AND", [A]), policy=FailurePolicy.WAITING, waiting=5)
    failed = {A.key: F}
    assert decide(dep, failed, timedelta(minutes=4)) is None
    assert decide(dep, failed, timedelta(minutes=5)) is None  # DS: strictly more than the waiting time
    assert decide(dep, failed, timedelta(minutes=5, seconds=1)) is F
    assert decide(dep, {A.key: S}, timedelta(0)) is S
    # a DS minute shortened to one second, as the test suite's settings do
    assert decide(dep, failed, timedelta(seconds=6), minute=timedelta(seconds=1)) is F
    assert decide(dep, failed, timedelta(seconds=4), minute=timedelta(seconds=1)) is None


def test_failure_waiting_without_a_waiting_time_fails_at_once() -> None:
    dep = dependence(("AND", [A]), policy=FailurePolicy.WAITING, waiting=None)
    assert decide(dep, {A.key: F}, timedelta(0)) is F


def test_failure_policy_fails_at_once() -> None:
    assert decide(dependence(("AND", [A])), {A.key: F}, timedelta(0)) is F


# -- parsing --------------------------------------------------------------------------------------


def test_parse_dependence_tolerates_ds_quirks() -> None:
    params = {"dependence": {
        "relation": "or", "checkInterval": "30", "failurePolicy": "DEPENDENT_FAILURE_WAITING",
        "failureWaitingTime": "5",
        "dependTaskList": [
            {"relation": "AND", "dependItemList": [
                {"projectCode": "1", "definitionCode": "7100000000001", "depTaskCode": "-1", "cycle": "day",
                 "dateValue": "last1Days", "parameterPassing": "true"},
                {"projectCode": 1, "definitionCode": 7100000000002, "depTaskCode": 7100000000003,
                 "cycle": "hour", "dateValue": "currentHour"},
                "garbage",
            ]},
            {"dependItemList": [{"definitionCode": 7100000000004, "depTaskCode": None, "dateValue": "today"}]},
        ]}}
    dep = parse_dependence(params)
    assert dep.relation is Relation.OR
    assert dep.check_interval == 30
    assert dep.failure_policy is FailurePolicy.WAITING and dep.failure_waiting_time == 5
    g1, g2 = dep.groups
    assert g1.relation is Relation.AND and g2.relation is Relation.AND
    first, second = g1.items
    assert (first.project_code, first.definition_code, first.dep_task_code) == (1, 7100000000001, ALL_TASKS)
    assert first.parameter_passing is True and first.key == "7100000000001--1-day-last1Days"
    assert second.dep_task_code == 7100000000003 and second.parameter_passing is False
    assert g2.items[0].dep_task_code == WORKFLOW
    assert [i.key for i in dep.items] == [first.key, second.key, g2.items[0].key]


def test_parse_dependence_defaults_and_other_shapes() -> None:
    flat = parse_dependence({"dependTaskList": [{"dependItemList": [{"definitionCode": 5, "dateValue": "today"}]}],
                             "checkInterval": 0})
    assert flat.relation is Relation.AND and flat.check_interval == 10
    assert flat.failure_policy is FailurePolicy.FAILURE and flat.failure_waiting_time is None
    as_text = parse_dependence({"dependence": '{"relation": "AND", "dependTaskList": []}'})
    assert as_text.groups == ()
    assert parse_dependence({"dependence": {"checkInterval": None, "dependTaskList": []}}).check_interval == 10


@pytest.mark.parametrize("params", [
    {},
    {"dependence": None},
    {"dependence": "{not json"},
    {"dependence": {"relation": "XOR", "dependTaskList": []}},
    {"dependence": {"failurePolicy": "SOMETIMES", "dependTaskList": []}},
    {"dependence": {"dependTaskList": [{"dependItemList": [{"dateValue": "today"}]}]}},
    {"dependence": {"dependTaskList": [{"dependItemList": [{"definitionCode": "abc"}]}]}},
])
def test_parse_dependence_refuses_what_cannot_run(params: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        parse_dependence(params)


# -- one upstream instance ------------------------------------------------------------------------

END = datetime(2024, 3, 1, 10, tzinfo=UTC)


def node(code: int, state: TaskState, attempts: int = 1, max_attempts: int = 1,
         pool: list[Property] | None = None) -> NodeStatus:
    return NodeStatus(code=code, name=f"t{code}", task_type="SHELL", state=state, attempts=attempts,
                      max_attempts=max_attempts, end_time=END, var_pool=pool or [])


OUT = Property(prop="x", direct=Direct.OUT, value="1")
IN = Property(prop="y", direct=Direct.IN, value="2")


def judge(dep: int, state: WorkflowState, nodes: list[NodeStatus], finished: bool | None = None) -> DependResult:
    done = state.is_finished if finished is None else finished
    return instance_result(dep, state=state, finished=done, nodes=nodes, var_pool=[OUT, IN], end_time=END)[0]


def test_workflow_state_item() -> None:
    assert judge(WORKFLOW, WorkflowState.RUNNING_EXECUTION, []) is W
    assert judge(WORKFLOW, WorkflowState.READY_STOP, []) is W
    assert judge(WORKFLOW, WorkflowState.FAILURE, []) is F
    assert judge(WORKFLOW, WorkflowState.STOP, []) is F
    assert judge(WORKFLOW, WorkflowState.PAUSE, []) is F
    result, pool, end, _ = instance_result(WORKFLOW, state=WorkflowState.SUCCESS, finished=True, nodes=[],
                                           var_pool=[OUT, IN], end_time=END)
    assert (result, pool, end) == (S, [OUT], END)  # only OUT entries travel


def test_all_tasks_item() -> None:
    ok = [node(1, TaskState.SUCCESS), node(2, TaskState.FORBIDDEN), node(3, TaskState.FORCED_SUCCESS)]
    assert judge(ALL_TASKS, WorkflowState.SUCCESS, ok) is S
    assert judge(ALL_TASKS, WorkflowState.RUNNING_EXECUTION, ok, finished=False) is W
    assert judge(ALL_TASKS, WorkflowState.FAILURE, ok) is F
    skipped = [node(1, TaskState.SUCCESS), node(2, TaskState.SKIPPED)]
    assert judge(ALL_TASKS, WorkflowState.SUCCESS, skipped) is F  # no task instance for a skipped node
    not_run = [node(1, TaskState.SUCCESS), node(2, TaskState.NOT_RUN)]
    assert judge(ALL_TASKS, WorkflowState.SUCCESS, not_run) is F


def test_single_task_item() -> None:
    running = WorkflowState.RUNNING_EXECUTION
    assert judge(1, WorkflowState.FAILURE, [node(1, TaskState.FORBIDDEN)]) is S
    assert judge(1, running, [node(1, TaskState.RUNNING_EXECUTION)], finished=False) is W
    assert judge(1, running, [node(1, TaskState.SUBMITTED_SUCCESS)], finished=False) is W
    assert judge(1, WorkflowState.FAILURE, [node(1, TaskState.SUCCESS)]) is S  # the task, not the instance
    assert judge(1, WorkflowState.FAILURE, [node(1, TaskState.FORCED_SUCCESS)]) is S
    # failed with attempts left while the instance runs: it may retry
    assert judge(1, running, [node(1, TaskState.FAILURE, attempts=1, max_attempts=3)], finished=False) is W
    assert judge(1, running, [node(1, TaskState.FAILURE, attempts=3, max_attempts=3)], finished=False) is F
    assert judge(1, WorkflowState.FAILURE, [node(1, TaskState.FAILURE, attempts=1, max_attempts=3)]) is F
    assert judge(1, WorkflowState.READY_STOP, [node(1, TaskState.KILL, 1, 3)], finished=False) is F
    # no task instance: wait while the instance runs, fail once it ended
    assert judge(1, running, [node(1, TaskState.WAITING)], finished=False) is W
    assert judge(1, WorkflowState.SUCCESS, [node(1, TaskState.SKIPPED)]) is F
    assert judge(1, WorkflowState.FAILURE, [node(1, TaskState.DEPEND_FAILED)]) is F
    assert judge(99, running, [node(1, TaskState.SUCCESS)], finished=False) is F  # not a node of it
    result, pool, end, _ = instance_result(1, state=WorkflowState.SUCCESS, finished=True,
                                           nodes=[node(1, TaskState.SUCCESS, pool=[OUT, IN])])
    assert (result, pool, end) == (S, [OUT], END)


def test_task_level_candidates_must_have_run_the_task() -> None:
    assert has_task_instance(1, [node(1, TaskState.FAILURE)])
    assert has_task_instance(1, [node(1, TaskState.RUNNING_EXECUTION)])
    assert has_task_instance(1, [node(1, TaskState.FORBIDDEN)])  # kept so that it counts as success
    assert has_task_instance(99, [node(1, TaskState.SUCCESS)])  # not a node: kept, judged FAILED
    for state in (TaskState.WAITING, TaskState.SKIPPED, TaskState.NOT_RUN, TaskState.DEPEND_FAILED):
        assert not has_task_instance(1, [node(1, state)])
    assert has_task_instance(WORKFLOW, [node(1, TaskState.SKIPPED)])
    assert has_task_instance(ALL_TASKS, [node(1, TaskState.SKIPPED)])


# -- parameter passing ----------------------------------------------------------------------------


def prop(name: str, value: str, direct: Direct = Direct.OUT) -> Property:
    return Property(prop=name, direct=direct, value=value)


def test_merge_passed_var_pool_earlier_finished_wins() -> None:
    t1, t2 = END, END + timedelta(minutes=1)
    merged = merge_passed_var_pool([
        (t2, [prop("a", "late"), prop("b", "late")]),
        (t1, [prop("a", "early"), prop("c", "early"), prop("d", "in", Direct.IN)]),
        (None, [prop("b", "unknown"), prop("e", "unknown")]),
    ])
    assert {p.prop: p.value for p in merged} == {"a": "early", "b": "late", "c": "early", "e": "unknown"}


def test_passed_var_pool_takes_passing_items_of_successful_groups() -> None:
    a, b, c = item(1, passing=True), item(2, passing=False), item(3, passing=True)
    dep = dependence(("AND", [a, b]), ("OR", [c, item(4)]), relation="OR")
    checks = {
        a.key: ItemCheck(key=a.key, result=S, end_time=END, var_pool=[prop("x", "a")]),
        b.key: ItemCheck(key=b.key, result=S, end_time=END, var_pool=[prop("y", "b")]),
        c.key: ItemCheck(key=c.key, result=F, var_pool=[]),
    }
    assert {p.prop: p.value for p in passed_var_pool(dep, checks)} == {"x": "a"}
