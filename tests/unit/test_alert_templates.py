"""Alert templates: the sandbox, time/memory/output bounds, save-time checks and send-time fallbacks."""

from __future__ import annotations

import time

import pytest

from activities.alerts import AlertKind, should_send
from activities.alerts.resolvers import BusinessContext, ChainResolver, StartParamsResolver, load_resolver
from activities.alerts.templates import (
    FORMATS,
    KINDS,
    Job,
    MessageSpec,
    business_names,
    html_to_text,
    pool,
    render_many,
    render_messages,
    sample_context,
    sample_status,
    validate_templates,
)
from model.definition import WarningType
from model.states import WorkflowState

CTX = sample_context("WORKFLOW_END", {"owner": "alice"})

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ ''.format.__globals__ }}",
    "{{ self.__dict__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ nodes|attr('__class__') }}",
    "{{ '{0.__class__.__mro__}'.format(state) }}",
    "{{ dict.__base__.__subclasses__() }}",
    "{{ range.__self__ }}",
    "{% set x = nodes.append(1) %}{{ x }}",
    "{% set _ = instance.update({'id': 'x'}) %}{{ instance.id }}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}{{ os.system('id') }}",
    "{% extends '/etc/hostname' %}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_escapes_are_refused_at_send_time(source: str) -> None:
    out = render_many([Job("t", source)], CTX)["t"]
    assert not out.ok, (source, out.text)
    assert "root:" not in out.text and "class" not in out.text.lower()


@pytest.mark.parametrize("source", ESCAPES)
def test_escapes_are_refused_at_save_time(source: str) -> None:
    problems = validate_templates({"WORKFLOW_END": {"body": source}}, "text", StartParamsResolver())
    assert problems, source


def test_escape_in_a_channel_template_falls_back_to_the_default_message() -> None:
    spec = MessageSpec("c", "markdown", subject="{{ ''.__class__ }}", body="{{ ''.__class__.__mro__ }}")
    msg = render_messages([spec], "WORKFLOW_END", CTX)["c"]
    assert msg.template_error and "not allowed" in msg.template_error
    assert "daily_orders_etl FAILURE" in msg.subject  # the default subject
    assert "template failed" in msg.body and "Failed tasks" in msg.body  # a note, then the default body
    assert "<class" not in msg.body


@pytest.mark.parametrize("source", [
    "{% for i in range(10**9) %}x{% endfor %}",
    "{{ range(10**9)|list|length }}",
    "{% for i in range(9999) %}{% for j in range(9999) %}{% for k in range(9999) %}{% endfor %}{% endfor %}"
    "{% endfor %}",
    "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
    "{% macro f(n) %}{% for i in range(50) %}{{ f(n) }}{% endfor %}{% endmacro %}{{ f(0) }}",
    "{{ 'x' * 10**9 }}",
    "{{ 10 ** 100000000 }}",
    "{{ 'x'|center(2 * 10**9) }}",
])
def test_runaway_templates_end_quickly_with_a_readable_error(source: str) -> None:
    started = time.monotonic()
    out = render_many([Job("t", source)], CTX, timeout=0.5)["t"]
    assert not out.ok and out.error
    assert time.monotonic() - started < 5
    # the next template renders normally (the render process is healthy or replaced)
    assert render_many([Job("ok", "{{ state }}")], CTX)["ok"].text == "FAILURE"


def test_the_parent_kills_a_render_process_that_does_not_answer() -> None:
    loop = "{% for i in range(9999) %}{% for j in range(9999) %}{% endfor %}{% endfor %}"
    before = pool().kills
    started = time.monotonic()
    # the child's own deadline is 30 s; the parent waits 0.5 s, then kills it
    answers = pool().run({"op": "render", "jobs": [{"key": "t", "source": loop}], "context": CTX, "timeout": 30},
                         wait=0.5)
    assert time.monotonic() - started < 5
    assert answers[0]["ok"] is False and "too long" in answers[0]["error"]
    assert pool().kills == before + 1
    assert render_many([Job("ok", "{{ definition.name }}")], CTX)["ok"].text == "daily_orders_etl"


