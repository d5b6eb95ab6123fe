"""The `porpoise` CLI starts fast (issue 15): importing api.cli loads typer, the stdlib and the light
schemas package only; each command imports what it needs (httpx, rich, pydantic, the settings, the
parser, the API schemas' shapes).

Every check runs a fresh interpreter: modules the test process has already imported would hide a
regression."""

from __future__ import annotations

import ast
import importlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.main import get_command

import services.schemas
from tests import dsbuild

pytestmark = pytest.mark.timeout(120)

# Heavy or server-side packages no command needs just to start (and --help never needs).
NOT_AT_IMPORT = ["httpx", "httpcore", "rich", "rich.console", "rich.table", "pydantic", "pydantic_settings",
                 "sqlalchemy", "temporalio", "fastapi", "starlette", "uvicorn", "core.settings", "model.formats",
                 "model.definition", "storage", "activities", "workflows",
                 # the schemas package is light (api/cli.py imports it); the shapes load on first use
                 *(f"services.schemas.{m}" for m in services.schemas._MODULES)]


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running ``code``."""
    done = subprocess.run([sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_importing_the_cli_loads_no_heavy_module() -> None:
    loaded = _modules_after("import api.cli")
    assert "api.cli" in loaded and "typer" in loaded  # the probe itself works
    assert sorted(m for m in NOT_AT_IMPORT if m in loaded) == []


def test_help_lists_every_command() -> None:
    from api.cli import app

    group = get_command(app)
    names = group.list_commands(typer.Context(group))  # type: ignore[attr-defined]
    assert {"up", "run", "validate", "status", "token", "schedule", "alert", "datasource"} <= set(names)
    done = subprocess.run([sys.executable, "-m", "api", "--help"], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, COLUMNS="200"))
    assert done.returncode == 0, done.stderr
    listed = {line.strip("│ ").split(" ")[0] for line in done.stdout.splitlines()}
    assert sorted(set(names) - listed) == []


def test_validate_loads_the_parser_but_no_http_client(tmp_path: Path) -> None:
    sample = tmp_path / "diamond.json"
    sample.write_text(json.dumps(dsbuild.export("cli-imports", [dsbuild.task(n) for n in "abcd"],
                                                [(None, "a"), ("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")])))
    loaded = _modules_after("import sys\nfrom api.cli import app\n"
                            f"sys.argv = ['porpoise', 'validate', {str(sample)!r}]\n"
                            "try:\n    app()\nexcept SystemExit as e:\n    assert not e.code, e.code")
    assert "model.formats" in loaded and "core.settings" in loaded  # what it needs is there, on demand
    assert sorted(m for m in ("httpx", "sqlalchemy", "temporalio", "fastapi", "services.schemas.definitions")
                  if m in loaded) == []


def test_a_command_without_an_api_still_says_how_to_start_it() -> None:
    """httpx and the settings are imported lazily, and the connection error is still caught."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    done = subprocess.run([sys.executable, "-m", "api", "status", "some-instance"], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, PORPOISE_API_URL=f"http://127.0.0.1:{port}",
                                               PORPOISE_TOKEN="x", COLUMNS="200"))
    assert done.returncode == 1
    assert f"cannot reach the Porpoise API at http://127.0.0.1:{port}; start it with `porpoise up`" in done.stderr
    assert "Traceback" not in done.stderr


def test_schemas_load_only_the_submodule_a_name_lives_in() -> None:
    loaded = _modules_after("from services import schemas\nschemas.RunStatus")
    assert "services.schemas.runs" in loaded
    assert sorted(m for m in ("services.schemas.alerts", "services.schemas.schedules",
                              "services.schemas.definitions") if m in loaded) == []


def test_every_schema_name_resolves_to_its_submodule() -> None:
    """The lazy table in services/schemas/__init__.py agrees with its type-checking imports and __all__."""
    source = Path(services.schemas.__file__).read_text()
    imported: dict[str, str] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            imported |= {alias.name: node.module for alias in node.names}
    assert imported == services.schemas._WHERE
    assert sorted(services.schemas.__all__) == sorted(imported)
    for name, module in imported.items():
        assert getattr(services.schemas, name) is getattr(importlib.import_module(f"services.schemas.{module}"), name)
    with pytest.raises(AttributeError, match="NoSuchShape"):
        services.schemas.NoSuchShape  # noqa: B018
