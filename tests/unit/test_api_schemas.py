"""Every native route's 2xx answer has a real schema in /openapi.json, camelCase throughout; and the
API's response models keep up with the Temporal contracts they map (issue 11 item 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from api.app import create_app
from core.contracts import AlertNote, InstanceStatus, NodeStatus
from core.contracts.alerts import AlertResult, ChannelOutcome
from core.contracts.complement import ComplementStatus
from core.settings import Settings
from model.definition import Schedule, TaskDefinition, WorkflowDefinition
from services import schemas
from services.schemas import ApiModel, shape

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp: Path = tmp_path_factory.mktemp("openapi")
    app = create_app(Settings(data_dir=tmp, database_url=f"sqlite:///{tmp / 'p.db'}"))
    return app.openapi()


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _bare(schema: dict[str, Any]) -> bool:
    """An object the reader learns nothing from: no properties (maybe additionalProperties only)."""
    return not schema or (schema.get("type") == "object" and not schema.get("properties"))


def _native_responses(spec: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    out = []
    for path, ops in spec["paths"].items():
        if path.startswith("/dolphinscheduler"):
            continue
        for method, op in ops.items():
            for code, resp in op.get("responses", {}).items():
                if code.startswith("2") and code != "204":
                    out.append((method.upper(), path, code, resp.get("content")))
    return out


def test_every_native_2xx_response_has_a_schema(spec: dict[str, Any]) -> None:
    responses = _native_responses(spec)
    assert len(responses) > 50  # every router is in the app
    bad = []
    for method, path, code, content in responses:
        if not content:
            bad.append(f"{method} {path} {code}: no content")
            continue
        for media, body in content.items():
            schema = _resolve(spec, body.get("schema") or {})
            if schema.get("type") == "array":
                schema = _resolve(spec, schema.get("items") or {})
            if media.startswith("text/"):
                continue
            if _bare(schema):
                bad.append(f"{method} {path} {code}: {media} is a bare object {schema}")
    assert not bad, "\n".join(bad)


def test_bodies_parsed_by_the_routes_themselves_are_documented(spec: dict[str, Any]) -> None:
    """Routes that read the body themselves (DS formats, 422 problems of their own) still document it."""
    for method, path, field in [("post", "/definitions", None), ("post", "/datasources", "userName"),
                                ("put", "/datasources/{datasource_id}", "clearPassword"),
                                ("post", "/alert-groups", "name"),
                                ("post", "/alert-groups/{group_id}/channels", "templates"),
                                ("put", "/alert-channels/{channel_id}", "clearSecrets"),
                                ("post", "/codec/decode", None)]:
        schema = _resolve(spec, spec["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"])
        assert schema, (method, path)
        if field:
            assert field in schema["properties"], (method, path)
    bare = [(m, p) for p, ops in spec["paths"].items() if not p.startswith("/dolphinscheduler")
            for m, op in ops.items() for body in (op.get("requestBody") or {}).get("content", {}).values()
            if "$ref" in str(body.get("schema")) and _bare(_resolve(spec, body["schema"]))]
    assert not bare


def _property_names(spec: dict[str, Any], schema: dict[str, Any], seen: set[str]) -> set[str]:
    """Every property name reachable from ``schema`` (through refs, arrays, unions, maps)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in seen:
            return set()
        seen.add(name)
    schema = _resolve(spec, schema)
    names = set()
    for prop, sub in (schema.get("properties") or {}).items():
        names.add(prop)
        names |= _property_names(spec, sub, seen)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            names |= _property_names(spec, schema[key], seen)
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key) or []:
            names |= _property_names(spec, sub, seen)
    return names


def test_native_responses_are_camel_case(spec: dict[str, Any]) -> None:
    seen: set[str] = set()
    names: set[str] = set()
    for _, _, _, content in _native_responses(spec):
        for body in (content or {}).values():
            names |= _property_names(spec, body.get("schema") or {}, seen)
    assert {"instanceId", "taskType", "varPool", "subInstanceId", "temporalUiUrl"} <= names
    assert not [n for n in names if "_" in n]


@pytest.mark.parametrize(("view", "contract"), [
    (schemas.RunStatus, InstanceStatus), (schemas.NodeView, NodeStatus), (schemas.AlertNoteView, AlertNote),
    (schemas.DefinitionView, WorkflowDefinition), (schemas.TaskView, TaskDefinition),
    (schemas.ScheduleBlockView, Schedule), (schemas.TestSendResult, AlertResult),
    (schemas.ChannelOutcomeView, ChannelOutcome),
])
def test_views_keep_every_field_of_the_contract_they_show(view: type[ApiModel], contract: type[BaseModel]) -> None:
    """A field added to a contract must show in the API too (a response model drops unknown keys)."""
    assert set(contract.model_fields) <= set(view.model_fields)


def test_complement_view_covers_the_complement_status() -> None:
    shown = set(schemas.ComplementView.model_fields) | {"dates", "states"}  # dates and states: one list
    assert set(ComplementStatus.model_fields) <= shown


def test_requests_take_camel_and_snake_case_and_responses_give_camel_case() -> None:
    assert schemas.NewToken.model_validate({"name": "u", "expiresDays": 2}).expires_days == 2
    assert schemas.NewToken.model_validate({"name": "u", "expires_days": 2}).expires_days == 2
    assert schemas.TaskGroup.model_validate({"name": "g", "group_size": 3}).group_size == 3
    assert schemas.StartRun.model_validate({"dry_run": True, "startParams": {"a": 1}}).dry_run is True
    from services.alerts import Preview
    from services.schedules import ScheduleBody

    for body in ({"timezoneId": "UTC", "misfirePolicy": "SKIP_MISSED"},
                 {"timezone_id": "UTC", "misfire_policy": "SKIP_MISSED"}):
        assert ScheduleBody.model_validate(body).fields() == {"timezone_id": "UTC", "misfire_policy": "SKIP_MISSED"}
    assert Preview.model_validate({"runId": "r", "task_code": 3}).task_code == 3
    node = {"code": 1, "name": "a", "task_type": "SHELL", "state": "SUCCESS", "var_pool": [{"prop": "x"}]}
    shown = shape(schemas.NodeView, node)
    assert shown["taskType"] == "SHELL" and shown["varPool"][0]["prop"] == "x" and "task_type" not in shown
    assert shape(schemas.NodeView, [node, shown]) == [shown, shown]  # what the API sent reads back the same


def test_a_definition_view_reads_back_into_the_model() -> None:
    """What GET /definitions/{code} sends maps back to the WorkflowDefinition it came from (bench does)."""
    from model.definition import Relation

    task = TaskDefinition(code=2, name="a", task_type="SHELL", task_params={"rawScript": "true", "localParams": []},
                          timeout_enabled=True)
    d = WorkflowDefinition(code=1, name="x", project_code=7, tasks=(task,), schedule=Schedule(crontab="0 0 * * * ? *"),
                           relations=(Relation(pre_task_code=0, post_task_code=2),))
    sent = shape(schemas.DefinitionView, d.model_dump(mode="json"))
    assert sent["projectCode"] == 7 and sent["tasks"][0]["taskParams"] == {"rawScript": "true", "localParams": []}
    assert sent["tasks"][0]["timeoutEnabled"] is True and sent["schedule"]["timezoneId"] == "UTC"
    assert WorkflowDefinition.model_validate(schemas.DefinitionView.model_validate(sent).model_dump()) == d
