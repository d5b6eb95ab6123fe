"""Parameters of the logic tasks the workflow decides itself: CONDITIONS, SWITCH, SUB_PROCESS, DEPENDENT.

Parsing these never fails on a shape DS or its UI really stores (the workflow reads them while it runs,
and a stored definition must keep running): entries that are not objects are skipped, a code that is
not a number becomes -1 (refused by validation as "not a task of this workflow"). DEPENDENT is the
exception: its dependence is parsed by :func:`model.dependent.parse_dependence`, and one that cannot
run is refused naming what is wrong.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, model_validator

from model.dependent import Dependence, parse_dependence

from .base import Codes, DefinitionCode, Lax, TaskParams, decoded, is_null, whole_error


def _int_or_zero(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _name(default: str) -> Any:
    def convert(value: Any) -> str:
        return default if is_null(value) else str(value).strip().upper()
    return convert


def _objects(value: Any) -> list[Any]:
    """A list of DS objects; entries that are not objects are dropped (the UI leaves such debris)."""
    value = decoded(value)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _object(value: Any) -> Any:
    value = decoded(value)
    return value if isinstance(value, dict) else None


# -- CONDITIONS -------------------------------------------------------------------------------------

class ConditionItem(Lax):
    """``{depTaskCode, status}``: an upstream task of this workflow and the state it must have ended in."""

    dep_task_code: Annotated[int, BeforeValidator(_int_or_zero)] = Field(default=0, alias="depTaskCode")
    status: Annotated[str, BeforeValidator(_name("SUCCESS"))] = "SUCCESS"


class ConditionGroup(Lax):
    relation: Annotated[str, BeforeValidator(_name("AND"))] = "AND"
    depend_item_list: Annotated[list[ConditionItem], BeforeValidator(_objects)] = Field(
        default_factory=list, alias="dependItemList")


class ConditionDependence(Lax):
    relation: Annotated[str, BeforeValidator(_name("AND"))] = "AND"
    depend_task_list: Annotated[list[ConditionGroup], BeforeValidator(_objects)] = Field(
        default_factory=list, alias="dependTaskList")


class ConditionResult(Lax):
    success_node: Codes = Field(default_factory=list, alias="successNode")
    failed_node: Codes = Field(default_factory=list, alias="failedNode")


class ConditionsParams(TaskParams):
    """CONDITIONS (§4.7): compare upstream states, then take ``successNode`` or ``failedNode``."""

    task_types: ClassVar[tuple[str, ...]] = ("CONDITIONS",)

    dependence: Annotated[ConditionDependence, BeforeValidator(lambda v: _object(v) or {})] = Field(
        default_factory=ConditionDependence)
    condition_result: Annotated[ConditionResult | None, BeforeValidator(_object)] = Field(
        default=None, alias="conditionResult")

    def branch_targets(self) -> dict[str, list[int]]:
        if self.condition_result is None:
            return {}
        return {"conditionResult/successNode": list(self.condition_result.success_node),
                "conditionResult/failedNode": list(self.condition_result.failed_node)}

    def problems(self) -> list[tuple[str, str]]:
        if self.condition_result is None:
            return [("conditionResult", "conditionResult {successNode, failedNode} is required")]
        return []


# -- SWITCH -----------------------------------------------------------------------------------------

def _branches(value: Any) -> list[Any]:
    """Branches keep their positions (validation names ``dependTaskList/<i>``); a non-object is None."""
    value = decoded(value)
    return [v if isinstance(v, dict) else None for v in value] if isinstance(value, list) else []


class SwitchBranch(Lax):
    condition: Annotated[str, BeforeValidator(lambda v: "" if v is None else str(v))] = ""
    next_node: Codes = Field(default_factory=list, alias="nextNode")


class SwitchResult(Lax):
    depend_task_list: Annotated[list[SwitchBranch | None], BeforeValidator(_branches)] = Field(
        default_factory=list, alias="dependTaskList")
    next_node: Codes = Field(default_factory=list, alias="nextNode")  # the default branch


def first_code(codes: list[int]) -> int | None:
    """SWITCH ``nextNode``: a code, or a list of one in 3.2 (§3)."""
    return codes[0] if codes else None


class SwitchParams(TaskParams):
    """SWITCH (§4.8): the first branch whose JavaScript condition is true, else ``nextNode``."""

    task_types: ClassVar[tuple[str, ...]] = ("SWITCH",)

    switch_result: Annotated[SwitchResult | None, BeforeValidator(_object)] = Field(
        default=None, alias="switchResult")

    def branches(self) -> list[tuple[str, int | None]]:
        """Conditions in order with their target (the default branch is :meth:`default_branch`)."""
        if self.switch_result is None:
            return []
        return [(b.condition, first_code(b.next_node)) for b in self.switch_result.depend_task_list if b is not None]

    def default_branch(self) -> int | None:
        return first_code(self.switch_result.next_node) if self.switch_result is not None else None

    def branch_targets(self) -> dict[str, list[int]]:
        r = self.switch_result
        if r is None:
            return {}
        out = {"switchResult/nextNode": list(r.next_node)}
        for i, b in enumerate(r.depend_task_list):
            if b is not None:
                out[f"switchResult/dependTaskList/{i}/nextNode"] = list(b.next_node)
        return out

    def problems(self) -> list[tuple[str, str]]:
        if self.switch_result is None:
            return [("switchResult", "switchResult {dependTaskList, nextNode} is required")]
        return [(f"switchResult/dependTaskList/{i}/condition", "a switch branch needs a condition")
                for i, b in enumerate(self.switch_result.depend_task_list) if b is None or not b.condition.strip()]


# -- SUB_PROCESS ------------------------------------------------------------------------------------

class SubProcessParams(TaskParams):
    """SUB_PROCESS (3.2 ``processDefinitionCode``) / SUB_WORKFLOW (3.3 ``workflowDefinitionCode``)."""

    task_types: ClassVar[tuple[str, ...]] = ("SUB_PROCESS",)

    process_definition_code: DefinitionCode = Field(default=None, alias="processDefinitionCode")
    workflow_definition_code: DefinitionCode = Field(default=None, alias="workflowDefinitionCode")

    @property
    def definition_code(self) -> int:
        return self.process_definition_code or self.workflow_definition_code or 0

    def problems(self) -> list[tuple[str, str]]:
        if self.definition_code > 0:
            return []
        return [("processDefinitionCode", "processDefinitionCode (or workflowDefinitionCode) is required")]


# -- DEPENDENT --------------------------------------------------------------------------------------

class DependentParams(TaskParams):
    """DEPENDENT (§4.10): ``{"dependence": {...}}`` (3.2 export), or the same keys at the top level
    (3.2.0's flattened ``DependentParameters``). None when neither is there."""

    task_types: ClassVar[tuple[str, ...]] = ("DEPENDENT",)

    dependence: Dependence | None = None

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, data: Any) -> Any:
        if not isinstance(data, dict) or isinstance(data.get("dependence"), Dependence):
            return data
        present = not is_null(data.get("dependence")) or "dependTaskList" in data
        try:
            dependence = parse_dependence(data) if present else None
        except ValueError as e:
            raise whole_error(f"dependence: {e}", "dependence") from None
        return {k: v for k, v in data.items() if k != "dependence"} | {"dependence": dependence}

    def problems(self) -> list[tuple[str, str]]:
        if self.dependence is None or not self.dependence.groups:
            return [("dependence", "dependence.dependTaskList is required")]
        return []
