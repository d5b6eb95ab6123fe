"""Parameter preparation, substitution, OUT parameters and SWITCH conditions (reference §4.8, §6)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from model.definition import DataType, Direct, Property
from model.params import (
    builtins,
    export_out_params,
    merge_var_pool,
    merged_types,
    parse_set_values,
    prepare,
    substitute,
    switch_condition_js,
    task_var_pool,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
BASE = datetime(2024, 3, 15, 10, 30, 0, tzinfo=SHANGHAI)


def p(prop: str, value: str | None = "", direct: Direct = Direct.IN, type_: DataType = DataType.VARCHAR) -> Property:
    return Property(prop=prop, value=value, direct=direct, type=type_)


def out(prop: str, value: str = "", type_: DataType = DataType.VARCHAR) -> Property:
    return p(prop, value, Direct.OUT, type_)


BUILTINS = builtins(
    BASE,
    workflow_instance_id="wf-1",
    definition_code=111,
    definition_name="demo",
    project_code=222,
    project_name="proj",
    task_code=333,
    task_name="task",
    task_instance_id="ti-1",
)


# --------------------------------------------------------------------------------------------------
# builtins
# --------------------------------------------------------------------------------------------------


def test_builtins_dates_and_identity() -> None:
    b = builtins(
        datetime(2024, 3, 1, 0, 5, 7, tzinfo=SHANGHAI),
        workflow_instance_id="42",
        definition_code=7001,
        definition_name="wf",
        project_code=9001,
        task_code=8001,
        task_name="t1",
        task_instance_id="99",
        execute_path="/tmp/exec/99",
    )
    assert b == {
        "system.biz.date": "20240229",  # run time - 1 day, across the leap day
        "system.biz.curdate": "20240301",
        "system.datetime": "20240301000507",
        "system.workflow.instance.id": "42",
        "system.workflow.definition.code": "7001",
        "system.workflow.definition.name": "wf",
        "system.project.code": "9001",
        "system.project.name": "",
        "system.task.definition.code": "8001",
        "system.task.definition.name": "t1",
        "system.task.instance.id": "99",
        "system.task.execute.path": "/tmp/exec/99",
    }


def test_builtins_leave_out_unknown_task_fields() -> None:
    b = builtins(BASE, workflow_instance_id="1", definition_code=1, definition_name="w", project_code=1)
    assert not any(k.startswith("system.task.") for k in b)
    assert b["system.biz.date"] == "20240314"


# --------------------------------------------------------------------------------------------------
# prepare: precedence
# --------------------------------------------------------------------------------------------------

LAYERS = ["builtin", "project", "global", "varpool", "local", "startup"]


def _prepare_with_layers(present: Iterable[str]) -> dict[str, str]:
    """Define ``x`` in the given layers; it is named like a built-in so that layer can take part."""
    name = "system.biz.date"
    present = set(present)
    base_builtins = {k: v for k, v in BUILTINS.items() if k != name}
    return prepare(
        builtins={**base_builtins, name: "builtin"} if "builtin" in present else base_builtins,
        project=[p(name, "project")] if "project" in present else [],
        global_params=[p(name, "global")] if "global" in present else [],
        var_pool=[out(name, "varpool")] if "varpool" in present else [],
        local_params=[p(name, "local")] if "local" in present else [],
        start_params={name: "startup"} if "startup" in present else {},
        base_time=BASE,
    )


@pytest.mark.parametrize("top", range(len(LAYERS)))
def test_each_layer_beats_all_the_ones_below(top: int) -> None:
    assert _prepare_with_layers(LAYERS[: top + 1])["system.biz.date"] == LAYERS[top]


@pytest.mark.parametrize(("low", "high"), list(itertools.combinations(LAYERS, 2)))
def test_every_pair_of_layers(low: str, high: str) -> None:
    assert _prepare_with_layers([low, high])["system.biz.date"] == high


def test_local_out_params_are_not_inputs() -> None:
    result = prepare(
        builtins=BUILTINS,
        global_params=[p("x", "global")],
        local_params=[out("x", "declared-out-default")],
        base_time=BASE,
    )
    assert result["x"] == "global"


def test_empty_local_in_still_overrides_global() -> None:
    result = prepare(builtins=BUILTINS, global_params=[p("x", "g")], local_params=[p("x", "")], base_time=BASE)
    assert result["x"] == ""


def test_null_value_counts_as_empty() -> None:
    result = prepare(builtins=BUILTINS, global_params=[p("x", None)], base_time=BASE)
    assert result["x"] == ""


def test_system_datetime_is_forced_back_to_the_schedule_time() -> None:
    result = prepare(builtins=BUILTINS, start_params={"system.datetime": "19700101000000"}, base_time=BASE)
    assert result["system.datetime"] == "20240315103000"


# --------------------------------------------------------------------------------------------------
# prepare: resolution
# --------------------------------------------------------------------------------------------------


def test_chained_references_and_time_expressions() -> None:
    result = prepare(
        builtins=BUILTINS,
        project=[p("day", "$[yyyyMMdd-1]")],
        global_params=[p("path", "/data/${day}/${region}")],
        local_params=[p("cmd", "load ${path} into ${system.project.name}"), p("region", "eu")],
        base_time=BASE,
    )
    assert result["day"] == "20240314"
    assert result["path"] == "/data/20240314/eu"
    assert result["cmd"] == "load /data/20240314/eu into proj"


def test_time_expressions_use_base_time_not_system_datetime_value() -> None:
    other = datetime(2020, 1, 2, 3, 4, 5, tzinfo=SHANGHAI)
    result = prepare(builtins=BUILTINS, global_params=[p("d", "$[yyyyMMdd]")], base_time=other)
    assert result["d"] == "20200102"


def test_builtin_references_resolve() -> None:
    result = prepare(
        builtins=BUILTINS,
        global_params=[p("bizdt", "${system.biz.date}"), p("wf", "${system.workflow.definition.code}")],
        base_time=BASE,
    )
    assert result["bizdt"] == "20240314"
    assert result["wf"] == "111"


def test_unknown_reference_stays() -> None:
    result = prepare(builtins=BUILTINS, global_params=[p("a", "x-${nope}-$[yyyy]")], base_time=BASE)
    assert result["a"] == "x-${nope}-2024"


def test_reference_cycles_terminate_and_stay_literal() -> None:
    result = prepare(
        builtins=BUILTINS,
        global_params=[p("a", "${b}"), p("b", "${a}"), p("self", "${self}!"), p("ok", "${c}"), p("c", "1")],
        base_time=BASE,
    )
    assert result["self"] == "${self}!"
    assert result["a"] == "${b}"
    assert result["b"] == "${a}"
    assert result["ok"] == "1"


def test_startup_value_replaces_global_and_its_references_resolve() -> None:
    # A startup value replaces the global outright; references inside it resolve normally.
    result = prepare(
        builtins=BUILTINS,
        global_params=[p("dt", "$[yyyyMMdd]"), p("other", "o")],
        start_params={"dt": "${other}-fixed"},
        base_time=BASE,
    )
    assert result["dt"] == "o-fixed"


# --------------------------------------------------------------------------------------------------
# The ds-demo-v32-parameter-context sample (INDEX.md): varPool beats global, local IN beats global
# --------------------------------------------------------------------------------------------------


def _props(items: list[dict[str, str]]) -> list[Property]:
    return [Property.model_validate(i) for i in items]


def test_parameter_context_sample(samples_dir: Path) -> None:
    sample = json.loads((samples_dir / "ds-demo-v32-parameter-context-out-param.json").read_text())
    decoded = sample["_decoded"]
    globals_ = _props(decoded["globalParams"])
    upstream, downstream = decoded["taskDefinitionJson"]
    up_locals = _props(upstream["taskParams"]["localParams"])
    down_locals = _props(downstream["taskParams"]["localParams"])

    up_params = prepare(builtins=BUILTINS, global_params=globals_, local_params=up_locals, base_time=BASE)
    assert up_params["value"] == "0"  # local IN value=0 beats global value=99
    assert up_params["output"] == "100"  # the OUT declaration is not an input
    script = substitute(upstream["taskParams"]["rawScript"], up_params, BASE)
    assert "echo ${output}" not in script and "echo 100" in script and "echo 0" in script
    assert "echo '${setValue(output=1)}'" in script  # unknown names stay: setValue survives

    # What the shell prints: the single quotes keep bash from expanding ${...}.
    log = "====Node start====\r\n${setValue(output=1)}\r\n100\r\n0\r\n====Node end===="
    produced = parse_set_values(log)
    assert produced == {"output": "1"}
    up_pool = task_var_pool([], up_locals, produced)
    assert up_pool == [out("output", "1")]

    received = merge_var_pool([(datetime(2024, 3, 15, 10, 31, tzinfo=SHANGHAI), up_pool)])
    down_params = prepare(
        builtins=BUILTINS, global_params=globals_, var_pool=received, local_params=down_locals, base_time=BASE
    )
    assert down_params["output"] == "1"  # upstream OUT beats global output=100
    assert down_params["value"] == "99"  # the upstream's local IN does not travel
    down_script = substitute(downstream["taskParams"]["rawScript"], down_params, BASE)
    assert "echo 1\r\n" in down_script and "echo 99\r\n" in down_script


# --------------------------------------------------------------------------------------------------
# substitute
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "params", "expected"),
    [
        ("echo ${a}", {"a": "1"}, "echo 1"),
        ("${a}${a}-${b}", {"a": "x", "b": "y"}, "xx-y"),
        ("${missing} ${a}", {"a": "1"}, "${missing} 1"),
        ("${a:default}", {"a": "1"}, "${a:default}"),  # no default-value syntax
        ("${a}", {"a": "${b}", "b": "${c}", "c": "deep"}, "deep"),  # resolved values are resolved
        ("${x_${n}}", {"n": "2", "x_2": "nested"}, "nested"),  # placeholder inside a name
        ("${x_${n}}", {"n": "3"}, "${x_${n}}"),  # unresolved outer keeps its original text
        ("${a}", {"a": "${a}"}, "${a}"),  # a cycle is left alone
        ("${a}|${c}", {"a": "<${b}>", "b": "${a}", "c": "ok"}, "${a}|ok"),
        ("${a}", {"a": "${b}${b}", "b": "x"}, "xx"),  # a repeated name is not a cycle
        ("${a", {"a": "1"}, "${a"),  # unterminated
        ("$a {a} $[a]", {"a": "1"}, "$a {a} $[a]"),
        ("${a}", {"a": ""}, ""),
        ("${ a }", {"a": "1"}, "${ a }"),  # names are not trimmed
    ],
)
def test_substitute_placeholders(text: str, params: dict[str, str], expected: str) -> None:
    assert substitute(text, params) == expected


def test_substitute_time_after_names() -> None:
    params = {"fmt": "yyyyMMdd", "d": "$[yyyy-MM-dd-1]"}
    assert substitute("$[${fmt}] ${d} $[HHmmss]", params, BASE) == "20240315 2024-03-14 103000"
    assert substitute("$[yyyyMMdd] ${d}", params) == "$[yyyyMMdd] $[yyyy-MM-dd-1]"


# --------------------------------------------------------------------------------------------------
# setValue parsing
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${setValue(a=1)}", {"a": "1"}),
        ("echo done\n${setValue(a=1)}\nmore", {"a": "1"}),
        ("#{setValue(b=2)}", {"b": "2"}),
        ("${setValue(url=http://h/?q=1&r=2)}", {"url": "http://h/?q=1&r=2"}),  # split at the first '='
        ("${setValue(a=1)} and ${setValue(b=2)}", {"a": "1", "b": "2"}),
        ("#{setValue(a=1)} then #{setValue(b=2)}", {"a": "1", "b": "2"}),
        ("${setValue(a=1)}\n${setValue(a=2)}", {"a": "2"}),  # later wins
        ("${setValue(a=)}", {"a": ""}),
        ("${setValue(novalue)}", {}),
        ("${setValue( k = v )}", {" k ": " v "}),  # no trimming, as DS
        ("${setValue(a=1)}\r\n${setValue(b=2)}\r\n", {"a": "1", "b": "2"}),
        ("prefix ${setValue(a=1)} suffix", {"a": "1"}),
        ("${setValue(a=1", {}),  # never closed
        ("${setValue(a=1)", {}),
        ("$ {setValue(a=1)}", {}),
        ("", {}),
    ],
)
def test_parse_set_values(text: str, expected: dict[str, str]) -> None:
    assert parse_set_values(text) == expected


def test_parse_set_values_multiline() -> None:
    text = 'start\n${setValue(payload={\n  "user": "alice",\n  "n": 42\n})} tail ${setValue(x=y)}\nend'
    assert parse_set_values(text) == {"payload": '{\n  "user": "alice",\n  "n": 42\n}', "x": "y"}


def test_parse_set_values_multiline_hash_form() -> None:
    assert parse_set_values("#{setValue(k=line1\nline2)}") == {"k": "line1\nline2"}


def test_parse_set_values_gives_up_after_1024_lines() -> None:
    within = "${setValue(a=first" + "\nx" * 1000 + ")}"
    assert parse_set_values(within) == {"a": "first" + "\nx" * 1000}
    too_long = "${setValue(a=first" + "\nx" * 1100 + ")}\n${setValue(b=2)}"
    assert parse_set_values(too_long) == {"b": "2"}


# --------------------------------------------------------------------------------------------------
# OUT export and varPool
# --------------------------------------------------------------------------------------------------


def test_export_only_declared_out_params() -> None:
    declared = [p("in_a", "1"), out("b", "default-b", DataType.INTEGER), out("c", "")]
    exported = export_out_params(declared, {"b": "5", "in_a": "9", "undeclared": "z"})
    assert exported == [out("b", "5", DataType.INTEGER), out("c", "")]


def test_declared_out_never_set_keeps_declared_default() -> None:
    assert export_out_params([out("k", "fallback")], {}) == [out("k", "fallback")]


def test_task_var_pool_passes_upstream_values_on() -> None:
    inherited = [out("up", "1"), out("shared", "old")]
    assert task_var_pool(inherited, [p("local_in", "x")], {"up": "ignored"}) == inherited
    assert task_var_pool(inherited, [out("shared"), out("mine", "d")], {"shared": "new"}) == [
        out("up", "1"),
        out("shared", "new"),
        out("mine", "d"),
    ]


def test_merge_var_pool_latest_finisher_wins() -> None:
    early = datetime(2024, 3, 15, 10, 0, tzinfo=SHANGHAI)
    late = datetime(2024, 3, 15, 11, 0, tzinfo=SHANGHAI)
    a = [out("k", "from-late"), out("only_late", "1")]
    b = [out("k", "from-early"), out("only_early", "2")]
    for preds in ([(late, a), (early, b)], [(early, b), (late, a)]):
        merged = merge_var_pool(preds)
        assert {x.prop: x.value for x in merged} == {"k": "from-late", "only_late": "1", "only_early": "2"}
        assert all(x.direct is Direct.OUT for x in merged)


def test_merge_var_pool_drops_in_entries_and_keeps_ties_in_order() -> None:
    t = datetime(2024, 3, 15, 10, 0, tzinfo=SHANGHAI)
    merged = merge_var_pool([(t, [out("k", "first"), p("in_only", "x")]), (t, [out("k", "second")])])
    assert merged == [out("k", "second")]
    assert merge_var_pool([]) == []


def test_merge_var_pool_accepts_any_sortable_end_time() -> None:
    merged = merge_var_pool([(3, [out("k", "c")]), (1, [out("k", "a")]), (2, [out("k", "b")])])
    assert merged == [out("k", "c")]


def test_merged_types_follow_precedence() -> None:
    types = merged_types(
        global_params=[p("n", "1", type_=DataType.VARCHAR), p("g", type_=DataType.BOOLEAN)],
        var_pool=[out("n", "2", DataType.INTEGER)],
        local_params=[out("n", type_=DataType.DOUBLE)],
    )
    assert types == {"n": DataType.INTEGER, "g": DataType.BOOLEAN}
    assert merged_types(global_params=[p("g", type_=DataType.BOOLEAN)], start_params={"g": "true"}) == {
        "g": DataType.VARCHAR
    }


# --------------------------------------------------------------------------------------------------
# SWITCH condition pre-processing (reference §4.8)
# --------------------------------------------------------------------------------------------------

TYPES = {
    "i": DataType.INTEGER,
    "l": DataType.LONG,
    "f": DataType.FLOAT,
    "d": DataType.DOUBLE,
    "b": DataType.BOOLEAN,
    "s": DataType.VARCHAR,
}


@pytest.mark.parametrize(
    ("condition", "params", "expected"),
    [
        ('${switchValue} == "A"', {"switchValue": "A"}, '"A" == "A"'),  # the SWITCH demo sample
        ("${switchValue} == 'B'", {"switchValue": "A"}, '"A" == "B"'),  # every ' becomes "
        ("${i} > 5", {"i": "10"}, "10 > 5"),
        ("${i} > 5", {"i": "007"}, "7 > 5"),  # Integer.valueOf
        ("${l} == 1", {"l": "-9000000000"}, "-9000000000 == 1"),
        ("${d} >= 1", {"d": "1"}, "1.0 >= 1"),  # Double.toString
        ("${f} < 1", {"f": "0.1"}, "0.1 < 1"),
        ("${d} > 0", {"d": "1e10"}, "1.0E10 > 0"),
        ("${b}", {"b": "TRUE"}, "true"),
        ("${b}", {"b": "yes"}, "false"),  # Boolean.valueOf
        ("${untyped} == 1", {"untyped": "1"}, '"1" == 1'),  # no type = VARCHAR
        ("${i} > 1 && ${i} < 5 || ${s} != ''", {"i": "3", "s": "x"}, '3 > 1 && 3 < 5 || "x" != ""'),
        ("${x} == 1", {"i": "1"}, "${x} == 1"),  # unknown stays literal, so the JS fails
        ("${x} == 1", {}, "${x} == 1"),
        ("${s}.includes('a')", {"s": "it's"}, '"it\'s".includes("a")'),  # values keep their quotes
    ],
)
def test_switch_condition_js(condition: str, params: dict[str, str], expected: str) -> None:
    assert switch_condition_js(condition, params, TYPES) == expected


def test_switch_quotes_around_placeholder_stay_by_default() -> None:
    # DS replaces only the ${name} text although its regex also matches the quotes around it.
    assert switch_condition_js("'${s}' == 'A'", {"s": "A"}, TYPES) == '""A"" == "A"'
    assert switch_condition_js("'${b}' == 'true'", {"b": "true"}, TYPES) == '"true" == "true"'
    assert switch_condition_js('"${i}" === "5"', {"i": "5"}, TYPES) == '"5" === "5"'


def test_switch_strip_quotes_option() -> None:
    assert switch_condition_js("'${s}' == 'A'", {"s": "A"}, TYPES, strip_quotes=True) == '"A" == "A"'
    assert switch_condition_js("'${i}' > 2", {"i": "5"}, TYPES, strip_quotes=True) == "5 > 2"


@pytest.mark.parametrize(
    ("name", "value"),
    [("i", "abc"), ("i", "1.5"), ("i", "2147483648"), ("i", ""), ("l", "9223372036854775808"), ("d", "x")],
)
def test_switch_unparseable_typed_value_raises(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        switch_condition_js(f"${{{name}}} > 0", {name: value}, TYPES)