def test_output_is_capped() -> None:
    out = render_many([Job("t", "{% for i in range(5000) %}{{ 'x' * 100 }}{% endfor %}")], CTX)["t"]
    assert not out.ok and "more than" in str(out.error)
    small = render_many([Job("t", "{{ 'y' * 500 }}")], CTX, max_output=100)["t"]
    assert not small.ok
    ok = render_many([Job("t", "{{ 'y' * 50 }}")], CTX, max_output=100)["t"]
    assert ok.ok and ok.text == "y" * 50


def test_unknown_placeholders_are_errors_at_save_time_with_suggestions() -> None:
    problems = validate_templates({
        "WORKFLOW_END": {
            "subject": "{{ instnce.id }}",
            "body": "line one\n{{ instance.stat }}\n{% for t in failed_tasks %}{{ t.nme }}{% endfor %}\n"
                    "{% if false %}{{ never_rendered }}{% endif %}\n{{ task.name }}",
        },
    }, "html", StartParamsResolver())
    text = [p.text() for p in problems]
    assert any("unknown placeholder 'instnce'; did you mean 'instance'?" in t for t in text), text
    assert any("'instance.stat'" in t and "did you mean 'state'" in t and "line 2" in t for t in text), text
    assert any("'t.nme'" in t and "did you mean 'name'" in t for t in text), text
    assert any("never_rendered" in t for t in text), text
    assert any("'task' is only available in TASK_TIMEOUT and TASK_FAILURE" in t for t in text), text
    assert all(p.pointer.startswith("/templates/WORKFLOW_END/") for p in problems)


def test_syntax_errors_and_runtime_errors_at_save_time() -> None:
    problems = validate_templates({"TASK_FAILURE": {"body": "a\n{% for x in nodes %}\n{{ x.name }}"}}, "text")
    assert problems and problems[0].line == 3 and "syntax error" in problems[0].message
    problems = validate_templates({"TASK_FAILURE": {"body": "{{ task.attempts / 0 }}"}}, "text")
    assert problems and "ZeroDivisionError" in problems[0].message
    assert validate_templates({"NOPE": {"body": "x"}}, "text")[0].message.startswith("unknown alert kind")


def test_good_templates_pass_with_business_placeholders() -> None:
    templates = {
        "WORKFLOW_END": {"subject": "[{{ biz.region }}] {{ definition.name }} {{ state }}",
                         "body": "Owner {{ biz.owner }}\n{% for t in failed_tasks %}- {{ t.name }} {{ t.state }} "
                                 "{{ t.log_url }}{% endfor %}\n{{ links.temporal }} {{ duration }} {{ times.start }}"},
        "TASK_TIMEOUT": {"body": "{{ task.name }} {{ task.duration }} {{ project.name }} {{ nodes|length }}"},
    }
    assert validate_templates(templates, "html", StartParamsResolver()) == []


def test_a_resolver_with_known_names_rejects_others_at_save_time() -> None:
    resolver = StartParamsResolver(known=["owner"])
    problems = validate_templates({"WORKFLOW_END": {"body": "{{ biz.owner }} {{ biz.ownr }}"}}, "text", resolver)
    assert len(problems) == 1 and "unknown business placeholder 'biz.ownr'" in problems[0].message


def test_unknown_placeholders_render_a_readable_fallback_at_send_time() -> None:
    spec = MessageSpec("c", "text", subject="{{ definition.name }} {{ nope }}",
                       body="owner={{ biz.owner }} region={{ biz.region }} x={{ instance.nothing.deeper }}")
    msg = render_messages([spec], "WORKFLOW_END", CTX)["c"]
    assert msg.template_error is None
    assert msg.subject == "daily_orders_etl [unknown: nope]"
    assert msg.body == "owner=alice region=[unknown: biz.region] x=[unknown: nothing]"
    assert set(msg.unknown) == {"nope", "biz.region", "nothing"}


