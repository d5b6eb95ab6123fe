"""Worker groups without a server: DS's group rule, queue names, what a worker serves, bad names."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError
from temporalio.activity import _Definition
from typer.testing import CliRunner

from api.cli import app
from api.worker import local_activities, served_groups, shared_queue_activities
from core.settings import Settings
from core.temporal import identity_host, worker_identity
from core.worker_groups import check_name, group_task_queue, host_queue, is_heavy_datax, task_group
from model.task_types import ACTIVITY_TYPES
from services.schemas import StartRun


@pytest.mark.parametrize(("own", "instance", "runs_in"), [
    ("default", "default", "default"),
    ("", None, "default"),  # blank is default (DS StringUtils.isBlank)
    ("etl", "default", "etl"),
    ("default", "etl", "etl"),  # a task left in default takes the instance's group
    ("", "etl", "etl"),
    ("gpu", "etl", "gpu"),  # a task's own group wins over the instance's
])
def test_ds_rule(own: str, instance: str | None, runs_in: str) -> None:
    assert task_group(own, instance) == runs_in


def test_queue_names_match_the_chart() -> None:
    assert group_task_queue("porpoise", "default") == "porpoise"
    assert group_task_queue("porpoise", "") == "porpoise"
    assert group_task_queue("porpoise", "etl") == "porpoise-etl"


def test_a_lost_attempts_host_queue_from_the_workers_identity() -> None:
    """The workflow sends the attempt after a lost one to the host in the identity of the worker that
    took it (activities/lost_attempts.py), on the queue the lost attempt was on."""
    host = identity_host(worker_identity())
    assert host and worker_identity() == f"{os.getpid()}@{host}"
    assert identity_host("4242@node-7.example") == "node-7.example"
    assert identity_host("no host here") == ""
    assert host_queue("porpoise", "node-7") == "porpoise@node-7"
    assert host_queue("porpoise-etl", "node-7") == "porpoise-etl@node-7"
    assert host_queue("porpoise-etl@node-1", "node-7") == "porpoise-etl@node-7"


@pytest.mark.parametrize("bad", ["", "a@b", "has space", "-lead", "x" * 64])
def test_bad_group_names(bad: str) -> None:
    with pytest.raises(ValueError, match="worker group"):
        check_name(bad)


def test_heavy_datax() -> None:
    assert is_heavy_datax({"runOn": "k8s", "xmx": 1}, 4)
    assert not is_heavy_datax({"runOn": "local", "xmx": 16}, 4)
    assert is_heavy_datax({"xmx": "8"}, 4)
    assert not is_heavy_datax({"xmx": 2}, 4)
    assert not is_heavy_datax({}, 4)
    assert not is_heavy_datax({"xmx": "lots"}, 4)


def test_served_groups() -> None:
    assert served_groups([]) == ["default"]
    assert served_groups(["etl", "etl", "default"]) == ["default", "etl"]
    assert served_groups(["etl"], default=False) == ["etl"]
    assert served_groups(["default", "etl"], default=False) == ["etl"]
    with pytest.raises(ValueError, match="no worker group"):
        served_groups([], default=False)
    with pytest.raises(ValueError, match="worker group 'a@b'"):
        served_groups(["a@b"])


def test_cli_refuses_a_worker_of_no_group() -> None:
    result = CliRunner().invoke(app, ["worker", "--no-default"])
    assert result.exit_code == 1 and "serve no worker group" in result.output
    result = CliRunner().invoke(app, ["worker", "--group", "a b"])
    assert result.exit_code == 1 and "worker group 'a b'" in result.output


def test_start_command_worker_group() -> None:
    assert StartRun.model_validate({}).worker_group is None
    assert StartRun.model_validate({"workerGroup": "etl"}).worker_group == "etl"
    assert StartRun.model_validate({"workerGroup": " "}).worker_group == "default"
    with pytest.raises(ValidationError, match="workerGroup"):
        StartRun.model_validate({"workerGroup": "no@such"})


def test_datax_worker_group_setting(tmp_path: object) -> None:
    assert Settings(datax_worker_group=" datax ").datax_worker_group == "datax"
    assert Settings().datax_worker_group == ""
    with pytest.raises(ValidationError, match="worker group"):
        Settings(datax_worker_group="a@b")


def test_a_no_default_worker_polls_no_activity_on_the_shared_queue(tmp_path: object) -> None:
    """Temporal hands a queue's activity tasks to any poller: a --no-default process that polled the
    shared queue without SHELL failed the default group's SHELL tasks ("not registered")."""
    settings = Settings(data_dir=tmp_path, dev_mode=True, events_enabled=True)  # type: ignore[arg-type]
    assert shared_queue_activities(settings, None, default_group=False) == []  # type: ignore[arg-type]
    default = shared_queue_activities(settings, None, default_group=True)  # type: ignore[arg-type]
    names = {_Definition.must_from_callable(a).name for a in default}
    assert names >= ACTIVITY_TYPES
    assert {"load_definition", "evaluate_switch", "send_alerts"} <= names


def test_a_worker_of_no_default_group_still_runs_the_workflows_local_activities() -> None:
    """It runs workflows but polls no activity on the shared queue; a local activity runs in the
    worker that runs the workflow, so it must have them (api/worker.py: build_worker)."""
    names = {_Definition.must_from_callable(a).name for a in local_activities()}
    assert names == {"evaluate_switch", "find_lost_attempt"}
