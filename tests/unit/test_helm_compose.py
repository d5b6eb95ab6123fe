"""deploy/compose.yaml is a valid Compose file with the services Porpoise needs (checked by the
compose tool itself, offline; skipped when neither `docker compose` nor `docker-compose` exists)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"


def compose_tool() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True,
                                                 timeout=30).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


TOOL = compose_tool()
pytestmark = pytest.mark.skipif(TOOL is None, reason="neither `docker compose` nor docker-compose is installed")


def config(**env: str) -> subprocess.CompletedProcess[str]:
    assert TOOL is not None
    return subprocess.run([*TOOL, "-f", str(COMPOSE), "config"], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, **env), cwd=COMPOSE.parent)


def test_compose_config_is_valid_and_has_every_service() -> None:
    done = config(PORPOISE_SECRET_KEY="k")
    assert done.returncode == 0, done.stderr
    services = yaml.safe_load(done.stdout)["services"]
    assert {"postgresql", "temporal", "pulsar", "api", "worker-default", "worker-datax"} <= services.keys()
    for name in ("api", "worker-default", "worker-datax"):
        env = services[name]["environment"]
        assert env["PORPOISE_TEMPORAL_ADDRESS"] == "temporal:7233" and env["PORPOISE_SECRET_KEY"] == "k", name
        assert "healthcheck" in services[name], name
    assert services["worker-datax"]["command"][-2:] == ["--group", "datax"]


def test_compose_refuses_to_start_without_a_secret_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PORPOISE_SECRET_KEY"}
    assert TOOL is not None
    done = subprocess.run([*TOOL, "-f", str(COMPOSE), "config"], capture_output=True, text=True, timeout=60,
                          env=env, cwd=COMPOSE.parent)
    assert done.returncode != 0 and "PORPOISE_SECRET_KEY" in done.stderr