def test_a_template_failing_at_send_time_falls_back_to_the_default() -> None:
    spec = MessageSpec("c", "html", body="{{ nope + 1 }}")
    msg = render_messages([spec], "WORKFLOW_END", CTX)["c"]
    assert msg.template_error and "body" in msg.template_error
    assert "template failed" in msg.body and "load_warehouse" in msg.body and "<html>" in msg.body


def test_defaults_render_for_every_kind_and_format() -> None:
    for kind in KINDS:
        ctx = sample_context(kind)
        messages = render_messages([MessageSpec(fmt, fmt) for fmt in FORMATS], kind, ctx)
        for fmt in FORMATS:
            m = messages[fmt]
            assert m.template_error is None and not m.unknown, (kind, fmt, m)
            assert "daily_orders_etl" in m.subject
            assert "load_warehouse" in m.body
            assert "temporal.example" in m.body
    html = render_messages([MessageSpec("h", "html")], "WORKFLOW_END", CTX)["h"].body
    assert "Failed tasks (1)" in html and "relation &#34;dw.orders&#34; does not exist" in html
    assert "/runs/ds-1001-20240601020000-sample/tasks/2/log" in html
    text = html_to_text(html)
    assert "load_warehouse" in text and "<" not in text.replace("<biz", "")


def test_html_templates_escape_values() -> None:
    status = sample_status()
    status.definition_name = "<script>alert(1)</script>"
    from activities.alerts.templates import build_context

    ctx = build_context(status, kind="WORKFLOW_END")
    html = render_messages([MessageSpec("h", "html")], "WORKFLOW_END", ctx)["h"].body
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_business_names_are_found_statically_or_flagged_dynamic() -> None:
    names, dynamic = business_names([MessageSpec("a", "text", subject="{{ biz.owner }}",
                                                 body="{{ biz['region'] }}")])
    assert names == {"owner", "region"} and dynamic is False
    for body in ("{% for k, v in biz|dictsort %}{{ k }}{% endfor %}", "{{ biz.get('x') }}", "{{ biz[state] }}"):
        assert business_names([MessageSpec("a", "text", body=body)])[1] is True, body


def test_start_params_resolver() -> None:
    status = sample_status()
    from model.definition import Property

    status.var_pool = [Property(prop="region", direct="OUT", type="VARCHAR", value="from-var-pool")]
    ctx = BusinessContext(kind="WORKFLOW_END", status=status, start_params={"owner": "alice", "region": "cn",
                                                                            "token": "s3cret"})
    r = StartParamsResolver(aliases={"team": "owner"}, defaults={"oncall": "ops"})
    assert r.resolve({"owner", "region", "team", "oncall", "missing"}, ctx) == {
        "owner": "alice", "region": "from-var-pool", "team": "alice", "oncall": "ops"}
    assert r.resolve(None, ctx) == {"team": "alice", "oncall": "ops"}  # dynamic use: known names only
    assert "token" in StartParamsResolver(expose_all=True).resolve(None, ctx)
    chain = ChainResolver([StartParamsResolver(known=["a"]), StartParamsResolver(known=["b"])])
    assert chain.validate({"a", "b", "c"}) == {"c": "unknown business placeholder 'biz.c'; known: biz.a"}
    assert isinstance(load_resolver("activities.alerts.resolvers:StartParamsResolver"), StartParamsResolver)


