"""Will a run of a definition fit in Temporal's payloads? Refuse it at submit if not (issue 16).

A run moves its whole definition and its whole node status through single Temporal payloads, each
capped by the server (``limit.blobSize.error``, 2 MiB by default; a bigger one fails the command that
carries it, and the run can never start or never end):

* the definition: in the run's input up to 128 KiB, above that as the result of the
  ``load_definition`` activity (a by-reference run, a SUB_PROCESS child, every continue-as-new);
* the status, one :class:`NodeStatus` per task: the run's result (or its failure's details), the
  state a continue-as-new carries, and the ``status`` query.

So a definition is runnable only if both fit in ``limit`` with a margin for what grows at run time
(error messages, varPool). The node status is estimated with every field a finished node fills in.
Sizes are what travels: the JSON as the payload codec compresses and encrypts it (core/codec.py),
since the server's limit applies to the encoded payload.
"""

from __future__ import annotations

import json
import weakref
from dataclasses import dataclass
from datetime import UTC, datetime

from model.definition import FailureStrategy, WorkflowDefinition
from model.states import TaskState, WorkflowState

from .codec import pack
from .contracts import InstanceStatus, NodeStatus

ENVELOPE = 96  # bytes the codec adds around the compressed JSON: nonce, GCM tag, metadata
MARGIN = 0.9  # of the limit; the rest is room for errors and varPools that only exist at run time
_T = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Footprint:
    """Bytes of the definition and of a finished run's status, as they travel (compressed), and the
    characters of the definition's JSON (services/runs.py: what decides a run by reference)."""
    definition_bytes: int
    status_bytes: int
    definition_chars: int


def encoded_size(raw: bytes) -> int:
    """What ``raw`` JSON weighs in Temporal once the payload codec has compressed and encrypted it."""
    return len(pack(raw) or raw) + ENVELOPE


def _node(code: int, name: str, task_type: str, log_dir: str) -> NodeStatus:
    return NodeStatus(code=code, name=name, task_type=task_type, state=TaskState.SUCCESS, attempts=1,
                      max_attempts=1, start_time=_T, end_time=_T, host="h" * 64, pid=4_194_304,
                      log_path=f"{log_dir}/ds-{code}-20260101000000-00000000/{code}.1.log")


_CODE = 987_654_321_012_345  # placeholders of the one node serialised as a template


def footprint(definition: WorkflowDefinition, log_dir: str) -> Footprint:
    """What a run of ``definition`` moves. Every run start asks this of the definition it loaded, and
    stored definitions are parsed once (storage/definitions.py: parse), so the answer is kept for as
    long as that model object lives."""
    key = (id(definition), log_dir)
    hit = _measured.get(key)
    if hit is not None and hit[0]() is definition:
        return hit[1]
    size = _measure(definition, log_dir)

    def forget(_: object) -> None:  # runs as the object goes, before its id can be reused
        _measured.pop(key, None)

    _measured[key] = (weakref.ref(definition, forget), size)
    return size


_measured: dict[tuple[int, str], tuple[weakref.ref[WorkflowDefinition], Footprint]] = {}


def _measure(definition: WorkflowDefinition, log_dir: str) -> Footprint:
    empty = InstanceStatus(instance_id=f"ds-{definition.code}-20260101000000-00000000",
                           definition_code=definition.code, definition_name=definition.name,
                           definition_version=definition.version, project_code=definition.project_code,
                           state=WorkflowState.SUCCESS, failure_strategy=FailureStrategy.CONTINUE,
                           start_time=_T, end_time=_T)
    # Every node is one template with its code, name and type filled in (text, not models: 20,000
    # tasks cost no validation), so the estimate compresses like the real status does.
    template = _node(_CODE, "\x01", "\x02", log_dir).model_dump_json()
    code, name, kind = str(_CODE), json.dumps("\x01"), json.dumps("\x02")
    nodes = [template.replace(code, str(t.code)).replace(name, json.dumps(t.name, ensure_ascii=False))
             .replace(kind, json.dumps(t.task_type)) for t in definition.tasks]
    status = (empty.model_dump_json() + ",".join(nodes)).encode()
    text = definition.model_dump_json()
    return Footprint(encoded_size(text.encode()), encoded_size(status), len(text))


def refusal(definition: WorkflowDefinition, limit: int, log_dir: str) -> str | None:
    """Why a run of ``definition`` could not start or end within Temporal's payload limit, or None."""
    size = footprint(definition, log_dir)
    budget = int(limit * MARGIN)
    for what, n in (("definition", size.definition_bytes),
                    (f"status of its {len(definition.tasks)} task nodes", size.status_bytes)):
        if n > budget:
            return (f"a run of this definition cannot fit in Temporal: its {what} takes {n:,} bytes compressed, "
                    f"over {budget:,} ({MARGIN:.0%} of the {limit:,}-byte payload limit, "
                    "temporal_payload_limit_bytes). Split it into SUB_PROCESS definitions")
    return None
