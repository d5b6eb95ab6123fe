"""The one JSON convention of the native API: camelCase on the wire, snake_case in Python.

Every request and response model of the native routes derives from :class:`ApiModel`. Responses
serialize camelCase (as DolphinScheduler and its clients write); request bodies accept the camelCase
names and, for the clients written before the convention, the snake_case field names too.
Temporal contracts (core/contracts/) keep their own field names: running workflows' payloads and
queries depend on them, so the API maps them into these models instead of renaming them.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.alias_generators import to_camel

from model.json_limits import INT64_MAX, INT64_MIN

Long = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]  # DS ids and codes are Java longs


class ApiModel(BaseModel):
    """camelCase JSON names (``alias_generator``), snake_case accepted as well (``populate_by_name``)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


M = TypeVar("M", bound=BaseModel)


def shape(model: type[M], value: Any) -> Any:
    """``value`` (a dict, or a list of them) as the API sends it: validated into ``model`` and dumped
    camelCase. The CLI prints its ``--json`` output through this, so it shows what the route's
    response model shows."""
    if isinstance(value, list):
        return TypeAdapter(list[model]).dump_python(  # type: ignore[valid-type]
            TypeAdapter(list[model]).validate_python(value), mode="json", by_alias=True)  # type: ignore[valid-type]
    return model.model_validate(value).model_dump(mode="json", by_alias=True)


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _inline(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inline(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline(v, defs) for v in node]
    return node


def request_body(model: type[BaseModel], *, description: str = "") -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body that a route parses itself (to answer its own 422
    problems): ``model``'s schema, camelCase, its definitions inlined."""
    schema = model.model_json_schema(by_alias=True)
    body: dict[str, Any] = {"required": True, "content": {"application/json": {"schema": _inline(
        schema, schema.get("$defs", {}))}}}
    if description:
        body["description"] = description
    return {"requestBody": body}