@pytest.mark.parametrize(("kind", "warning", "state", "due"), [
    (AlertKind.WORKFLOW_END, WarningType.NONE, WorkflowState.FAILURE, False),
    (AlertKind.WORKFLOW_END, WarningType.FAILURE, WorkflowState.FAILURE, True),
    (AlertKind.WORKFLOW_END, WarningType.FAILURE, WorkflowState.SUCCESS, False),
    (AlertKind.WORKFLOW_END, WarningType.SUCCESS, WorkflowState.SUCCESS, True),
    (AlertKind.WORKFLOW_END, WarningType.SUCCESS, WorkflowState.STOP, False),
    (AlertKind.WORKFLOW_END, WarningType.ALL, WorkflowState.STOP, True),
    (AlertKind.WORKFLOW_END, WarningType.ALL, WorkflowState.PAUSE, True),
    (AlertKind.WORKFLOW_END, WarningType.ALL, WorkflowState.RUNNING_EXECUTION, False),
    (AlertKind.TASK_TIMEOUT, WarningType.NONE, WorkflowState.RUNNING_EXECUTION, True),
    (AlertKind.TASK_FAILURE, WarningType.NONE, WorkflowState.RUNNING_EXECUTION, True),
])
def test_when_alerts_are_due(kind: AlertKind, warning: WarningType, state: WorkflowState, due: bool) -> None:
    assert should_send(kind, warning, state, is_sub_process=False, warning_group_id=1)[0] is due
    assert should_send(kind, warning, state, is_sub_process=True, warning_group_id=1)[0] is False
    assert should_send(kind, warning, state, is_sub_process=False, warning_group_id=0)[0] is False


def test_render_processes_get_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from activities.alerts.templates.render_pool import _child_env

    monkeypatch.setenv("PORPOISE_SECRET_KEY", "k")
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@h/db")
    env = _child_env()
    assert "PORPOISE_SECRET_KEY" not in env and "DATABASE_URL" not in env and "PATH" in env


def test_compact_status_keeps_failed_nodes_and_counts_the_rest() -> None:
    from activities.alerts import compact_status
    from activities.alerts.templates import build_context
    from core.contracts import NodeStatus
    from model.definition import Property
    from model.states import TaskState

    status = sample_status()
    pool_ = [Property(prop="x", direct="OUT", type="VARCHAR", value="v" * 100)]
    status.nodes = [NodeStatus(code=100 + i, name=f"n{i}", task_type="SHELL", state=TaskState.SUCCESS,
                               var_pool=pool_) for i in range(1000)]
    status.nodes[700] = status.nodes[700].model_copy(update={"state": TaskState.FAILURE, "error": "boom"})
    small, counts, omitted = compact_status(status, max_nodes=50, keep=100 + 999)
    assert len(small.nodes) == 50 and omitted == 950 and counts == {"SUCCESS": 999, "FAILURE": 1}
    codes = [n.code for n in small.nodes]
    assert 800 in codes and 1099 in codes and codes == sorted(codes) and all(not n.var_pool for n in small.nodes)
    assert len(small.model_dump_json()) < len(status.model_dump_json()) / 20
    ctx = build_context(small, kind="WORKFLOW_END", node_counts=counts, nodes_omitted=omitted)
    assert ctx["counts"] == counts and ctx["nodes_omitted"] == 950 and len(ctx["failed_tasks"]) == 1
    html = render_messages([MessageSpec("h", "html")], "WORKFLOW_END", ctx)["h"].body
    assert "All tasks (1000)" in html and "… and 950 more (FAILURE 1, SUCCESS 999)" in html


def test_default_templates_are_files_that_the_package_data_ships() -> None:
    """The defaults are .j2 files read at run time: each one exists, and pyproject ships every one of them
    (a wheel or a fresh install without them would have no default message)."""
    import fnmatch
    import tomllib
    from pathlib import Path

    from activities.alerts import templates

    folder = Path(templates.__file__).parent / "default_templates"
    files = sorted(p.name for p in folder.glob("*.j2"))
    assert len(files) == 8  # a subject per kind, html, and markdown/text per workflow end and task alerts
    assert all(templates.default_template(k, f, part) for k in KINDS for f in FORMATS for part in ("subject", "body"))
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    patterns = pyproject["tool"]["setuptools"]["package-data"]["activities.alerts.templates"]
    assert all(any(fnmatch.fnmatch(f"default_templates/{name}", p) for p in patterns) for name in files)
