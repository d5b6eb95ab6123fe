"""Parsing and validation over every shared sample, generated pydolphinscheduler output, and
malformed variants. Each bad case must name what is wrong and where."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from model.definition import Priority, TimeoutStrategy
from model.formats import parse_document, parse_text
from model.problems import DefinitionError
from tests.samples import SAMPLES

DEFINITION_SAMPLES = sorted(p for p in SAMPLES.glob("*.json") if "taskparams" not in p.name)


def problems_of(doc: Any) -> list[dict[str, Any]]:
    with pytest.raises(DefinitionError) as e:
        parse_document(doc)
    return [p.as_dict() for p in e.value.problems]


@pytest.mark.parametrize("path", DEFINITION_SAMPLES, ids=lambda p: p.name)
def test_every_shared_sample_parses(path: Path) -> None:
    definitions = parse_document(json.loads(path.read_text()))
    assert definitions
    for d in definitions:
        assert d.name and d.tasks and d.relations


def test_v32_and_v33_exports_normalise_to_the_same_model() -> None:
    v32 = parse_document(json.loads((SAMPLES / "ds-export-v32-shell-minimal.json").read_text()))[0]
    v33 = parse_document(json.loads((SAMPLES / "ds-export-v33-shell-minimal.json").read_text()))[0]
    assert v32.model_dump(exclude={"source_format"}) == v33.model_dump(exclude={"source_format"})
    assert v32.source_format == "export 3.1/3.2" and v33.source_format == "export 3.3"


def test_create_api_tolerance_numbers_as_strings_ordinals_and_empty_enums() -> None:
    doc = json.loads((SAMPLES / "ds-create-api-v32-two-shell-test-fixture.json").read_text())
    tasks = json.loads(doc["taskDefinitionJson"])
    tasks[0].update(failRetryTimes="2", failRetryInterval="3", delayTime="1", taskPriority=1,
                    timeoutNotifyStrategy="", timeoutFlag="OPEN", timeout="5")
    tasks[0]["taskParams"] = json.dumps(tasks[0]["taskParams"])  # taskParams as a string
    doc["taskDefinitionJson"] = json.dumps(tasks)
    d = parse_document(doc)[0]
    t = d.task(tasks[0]["code"])
    assert (t.fail_retry_times, t.fail_retry_interval, t.delay_time, t.timeout) == (2, 3, 1, 5)
    assert t.task_priority is Priority.HIGH
    assert t.timeout_strategy is None and t.timeout_enabled
    assert t.task_params["rawScript"]


def test_single_export_object_and_3_3_sub_workflow_keys() -> None:
    item = json.loads((SAMPLES / "ds-export-v33-shell-minimal.json").read_text())[0]
    task = item["taskDefinitionList"][0]
    task["taskType"] = "SUB_WORKFLOW"
    task["taskParams"] = {"workflowDefinitionCode": 123456789012}
    d = parse_document(item)[0]
    assert d.tasks[0].task_type == "SUB_PROCESS"
    assert d.tasks[0].task_params["processDefinitionCode"] == 123456789012


def test_pydolphinscheduler_get_define_output() -> None:
    import itertools

    from pydolphinscheduler.core import task as pyds_task

    codes = itertools.count(1000000000001)
    pyds_task.Task.gen_code_and_version = lambda self: (next(codes), 1)  # offline: no Java gateway
    from pydolphinscheduler.core.workflow import Workflow
    from pydolphinscheduler.tasks.shell import Shell

    with Workflow(name="pyds", param={"g": "1"}) as wf:
        a = Shell(name="a", command="echo a")
        b = Shell(name="b", command="echo ${g}")
        a >> b
        define = json.loads(json.dumps(wf.get_define(), default=str))
    d = parse_document(define)[0]
    assert d.source_format == "pydolphinscheduler"
    assert [t.name for t in d.tasks] == ["a", "b"]
    assert d.global_params[0].prop == "g" and d.global_params[0].value == "1"
    assert (1000000000001, 1000000000002) in [(r.pre_task_code, r.post_task_code) for r in d.relations]


def _export() -> list[dict[str, Any]]:
    return copy.deepcopy(json.loads((SAMPLES / "ds-export-v32-shell-minimal.json").read_text()))


def _chain_export() -> list[dict[str, Any]]:
    doc = _export()
    base = doc[0]["taskDefinitionList"][0]
    t2 = copy.deepcopy(base) | {"code": 2222222222222, "name": "second"}
    t3 = copy.deepcopy(base) | {"code": 3333333333333, "name": "third"}
    doc[0]["taskDefinitionList"] += [t2, t3]
    rel = doc[0]["processTaskRelationList"][0]
    doc[0]["processTaskRelationList"] += [
        copy.deepcopy(rel) | {"preTaskCode": base["code"], "postTaskCode": 2222222222222},
        copy.deepcopy(rel) | {"preTaskCode": 2222222222222, "postTaskCode": 3333333333333},
    ]
    return doc


def test_cycle_is_refused_and_named() -> None:
    doc = _chain_export()
    rel = copy.deepcopy(doc[0]["processTaskRelationList"][0])
    doc[0]["processTaskRelationList"].append(rel | {"preTaskCode": 3333333333333,
                                                      "postTaskCode": 2222222222222})
    (p,) = [p for p in problems_of(doc) if p["code"] == "cycle"]
    assert "second" in p["message"] and "third" in p["message"]
    assert p["pointer"] == "/0/processTaskRelationList"


def test_relation_naming_unknown_code() -> None:
    doc = _export()
    doc[0]["processTaskRelationList"].append({"preTaskCode": 999, "postTaskCode": 9752684723008})
    (p,) = problems_of(doc)
    assert p["code"] == "unknown-code" and p["pointer"] == "/0/processTaskRelationList/1/preTaskCode"


def test_duplicate_codes_and_names() -> None:
    doc = _chain_export()
    doc[0]["taskDefinitionList"][2]["name"] = "second"
    doc[0]["taskDefinitionList"][2]["code"] = 2222222222222
    kinds = {(p["code"], p["task"]) for p in problems_of(doc)}
    assert ("duplicate", "second") in kinds


def test_unknown_task_type_lists_supported() -> None:
    doc = _export()
    doc[0]["taskDefinitionList"][0]["taskType"] = "TELEPORT"
    (p,) = problems_of(doc)
    assert p["pointer"] == "/0/taskDefinitionList/0/taskType" and p["task"] == "test"
    assert "SHELL" in p["message"] and "TELEPORT" in p["message"]


@pytest.mark.parametrize(
    ("task_type", "params", "key"),
    [
        ("SHELL", {"rawScript": ""}, "rawScript"),
        ("PYTHON", {}, "rawScript"),
        ("HTTP", {"url": ""}, "url"),
        ("HTTP", {"url": "http://x", "httpMethod": "BREW"}, "httpMethod"),
        ("SQL", {"sql": "select 1"}, "datasource"),
        ("SUB_PROCESS", {}, "processDefinitionCode"),
        ("DATAX", {"customConfig": 1}, "json"),
        ("SWITCH", {}, "switchResult"),
        ("CONDITIONS", {}, "conditionResult"),
        ("DEPENDENT", {"dependence": {}}, "dependence"),
    ],
)
def test_missing_required_params_per_type(task_type: str, params: dict[str, Any], key: str) -> None:
    doc = _export()
    doc[0]["taskDefinitionList"][0].update(taskType=task_type, taskParams=params)
    pointers = [p["pointer"] for p in problems_of(doc)]
    assert f"/0/taskDefinitionList/0/taskParams/{key}" in pointers


def test_malformed_json_strings_in_create_api_form() -> None:
    doc = json.loads((SAMPLES / "ds-create-api-v32-two-shell-test-fixture.json").read_text())
    doc["taskDefinitionJson"] = doc["taskDefinitionJson"][:-5]
    doc["globalParams"] = "[{"
    pointers = {p["pointer"] for p in problems_of(doc)}
    assert {"/taskDefinitionJson", "/globalParams"} <= pointers


def test_malformed_document_and_size_limit() -> None:
    with pytest.raises(DefinitionError) as e:
        parse_text("{not json")
    assert e.value.problems[0].code == "malformed-json"
    with pytest.raises(DefinitionError) as e:
        parse_text(json.dumps(_export()), max_bytes=100)
    assert e.value.problems[0].code == "too-large"
    assert problems_of({"hello": "world"})[0]["code"] == "format"


def test_task_in_no_relation_is_reported_not_dropped() -> None:
    doc = _chain_export()
    doc[0]["processTaskRelationList"].pop()  # `third` loses its only relation
    (p,) = problems_of(doc)
    assert p["code"] == "unlinked" and p["task"] == "third"


def test_branch_target_must_exist() -> None:
    doc = json.loads((SAMPLES / "ds-demo-v32-switch-global-param.json").read_text())
    tasks = json.loads(doc["taskDefinitionJson"])
    tasks[0]["taskParams"]["switchResult"]["nextNode"] = 1234567890123
    doc["taskDefinitionJson"] = json.dumps(tasks)
    (p,) = problems_of(doc)
    assert p["pointer"].endswith("/taskParams/switchResult/nextNode") and p["task"] == "switch node"


def test_every_problem_reported_at_once() -> None:
    doc = _chain_export()
    doc[0]["taskDefinitionList"][1]["taskType"] = "NOPE"
    doc[0]["taskDefinitionList"][2]["taskParams"] = {"rawScript": ""}
    doc[0]["processTaskRelationList"].append({"preTaskCode": 5, "postTaskCode": 3333333333333})
    assert len(problems_of(doc)) == 3


def test_timeout_strategy_names() -> None:
    doc = _export()
    doc[0]["taskDefinitionList"][0].update(timeoutFlag="OPEN", timeout=1, timeoutNotifyStrategy=2)
    assert parse_document(doc)[0].tasks[0].timeout_strategy is TimeoutStrategy.WARNFAILED
