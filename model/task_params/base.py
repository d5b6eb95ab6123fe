"""The base of every task type's parameters, and the lax value types DS's loose JSON needs.

DS stores ``taskParams`` as loosely typed JSON: numbers arrive as strings (``"1"``), absent objects as
the string ``"null"``, nested objects as JSON strings, and the UI leaves keys of other task types
behind (``dependence``, ``conditionResult``, ``switchResult`` on a SHELL task). The models here accept
all of that: values are coerced where DS's own Jackson binding would coerce them, leftover keys are
kept (``model_extra``) and never refused. What cannot be read as the field's type is refused with an
error naming the field (``limit must be a number, got 'many'``).

The raw ``taskParams`` dict stays the stored and travelling form (definitions in the store, the
workflow input, the activity request), so histories recorded before these models existed replay
unchanged; the models are a typed view parsed from it where it is read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Annotated, Any, ClassVar, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from model.definition import DataType

# An error whose message is "<field path> <message>" (``message`` starts with "must ...").
FIELD_ERROR = "task_param"
# An error whose message is complete on its own (it names what is wrong).
WHOLE_ERROR = "task_param_whole"


class TaskParamsError(ValueError):
    """Task parameters that cannot be read as their type: one ``(path, message)`` per problem.

    ``path`` is the DS key path inside ``taskParams`` (``switchResult/dependTaskList/0/condition``);
    ``message`` names the field and what it got."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(message for _, message in problems))


def is_null(value: Any) -> bool:
    """DS's spellings of "no value" for a non-text field: null, "", "null"."""
    return value is None or (isinstance(value, str) and value.strip().lower() in ("", "null"))


