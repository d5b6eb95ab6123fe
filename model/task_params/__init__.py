"""Typed task parameters: one model per task type, parsed from DS's loose ``taskParams`` JSON.

:func:`parse_params` is the one way to read a task's parameters, used by validation, the workflow
(logic tasks) and the activities (``XParams.of(request.task_params)``). Types Porpoise recognises but
does not run (``model.task_types.RECOGNISED``) get the lax :class:`TaskParams` base.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import TaskParams, TaskParamsError
from .datax import DataxParams
from .http import HttpParams, HttpProperty
from .logic import (
    ConditionDependence,
    ConditionGroup,
    ConditionItem,
    ConditionResult,
    ConditionsParams,
    DependentParams,
    SubProcessParams,
    SwitchBranch,
    SwitchParams,
    SwitchResult,
)
from .script import ScriptParams
from .sql import SqlParams

MODELS: tuple[type[TaskParams], ...] = (
    ScriptParams, HttpParams, SqlParams, DataxParams,
    ConditionsParams, SwitchParams, SubProcessParams, DependentParams,
)
BY_TYPE: dict[str, type[TaskParams]] = {t: m for m in MODELS for t in m.task_types}


def model_for(task_type: str) -> type[TaskParams]:
    return BY_TYPE.get(task_type.upper(), TaskParams)


def parse_params(task_type: str, raw: Mapping[str, Any] | TaskParams | None) -> TaskParams:
    """The typed parameters of a task of ``task_type``; TaskParamsError naming each bad field."""
    return model_for(task_type).of(raw)


__all__ = [
    "BY_TYPE",
    "MODELS",
    "ConditionDependence",
    "ConditionGroup",
    "ConditionItem",
    "ConditionResult",
    "ConditionsParams",
    "DataxParams",
    "DependentParams",
    "HttpParams",
    "HttpProperty",
    "ScriptParams",
    "SqlParams",
    "SubProcessParams",
    "SwitchBranch",
    "SwitchParams",
    "SwitchResult",
    "TaskParams",
    "TaskParamsError",
    "model_for",
    "parse_params",
]
