"""What every run start does with its definition, done once per definition version rather than once per
start: the stored JSON of a small version is validated once (storage/definitions.py: parse), and the
payload check's measure is kept while that model object lives (core/payload_budget.py: footprint).
Real SQLite stores; nothing is doubled."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from core import payload_budget
from model.definition import WorkflowDefinition
from model.formats import parse_document
from storage.definitions import PARSED_MAX_CHARS, DefinitionStore
from tests import dsbuild

LIMIT, LOGS = 2 * 1024 * 1024, "/var/log/porpoise"


def _definition(code: int, script: str = "true", tasks: int = 2) -> WorkflowDefinition:
    names = [f"t{i}" for i in range(tasks)]
    (d,) = parse_document(dsbuild.export("wf", [dsbuild.task(n, script) for n in names],
                                         [(None, n) for n in names], code=code))
    return d


def test_a_small_version_is_validated_once_and_a_new_version_is_read_fresh(tmp_path: Path) -> None:
    store = DefinitionStore(f"sqlite:///{tmp_path / 'porpoise.db'}")
    code = dsbuild.new_code()
    store.save(_definition(code))
    first = store.get(code)
    assert first is not None and store.get(code) is first and store.get(code, 1) is first

    store.save(_definition(code, "echo changed"))
    latest = store.get(code)
    assert latest is not None and latest.version == 2 and latest is not first
    assert latest.tasks[0].params.raw_script == "echo changed"  # type: ignore[union-attr]
    assert store.get(code, 1) is first
    store.engine.dispose()


def test_the_same_code_and_version_in_two_databases_are_two_definitions(tmp_path: Path) -> None:
    """Kept by the stored text, not by code and version: two databases (two tests, two tenants'
    deployments in one process) can hold different version 1s of one code."""
    code = dsbuild.new_code()
    one, two = (DefinitionStore(f"sqlite:///{tmp_path / f'{n}.db'}") for n in ("one", "two"))
    one.save(_definition(code, "echo one"))
    two.save(_definition(code, "echo two"))
    a, b = one.get(code), two.get(code)
    assert a is not None and b is not None
    assert (a.tasks[0].params.raw_script, b.tasks[0].params.raw_script) == ("echo one", "echo two")  # type: ignore[union-attr]
    one.engine.dispose()
    two.engine.dispose()


def test_a_big_version_is_parsed_on_every_read(tmp_path: Path) -> None:
    """Past PARSED_MAX_CHARS the cache would hold megabytes per entry: those are parsed each time."""
    store = DefinitionStore(f"sqlite:///{tmp_path / 'porpoise.db'}")
    code = dsbuild.new_code()
    big = _definition(code, "x" * 2000, tasks=20)
    assert len(big.model_dump_json()) > PARSED_MAX_CHARS
    store.save(big)
    a, b = store.get(code), store.get(code)
    assert a is not None and a is not b and a == b
    store.engine.dispose()


def test_the_payload_measure_is_kept_while_its_definition_lives(monkeypatch: pytest.MonkeyPatch) -> None:
    measured: list[int] = []
    real = payload_budget._measure

    def counted(definition: WorkflowDefinition, log_dir: str) -> payload_budget.Footprint:
        measured.append(definition.code)
        return real(definition, log_dir)

    monkeypatch.setattr(payload_budget, "_measure", counted)
    d = _definition(dsbuild.new_code())
    assert payload_budget.refusal(d, LIMIT, LOGS) is None
    assert payload_budget.refusal(d, LIMIT, LOGS) is None
    assert payload_budget.footprint(d, LOGS).definition_chars == len(d.model_dump_json())
    assert len(measured) == 1
    assert payload_budget.refusal(d, 100, LOGS) is not None  # another limit: the same measure, judged again
    assert len(measured) == 1
    payload_budget.refusal(d, LIMIT, "/elsewhere")  # the log paths are part of the status measured
    assert len(measured) == 2

    twin = _definition(d.code)  # an equal definition, another object: measured again
    payload_budget.refusal(twin, LIMIT, LOGS)
    assert len(measured) == 3

    keys = {k for k in payload_budget._measured if k[0] in (id(d), id(twin))}
    assert len(keys) == 3
    del d, twin
    gc.collect()
    assert not keys & set(payload_budget._measured), "entries outlived their definitions"
