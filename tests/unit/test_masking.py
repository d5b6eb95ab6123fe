"""Task-log masking: every built-in rule, custom per-type rules, resolved secrets, streamed output.

Through :class:`activities.masking.Masker` directly, through :class:`activities.logs.TaskLog` (what
reaches disk), and through the real SHELL activity in an ActivityEnvironment.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.testing import ActivityEnvironment

from activities.logs import TaskLog, configure_task_logs
from activities.masking import (
    DEFAULT_RULES,
    MASK,
    MAX_PENDING_LINE,
    Masker,
    RuleSet,
    http_secrets,
    is_secret_name,
    rules_for,
    secret_params,
)
from activities.shell import run_shell
from core.contracts import TaskRequest
from core.settings import Settings


def make_settings(**fields: Any) -> Settings:
    return Settings(**fields)  # the rest from the environment, as get_settings() does

# (rule, line, what must vanish, what must stay)
DEFAULT_CASES: list[tuple[str, str, str, str]] = [
    ("datasource-password", '{"user":"root","password":"Sup3r\\"Secret"}', "Sup3r", '"user":"root"'),
    ("datasource-password", '{\\"password\\":\\"EscJsonPw1\\",\\"port\\":5432}', "EscJsonPw1", '\\"port\\":5432'),
    ("datasource-password", "connect password='quoted pw 1' host=db", "quoted pw 1", "host=db"),
    ("password-assignment", "jdbc:mysql://db/x?user=u&password=QueryPw9&ssl=true", "QueryPw9", "ssl=true"),
    ("password-assignment", "spring.datasource.password: YamlPw77", "YamlPw77", "spring.datasource.password"),
    ("password-assignment", 'sqoop import --password "Cli Pw 5" --table t', "Cli Pw 5", "--table t"),
    ("password-assignment", "export PGPASSWORD=EnvPw123; psql", "EnvPw123", "psql"),
    ("secret-assignment", "curl https://api/x?access_token=Tok3nValue&page=2", "Tok3nValue", "page=2"),
    ("secret-assignment", 'client_secret="Cl1entSecret" scope=all', "Cl1entSecret", "scope=all"),
    ("url-credentials", "jdbc:postgresql://etl:UrlPw%40x@pg:5432/dw", "UrlPw%40x", "etl:"),
    ("url-credentials", "fetching https://bot:HttpPw55@git.example.com/repo.git", "HttpPw55", "git.example.com"),
    ("jdbc-oracle-credentials", "url=jdbc:oracle:thin:scott/Tiger123@ora:1521:orcl", "Tiger123", "scott/"),
    ("authorization-header", "> Authorization: Bearer eyJhbGciOi.abc", "eyJhbGciOi", "Authorization: Bearer"),
    ("authorization-header", 'curl -H "Authorization: Basic dXNlcjpwYXNz" -X GET', "dXNlcjpwYXNz", "-X GET"),
    ("authorization-header", '{"headers": {"Authorization": "token ghp_abcdef"}}', "ghp_abcdef", "headers"),
    ("datax-jdbc-echo", "2024-01-01 INFO post jdbc info: jdbc:mysql://db:3306/x?user=a&pw=b",
     "jdbc:mysql://db:3306", "2024-01-01 INFO post jdbc info:"),
    ("k8s-config-yaml", '{"configYaml": "apiVersion: v1\\nusers:\\n- token: k8sTok", "ns": "a"}', "k8sTok", '"ns"'),
]

HARMLESS = [
    "echo hello world",
    "the password must be at least 8 characters",
    "passwords: 3 rotated",
    "max_tokens=100 token_count=5",
    "GET https://example.com/path?q=1",
    "SELECT id, name FROM users WHERE key = 'x'",
]


@pytest.mark.parametrize(("rule", "line", "secret", "kept"), DEFAULT_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(DEFAULT_CASES)])
def test_each_default_rule(rule: str, line: str, secret: str, kept: str) -> None:
    only = RuleSet("X", [r for r in DEFAULT_RULES if r.name == rule])
    masked = only.mask_text(line)
    assert secret not in masked and MASK in masked, masked
    assert kept in masked
    assert secret not in Masker(rules_for("SQL")).mask(line)  # and with every rule at once


def test_every_default_rule_has_a_case() -> None:
    assert {r.name for r in DEFAULT_RULES} == {c[0] for c in DEFAULT_CASES}


@pytest.mark.parametrize("line", HARMLESS)
def test_ordinary_lines_are_left_alone(line: str) -> None:
    assert rules_for("SHELL").mask_text(line) == line


def test_mask_has_fixed_length_and_keeps_lines() -> None:
    out = rules_for("SHELL").mask_text("password=a\npassword=a-much-longer-secret\n")
    assert out == f"password={MASK}\npassword={MASK}\n"  # length not revealed (DS writes one * per char)


def test_custom_rule_applies_to_its_type_only() -> None:
    configured = {"SHELL": [r"(?<=x-acme-key: )\S+"], "http": [r"sessionid=(?P<secret>\w+)"]}
    line = "x-acme-key: AcmeKey42 sessionid=Sess99"
    shell = rules_for("SHELL", configured).mask_text(line)
    http = rules_for("HTTP", configured).mask_text(line)  # keys match case-insensitively
    sql = rules_for("SQL", configured).mask_text(line)
    assert shell == f"x-acme-key: {MASK} sessionid=Sess99"
    assert http == f"x-acme-key: AcmeKey42 sessionid={MASK}"
    assert sql == line


def test_a_broad_rule_of_one_type_cannot_break_another() -> None:
    configured = {"PYTHON": [r".*"]}  # a careless rule that masks everything
    assert rules_for("PYTHON", configured).mask_text("hello") == MASK
    assert rules_for("SHELL", configured).mask_text("hello") == "hello"


def test_star_rules_apply_to_every_type() -> None:
    configured = {"*": [r"(?<=otp=)\d+"]}
    for t in ("SHELL", "SQL", "HTTP", "DATAX", "K8S"):
        assert rules_for(t, configured).mask_text("otp=123456") == f"otp={MASK}"


def test_rules_are_compiled_once_per_type() -> None:
    configured = {"SHELL": [r"foo\d+"]}
    assert rules_for("SHELL", configured) is rules_for("shell", {"SHELL": [r"foo\d+"]})
    assert rules_for("SHELL", configured) is not rules_for("SQL", configured)


def test_invalid_rules_fail_settings_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError, match="not a valid regex"):
        make_settings(log_mask_rules={"SHELL": ["(unclosed"]})
    monkeypatch.setenv("PORPOISE_LOG_MASK_RULES", json.dumps({"SHELL": [r"(?<=pin=)\d+"]}))
    assert make_settings().log_mask_rules == {"SHELL": [r"(?<=pin=)\d+"]}


# -- resolved secrets ----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "secret"), [
    ("password", True), ("db_password", True), ("dbPassword", True), ("DB.PASSWD", True), ("apiToken", True),
    ("secret_key", True), ("api_key", True), ("apikey", True), ("X-Api-Key", True), ("client_secret", True),
    ("credentials", True), ("key", True),
    ("password_file", False), ("token_ttl", False), ("monkey", False), ("keyword", False), ("bizdate", False),
])
def test_secret_parameter_names(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_resolved_secrets_are_masked_without_any_rule() -> None:
    params = {"db_password": "p@ss word!", "api_key": "K3Y-abcdef", "bizdate": "20240101", "primary_key": "id"}
    assert set(secret_params(params)) == {"db_password", "api_key", "primary_key"}
    m = Masker.for_task("SHELL", params)
    line = 'x p@ss word! y p%40ss%20word%21 z "K3Y-abcdef" 20240101 id'
    assert m.mask(line) == f'x {MASK} y {MASK} z "{MASK}" 20240101 id'
    assert m.skipped_params == ["primary_key"]  # "id" would mask every "id" in the log


def test_added_secret_any_length_and_json_escaped() -> None:
    m = Masker()
    m.add_secret('q"x\\')
    assert m.mask('{"v": "q\\"x\\\\"} raw q"x\\') == f'{{"v": "{MASK}"}} raw {MASK}'


def test_http_secrets() -> None:
    pairs = [("Authorization", "Bearer abc.def"), ("X-Api-Key", "KeyValue1"), ("Accept", "text/plain"),
             ("access_token", "tok12345"), ("page", "2")]
    assert http_secrets(pairs) == ["Bearer abc.def", "abc.def", "KeyValue1", "tok12345"]


# -- streaming -------------------------------------------------------------------------------------


def test_secret_split_across_writes_is_masked() -> None:
    m = Masker.for_task("SHELL", {"token": "SplitSecret99"})
    out = m.feed(b"before Split") + m.feed(b"Secr") + m.feed(b"et99 after\nnext pass") + m.feed(b"word=abc\n")
    assert out == f"before {MASK} after\nnext password={MASK}\n".encode()
    assert m.pending == 0


def test_unfinished_line_waits_for_its_newline() -> None:
    m = Masker()
    assert m.feed(b"password=ab") == b""
    assert m.pending == len(b"password=ab")
    assert m.flush() == f"password={MASK}".encode()


def test_non_utf8_bytes_pass_through() -> None:
    m = Masker()
    data = b"\xff\xfe bin password=\xe9t\xe9 \x00ok\n"
    out = m.feed(data)
    assert out.startswith(b"\xff\xfe bin password=") and b"\xe9" not in out and out.endswith(b" \x00ok\n")


def test_endless_line_is_masked_in_pieces() -> None:
    m = Masker.for_task("SHELL", {"password": "TopSecret1"})
    word = b"TopSecret1 filler "
    data = word * (2 * MAX_PENDING_LINE // len(word))
    out = m.feed(data)
    assert len(out) > 0 and m.pending <= MAX_PENDING_LINE
    out += m.flush()
    assert b"TopSecret1" not in out
    assert out.count(MASK.encode()) == data.count(b"TopSecret1")


# -- what reaches disk -------------------------------------------------------------------------------


def test_task_log_masks_output_and_notes_on_disk(tmp_path: Path) -> None:
    masker = Masker.for_task("SQL", {"db_password": "DiskSecret7"})
    log = TaskLog(tmp_path / "1.1.log", masker=masker)
    with log.open(task_name="t", task_type="SQL", attempt=1):
        log.write(b"half DiskSe")
        log.flush()
        log.write(b"cret7 done\n")
        log.note("connecting to postgresql://u:NotePw12@h/d")
        log.add_secret("LateResolved")
        log.write(b"later: LateResolved\n")
    text = (tmp_path / "1.1.log").read_text()
    for secret in ("DiskSecret7", "NotePw12", "LateResolved"):
        assert secret not in text
    assert f"half {MASK} done" in text and f"later: {MASK}" in text


def test_a_note_after_an_unfinished_line_starts_its_own_line(tmp_path: Path) -> None:
    log = TaskLog(tmp_path / "1.1.log")
    with log.open(task_name="t", task_type="SHELL", attempt=1):
        log.write(b"no newline")
        log.note("killed")
    lines = (tmp_path / "1.1.log").read_text().splitlines()
    assert lines[1:3] == ["no newline", "[porpoise] killed"]


def _shell_request(tmp_path: Path, script: str, **kw: Any) -> TaskRequest:
    return TaskRequest(instance_id="wf-m", task_code=77, task_name="m", task_type="SHELL",
                       task_params={"rawScript": script, "localParams": []}, log_dir=str(tmp_path), **kw)


async def test_shell_activity_masks_params_defaults_and_its_custom_rules(tmp_path: Path) -> None:
    queue = f"mask-{uuid.uuid4().hex[:6]}"
    configure_task_logs(make_settings(task_queue=queue, log_mask_rules={"SHELL": [r"(?<=pin )\d+"],
                                                                   "SQL": [r"hello"]}))
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, task_queue=queue)
    script = (
        "echo \"using ${db_password} and ${api_token}\"\n"
        "printf 'split %s' 'Sh3ll'; sleep 0.2; echo 'Secret!'\n"
        "echo 'jdbc:mysql://etl:JdbcPw1@db/x'\n"
        "echo 'pin 4321'\n"
        "echo hello\n"
    )
    req = _shell_request(tmp_path, script, params={"db_password": "Sh3llSecret!", "api_token": "tok-0001"})
    result = await env.run(run_shell, req)
    text = Path(result.log_path).read_text()
    for secret in ("Sh3llSecret!", "tok-0001", "JdbcPw1", "4321"):
        assert secret not in text, text
    assert f"using {MASK} and {MASK}" in text
    assert f"split {MASK}" in text
    assert f"pin {MASK}" in text
    assert "\nhello\n" in text  # the SQL type's rule does not touch a SHELL log
