"""The typed task parameters (model/task_params): DS's key names, its loose JSON, leftovers kept,
every shared sample read, and a wrong type refused naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from model.dependent import Relation
from model.formats import parse_document
from model.problems import DefinitionError
from model.task_params import (
    BY_TYPE,
    ConditionsParams,
    DataxParams,
    DependentParams,
    HttpParams,
    ScriptParams,
    SqlParams,
    SubProcessParams,
    SwitchParams,
    TaskParams,
    TaskParamsError,
    parse_params,
)
from model.task_types import ACTIVITY_TYPES, LOGIC_TYPES, RECOGNISED
from tests.samples import SAMPLES

DEFINITION_SAMPLES = sorted(p for p in SAMPLES.glob("*.json") if "taskparams" not in p.name)


def test_every_runnable_type_has_a_model_and_recognised_types_get_the_base() -> None:
    assert set(BY_TYPE) == ACTIVITY_TYPES | LOGIC_TYPES
    for t in RECOGNISED:
        assert type(parse_params(t, {"anything": [1, {"x": None}]})) is TaskParams
    assert type(parse_params("shell", {"rawScript": "x"})) is ScriptParams  # case as DS exports vary


# -- DS names --------------------------------------------------------------------------------------

def test_ds_key_names_are_read_and_python_names_also_work() -> None:
    p = SqlParams.of({"type": "mysql", "datasource": 3, "sql": "select 1", "sqlType": "1",
                      "preStatements": ["a"], "postStatements": ["b"], "displayRows": 5, "limit": 7})
    assert (p.db_type, p.datasource, p.sql, p.is_query) == ("MYSQL", 3, "select 1", False)
    assert (p.pre_statements, p.post_statements, p.display_rows, p.limit) == (["a"], ["b"], 5, 7)
    assert SqlParams.model_validate({"sql_type": 1, "display_rows": 2}).display_rows == 2
    d = DataxParams.of({"customConfig": 0, "dsType": "mysql", "dataSource": 1, "dtType": "postgresql",
                        "dataTarget": "2", "targetTable": "t", "jobSpeedByte": "10", "jobSpeedRecord": 0,
                        "json": "{}", "xms": "1", "xmx": 2, "runOn": "k8s"})
    assert (d.ds_type, d.data_source, d.dt_type, d.data_target) == ("MYSQL", 1, "POSTGRESQL", 2)
    assert (d.target_table, d.job_speed_byte, d.job_speed_record, d.job_json) == ("t", 10, 0, "{}")
    assert (d.xms, d.xmx, d.run_on, d.custom) == (1, 2, "k8s", False)


def test_http_both_key_sets_and_the_33_keys_win() -> None:
    v32 = HttpParams.of({"url": "http://x", "httpMethod": "post", "httpBody": "b", "connectTimeout": "1500",
                         "httpParams": [{"prop": "q", "value": 1, "httpParametersType": "parameter"}]})
    assert (v32.method, v32.body, v32.connect_timeout) == ("POST", "b", 1500.0)
    assert [(i.prop, i.value, i.kind) for i in v32.parameters] == [("q", "1", "PARAMETER")]
    v33 = HttpParams.of({"url": "http://x", "httpMethod": "POST", "httpRequestMethod": "PUT",
                         "httpParams": [{"prop": "old"}], "httpRequestParams": [],
                         "httpBody": "old", "httpRequestBody": {"a": 1}})
    assert (v33.method, v33.parameters, v33.body) == ("PUT", [], {"a": 1})
    assert HttpParams.of({}).method == "GET" and HttpParams.of({}).check_condition == "STATUS_CODE_DEFAULT"


def test_sub_process_reads_the_32_and_33_codes() -> None:
    assert SubProcessParams.of({"processDefinitionCode": "123"}).definition_code == 123
    assert SubProcessParams.of({"workflowDefinitionCode": 456}).definition_code == 456
    assert SubProcessParams.of({}).definition_code == 0
    assert SubProcessParams.of({}).problems() == [
        ("processDefinitionCode", "processDefinitionCode (or workflowDefinitionCode) is required")]


# -- loose JSON ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    (1, 1), ("1", 1), (" 12 ", 12), (2.0, 2), ("null", None), ("NULL", None), ("", None), (None, None),
])
def test_loose_numbers(raw: Any, expected: int | None) -> None:
    assert SqlParams.of({"datasource": raw}).datasource == expected
    assert DataxParams.of({"xmx": raw}).xmx == expected


def test_loose_objects_lists_and_enums() -> None:
    # Nested objects stored as JSON strings, "null" for absent ones, and a bare code for a list.
    s = SwitchParams.of({"switchResult": json.dumps({"dependTaskList": [{"condition": "${a} > 1", "nextNode": "11"}],
                                                      "nextNode": 22})})
    assert s.branches() == [("${a} > 1", 11)] and s.default_branch() == 22
    assert SwitchParams.of({"switchResult": "null"}).switch_result is None
    c = ConditionsParams.of({"dependence": '{"relation": "or", "dependTaskList": [{"dependItemList": '
                                           '[{"depTaskCode": "7", "status": "failure"}, "junk"]}, 3]}',
                             "conditionResult": {"successNode": ["1", ""], "failedNode": 2}})
    assert c.dependence.relation == "OR"
    (group,) = c.dependence.depend_task_list
    assert group.relation == "AND" and [(i.dep_task_code, i.status) for i in group.depend_item_list] == [(7, "FAILURE")]
    assert c.branch_targets() == {"conditionResult/successNode": [1], "conditionResult/failedNode": [2]}
    # sqlType as the UI sends it; statements as a JSON string or one plain statement; "null" is none.
    q = SqlParams.of({"sqlType": "0", "preStatements": '["a", " "]', "postStatements": "analyze t"})
    assert q.is_query and q.pre_statements == ["a"] and q.post_statements == ["analyze t"]
    assert SqlParams.of({"sqlType": "NON_QUERY", "preStatements": "null"}).pre_statements == []
    assert DataxParams.of({"sourceConfig": '{"path": "/x"}', "targetConfig": "null"}).source_config == {"path": "/x"}
    # A script stays text: the string "null" in a script is not "no script".
    assert ScriptParams.of({"rawScript": "null"}).script == "null"
    assert ScriptParams.of({"rawScript": None}).script == ""


def test_a_code_that_is_not_a_number_is_kept_as_an_unknown_target() -> None:
    s = SwitchParams.of({"switchResult": {"dependTaskList": [{"condition": "x", "nextNode": ["abc"]}, "junk"]}})
    assert s.branch_targets()["switchResult/dependTaskList/0/nextNode"] == [-1]
    assert s.problems() == [("switchResult/dependTaskList/1/condition", "a switch branch needs a condition")]


def test_leftover_keys_are_kept_not_refused() -> None:
    raw = {"rawScript": "echo", "dependence": {}, "conditionResult": "null", "switchResult": {"x": 1},
           "waitStartTimeout": None, "localParams": [], "resourceList": []}
    p = ScriptParams.of(raw)
    assert p.model_extra == {"dependence": {}, "conditionResult": "null", "switchResult": {"x": 1},
                             "waitStartTimeout": None}
    assert p.script == "echo" and p.problems() == []


def test_parsing_leaves_the_raw_params_that_travel_untouched() -> None:
    """The raw dict is what workflow inputs and activity requests carry: histories must replay."""
    doc = json.loads((SAMPLES / "ds-demo-v32-switch-global-param.json").read_text())
    (d,) = parse_document(doc)
    before = d.model_dump(mode="json")
    for t in d.tasks:
        assert t.params is not None
    assert d.model_dump(mode="json") == before


def test_dependent_params_use_the_dependence_parser() -> None:
    p = DependentParams.of({"dependence": {"relation": "or", "checkInterval": "30", "dependTaskList": [
        {"dependItemList": [{"definitionCode": "5", "dateValue": "today"}]}]}})
    assert p.dependence is not None and p.dependence.relation is Relation.OR and p.dependence.check_interval == 30
    assert DependentParams.of({"dependence": "null"}).dependence is None
    assert DependentParams.of({}).problems() == [("dependence", "dependence.dependTaskList is required")]
    flat = DependentParams.of({"dependTaskList": [{"dependItemList": [{"definitionCode": 5}]}]})
    assert flat.dependence is not None and len(flat.dependence.groups) == 1


# -- wrong types -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("cls", "raw", "path", "message"), [
    (SqlParams, {"limit": "many"}, "limit", "limit must be a number, got 'many'"),
    (SqlParams, {"datasource": "abc"}, "datasource", "datasource must be a datasource id, got 'abc'"),
    (SqlParams, {"sqlType": "2"}, "sqlType", "sqlType must be 0 (query) or 1 (non-query), got '2'"),
    (SqlParams, {"preStatements": [1]}, "preStatements", "preStatements must be a list of SQL strings"),
    (DataxParams, {"jobSpeedRecord": "fast"}, "jobSpeedRecord", "jobSpeedRecord must be a whole number, got 'fast'"),
    (DataxParams, {"xmx": True}, "xmx", "xmx must be a whole number, got True"),
    (DataxParams, {"sourceConfig": "{oops"}, "sourceConfig", "sourceConfig must be a JSON object"),
    (HttpParams, {"socketTimeout": "soon"}, "socketTimeout", "socketTimeout must be a number of milliseconds"),
    (HttpParams, {"httpParams": ["x"]}, "httpParams", "HTTP parameter must be an object, got str"),
    (ScriptParams, {"rawScript": {"a": 1}}, "rawScript", "rawScript must be text"),
    (SubProcessParams, {"processDefinitionCode": "abc"}, "processDefinitionCode",
     "processDefinitionCode must be a workflow definition code, got 'abc'"),
    (DependentParams, {"dependence": {"relation": "XOR"}}, "dependence",
     "dependence: relation must be AND or OR, got 'XOR'"),
])
def test_a_wrong_type_is_refused_naming_the_field(cls: type[TaskParams], raw: dict[str, Any], path: str,
                                                  message: str) -> None:
    with pytest.raises(TaskParamsError) as e:
        cls.of(raw)
    ((where, text),) = e.value.problems
    assert where == path and text.startswith(message)
    assert message in str(e.value)


def test_submit_names_the_task_and_field_of_a_wrong_type() -> None:
    doc = json.loads((SAMPLES / "ds-export-v32-shell-minimal.json").read_text())
    task = doc[0]["taskDefinitionList"][0]
    task["taskType"] = "SQL"
    task["taskParams"] = {"sql": "select 1", "datasource": 1, "limit": "many"}
    with pytest.raises(DefinitionError) as e:
        parse_document(doc)
    (p,) = [p.as_dict() for p in e.value.problems]
    assert p["code"] == "type" and p["task"] == task["name"]
    assert p["pointer"].endswith("/taskDefinitionList/0/taskParams/limit")
    assert "limit must be a number, got 'many'" in p["message"]


# -- every shared sample ---------------------------------------------------------------------------

@pytest.mark.parametrize("path", DEFINITION_SAMPLES, ids=lambda p: p.name)
def test_every_shared_sample_task_parses_to_its_model(path: Path) -> None:
    for d in parse_document(json.loads(path.read_text())):
        for t in d.tasks:
            params = t.params
            assert isinstance(params, BY_TYPE.get(t.task_type, TaskParams))
            assert params.problems() == []


def test_the_shared_sql_task_params_fixtures_parse() -> None:
    fixtures = json.loads((SAMPLES / "ds-taskparams-v32-sql-test-fixtures.json").read_text())["variants"]
    datasources = []
    for v in fixtures:
        for raw in (v["taskParams"], json.loads(v["taskParamsRaw"])):
            p = SqlParams.of(raw)
            assert p.sql and p.is_query
            assert p.model_extra is not None and "dependence" in p.model_extra  # legacy keys kept
        datasources.append(p.datasource)
    assert datasources == [1, 1, None]  # an int, the string "1", and null
    assert SqlParams.of(fixtures[0]["taskParams"]).declared_types() == {"test1": "VARCHAR"}