def _got(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def field_error(what: str, value: Any) -> PydanticCustomError:
    """``<field> must be <what>, got <value>``; the field path is added by :func:`errors_of`."""
    return PydanticCustomError(FIELD_ERROR, "must be {what}, got {got}", {"what": what, "got": _got(value)})


def field_message(text: str) -> PydanticCustomError:
    """``<field> <text>``; the field path is added by :func:`errors_of`."""
    return PydanticCustomError(FIELD_ERROR, "{text}", {"text": text})


def whole_error(message: str, path: str = "") -> PydanticCustomError:
    """An error whose message says it all; ``path`` places it when the error is not on one field."""
    return PydanticCustomError(WHOLE_ERROR, "{message}", {"message": message, "path": path})


def to_int(what: str) -> Callable[[Any], int | None]:
    """A whole number; DS sends ``1``, ``"1"``, ``1.0``; null, "" and "null" are None."""

    def convert(value: Any) -> int | None:
        if is_null(value):
            return None
        if isinstance(value, bool):
            raise field_error(what, value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise field_error(what, value)

    return convert


def to_float(what: str) -> Callable[[Any], float | None]:
    def convert(value: Any) -> float | None:
        if is_null(value):
            return None
        if isinstance(value, bool):
            raise field_error(what, value)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise field_error(what, value)

    return convert


def to_text(value: Any) -> str | None:
    """Text as DS stores it. Only null is "no value": the string "null" in a script or a SQL text is
    text. Numbers and booleans become their text, as ``str()`` did before these models."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    raise field_error("text", value)


def to_upper(value: Any) -> str | None:
    """An enum-like name (``httpMethod``, ``dsType``): text, upper-cased and stripped; "" is None."""
    text = to_text(value)
    if text is None or is_null(text):
        return None
    return text.strip().upper()


def decoded(value: Any) -> Any:
    """A nested object DS may store as a JSON string (``"{}"``, ``"[...]"``); "null" and "" are None."""
    if is_null(value):
        return None
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def to_statements(value: Any) -> list[str]:
    """``preStatements``/``postStatements``: a list of SQL strings, a JSON string of one, or one plain
    statement as DS's UI sometimes saves it. Blank entries are dropped."""
    if is_null(value):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = [value]
        if value is None:
            return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise field_message("must be a list of SQL strings")
    return [v for v in value if v.strip()]


def to_object(value: Any) -> dict[str, Any]:
    """A JSON object, possibly stored as a JSON string; null, "" and "null" are ``{}``."""
    if is_null(value):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise field_message("must be a JSON object") from None
    if not isinstance(value, dict):
        raise field_message("must be a JSON object")
    return value


def to_codes(value: Any) -> list[int]:
    """Branch target lists (``successNode``, ``nextNode``): DS sends codes, sometimes as strings, a bare
    code instead of a list, and the UI leaves "" entries. A code that is not a number is kept as -1, so
    validation names it as a target that is not a task of the workflow."""
    value = decoded(value)
    items = value if isinstance(value, list) else [value]
    out = []
    for v in items:
        if v in (None, ""):
            continue
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            out.append(-1)
    return out


WholeNumber = Annotated[int | None, BeforeValidator(to_int("a whole number"))]
Number = Annotated[int | None, BeforeValidator(to_int("a number"))]  # SQL's wording
DatasourceId = Annotated[int | None, BeforeValidator(to_int("a datasource id"))]
DefinitionCode = Annotated[int | None, BeforeValidator(to_int("a workflow definition code"))]
Millis = Annotated[float | None, BeforeValidator(to_float("a number of milliseconds"))]
Text = Annotated[str | None, BeforeValidator(to_text)]
Upper = Annotated[str | None, BeforeValidator(to_upper)]
Statements = Annotated[list[str], BeforeValidator(to_statements)]
JsonObject = Annotated[dict[str, Any], BeforeValidator(to_object)]
Codes = Annotated[list[int], BeforeValidator(to_codes)]


class Lax(BaseModel):
    """A DS object inside ``taskParams``: DS key names, unknown keys kept, immutable."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


class TaskParams(Lax):
    """``AbstractParameters``: what every task type's parameters carry (reference §3).

    ``localParams`` stays raw here: :mod:`model.formats` reads it into typed
    :class:`~model.definition.Property` objects (``TaskDefinition.local_params``) and reports its
    problems with their positions."""

    task_types: ClassVar[tuple[str, ...]] = ()  # the DS task types these parameters belong to

    local_params: Any = Field(default=None, alias="localParams")
    resource_list: Any = Field(default=None, alias="resourceList")

    @classmethod
    def of(cls, raw: Mapping[str, Any] | TaskParams | None) -> Self:
        """Parse a raw ``taskParams`` dict (or pass a parsed one through); TaskParamsError if a field
        cannot be read as its type."""
        if isinstance(raw, cls):
            return raw
        if isinstance(raw, TaskParams):
            raw = raw.model_dump(by_alias=True, exclude_unset=True)
        try:
            return cls.model_validate(dict(raw or {}))
        except ValidationError as e:
            raise TaskParamsError(errors_of(e)) from None

    def problems(self) -> list[tuple[str, str]]:
        """What a definition must fix before it can be stored: ``(DS key path, message)``. Types are
        already checked by parsing; this is what each type requires (reference §3)."""
        return []

    def declared_types(self) -> dict[str, DataType]:
        """The DS type of each localParam that declares a valid one (SQL binding needs LIST and numbers)."""
        types: dict[str, DataType] = {}
        raw = decoded(self.local_params)
        for item in raw if isinstance(raw, list) else []:
            if isinstance(item, Mapping) and item.get("prop") and item.get("type"):
                try:
                    types[str(item["prop"])] = DataType(str(item["type"]).upper())
                except ValueError:
                    continue
        return types


def errors_of(error: ValidationError) -> list[tuple[str, str]]:
    """``(path, message)`` per pydantic error, with the DS key path and a message naming the field."""
    out = []
    for e in error.errors(include_url=False):
        path = "/".join(str(p) for p in e["loc"]) or str((e.get("ctx") or {}).get("path") or "")
        if e["type"] == FIELD_ERROR:
            message = f"{path} {e['msg']}"
        elif e["type"] == WHOLE_ERROR:
            message = e["msg"]
        else:
            msg = e["msg"].removeprefix("Value error, ")
            message = f"{path}: {msg}" if path else msg
        out.append((path, message))
    return out
