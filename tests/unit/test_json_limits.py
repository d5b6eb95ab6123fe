"""Hostile JSON (model/json_limits.py, core/payload_budget.py): a problem with a message, never a
RecursionError or a bare ValueError."""

from __future__ import annotations

import json
import secrets

import pytest

from core.payload_budget import footprint, refusal
from model import json_limits
from model.formats import parse_document, parse_text
from model.problems import DefinitionError
from tests import dsbuild


@pytest.mark.parametrize(("text", "levels"), [
    ("1", 0), ("[]", 1), ('{"a": [1, {"b": []}]}', 4), ('["[[[[", "]]]"]', 1), (r'["\"[[[["]', 1),
    ('[{"a": "\\\\"}, [[]]]', 3), ("[[]" * 30 + "]" * 30, 31), ("[" * 300 + "]" * 300, 300),
])
def test_depth_ignores_brackets_in_strings(text: str, levels: int) -> None:
    assert not json_limits.too_deep(text, levels)
    assert json_limits.too_deep(text, levels - 1) == (levels > 0)


def test_unbalanced_text_is_left_to_the_parser() -> None:
    assert not json_limits.too_deep("[" * 1000, 10) and not json_limits.too_deep("]]][[[", 1)


@pytest.mark.parametrize(("text", "message"), [
    ("[" * 100_000 + "]" * 100_000, "nested more than 64 levels deep"),
    ('{"a": ' * 70 + "1" + "}" * 70, "nested more than 64 levels deep"),
    ("[" * 100_000, "nested too deeply"),
    ("[" + "9" * 5_000 + "]", "JSON not accepted"),
    ("{oops", "malformed JSON"),
    (b"[\"\xc3\"]", "not UTF-8"),
])
def test_loads_refuses_with_a_message(text: str | bytes, message: str) -> None:
    with pytest.raises(json_limits.JsonLimitError) as e:
        json_limits.loads(text)
    assert message in e.value.message


def test_parse_text_turns_deep_nesting_into_a_problem() -> None:
    with pytest.raises(DefinitionError) as e:
        parse_text("[" * 100_000 + "]" * 100_000)
    assert e.value.problems[0].code == "malformed-json" and "levels deep" in e.value.problems[0].message


def test_deep_json_inside_a_form_field_is_a_problem_at_that_field() -> None:
    with pytest.raises(DefinitionError) as e:
        parse_document({"name": "f", "taskDefinitionJson": "[" * 50_000 + "]" * 50_000, "taskRelationJson": "[]"})
    assert e.value.problems[0].pointer == "/taskDefinitionJson"


def test_integers_beyond_64_bits_are_problems_with_pointers() -> None:
    doc = dsbuild.export("huge", [dsbuild.task("a")], [(None, "a")])
    doc[0]["processDefinition"]["code"] = 2**63
    doc[0]["taskDefinitionList"][0]["timeout"] = -(2**63) - 1
    doc[0]["taskDefinitionList"][0]["taskGroupId"] = int("9" * 4_000)
    with pytest.raises(DefinitionError) as e:
        parse_text(json.dumps(doc))
    found = {(p.pointer, p.code) for p in e.value.problems}
    assert found == {("/0/processDefinition/code", "range"), ("/0/taskDefinitionList/0/timeout", "range"),
                     ("/0/taskDefinitionList/0/taskGroupId", "range")}


def big(n: int, script_chars: int = 0) -> list[dict[str, object]]:
    """n parallel SHELL tasks; with ``script_chars``, each script is that many random characters, which
    compress little (the budget counts what travels: compressed JSON, core/codec.py)."""
    tasks = [dsbuild.task(f"t{i}", secrets.token_urlsafe(script_chars * 3 // 4) if script_chars else "true")
             for i in range(n)]
    return dsbuild.export(f"big{n}", tasks, [(None, t["name"]) for t in tasks])


def test_payload_budget_refuses_what_cannot_travel_and_names_the_limit() -> None:
    (small,) = parse_document(big(10))
    assert refusal(small, 2 * 1024 * 1024, "/var/log/porpoise") is None
    (large,) = parse_document(big(2000, 1400))  # about 3.9 MB of definition, 2.2 MB of it compressed
    why = refusal(large, 2 * 1024 * 1024, "/var/log/porpoise")
    assert why is not None and "2,097,152-byte payload limit" in why and "temporal_payload_limit_bytes" in why
    size = footprint(large, "/var/log/porpoise")
    assert 1.9e6 < size.definition_bytes < len(large.model_dump_json()) and size.status_bytes > 2000 * 10


def test_payload_budget_counts_compressed_bytes() -> None:
    """Repetitive definitions travel compressed: 10,000 one-line tasks (5.5 MB of JSON) fit, and the
    node status estimate compresses like a real status (every node has its own code, name and log)."""
    (wide,) = parse_document(big(10_000))
    assert len(wide.model_dump_json()) > 5_000_000
    assert refusal(wide, 2 * 1024 * 1024, "/var/log/porpoise") is None
    size = footprint(wide, "/var/log/porpoise")
    assert 50_000 < size.definition_bytes < 500_000 and 50_000 < size.status_bytes < 1_000_000
