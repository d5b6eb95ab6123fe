"""DATAX tasks on the Kubernetes path, against kmock with the official client (infrastructure notes §3.2, §5).

There is no cluster here: kmock serves the API, and tests/integration/k8s_fake.py plays the Job
controller, the kubelet (it runs the container's command, with the DataX contract stand-in as datax.py)
and the garbage collector. The activity is the real one, driven two ways: through Temporal's
ActivityEnvironment for the runner's paths (success, failure, timeout, cancel, worker restart, watch
expiry, pod stuck Pending), and through the real worker for the shared sample and the dynamic
password. Every test ends with no Job, ConfigMap or Secret left.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import kmock
import pytest
from cryptography.fernet import Fernet
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.datax.activity import DataxTask
from activities.datax.k8s import _Session
from core.contracts import TaskRequest
from core.settings import Settings
from storage.datasources import Cipher, DatasourceStore
from tests import dsbuild
from tests.integration.conftest_sql import MARIADB_URL, PG_URL, admin, out_param, scalar, unique
from tests.integration.datax_support import assert_run_keeps_secrets, datax_stack, datax_task, stream_job
from tests.integration.helpers import nodes, start, submit, wait
from tests.integration.k8s_fake import Behaviour, FakeController, KmockThread
from tests.integration.test_datax_local import (
    errors,
    grant_tables,
    register_sample_datasources,
    sample_databases,
    sample_document,
    tables,
)
from tests.integration.test_secrets import db_user, kick, set_password

NS = "datax"


@pytest.fixture(scope="module")
def km() -> Iterator[KmockThread]:
    thread = KmockThread().start()
    yield thread
    thread.stop()


@pytest.fixture
def controller(km: KmockThread) -> Iterator[FakeController]:
    fake = FakeController(km, NS).start()
    try:
        yield fake
        deadline = time.monotonic() + 5
        while any(fake.leftovers().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert fake.leftovers() == {"jobs": [], "configmaps": [], "secrets": []}
    finally:
        fake.stop()


@pytest.fixture
def k8s_settings(km: KmockThread, tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'reg.db'}", datax_k8s_namespace=NS,
                    datax_k8s_host=km.url, datax_run_on="k8s", datax_k8s_watch_seconds=0.5,
                    datax_k8s_poll_seconds=0.1, datax_k8s_unschedulable_seconds=0.5,
                    datax_k8s_node_selector={"pool": "etl"}, datax_k8s_image="porpoise/datax:test")


def store_for(settings: Settings) -> DatasourceStore:
    return DatasourceStore(settings.resolved_database_url, Cipher([Fernet.generate_key()]))


def request_for(tmp_path: Path, task_params: dict[str, Any], **fields: Any) -> TaskRequest:
    return TaskRequest(instance_id="inst-1", task_code=42, task_name="dx", task_type="DATAX", task_params=task_params,
                       log_dir=str(tmp_path / "logs"), **fields)


def environment(attempt: int = 1, heartbeat_details: list[Any] | None = None, run_id: str | None = None
                ) -> tuple[ActivityEnvironment, list[dict[str, Any]]]:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt, heartbeat_details=heartbeat_details or [],
                                   heartbeat_timeout=timedelta(seconds=1), start_to_close_timeout=None,
                                   workflow_id="wf-k8s",
                                   workflow_run_id=run_id or uuid.uuid4().hex, activity_id="42")
    beats: list[dict[str, Any]] = []
    env.on_heartbeat = lambda *details: beats.append(details[0]) if details and isinstance(details[0], dict) else None
    return env, beats


def custom(mode: str, **kw: Any) -> dict[str, Any]:
    return {"customConfig": 1, "json": stream_job(mode, **kw), "xms": 1, "xmx": 2}


def log_text(tmp_path: Path, attempt: int = 1) -> str:
    return (tmp_path / "logs" / f"42.{attempt}.log").read_text()


async def test_success_streams_the_pod_log_and_reports_statistics(
        controller: FakeController, k8s_settings: Settings, tmp_path: Path) -> None:
    env, beats = environment()
    result = await env.run(DataxTask(store_for(k8s_settings), k8s_settings).run,
                           request_for(tmp_path, custom("ok", records=5),
                                       out_params=[dsbuild_out("datax_records")]))
    assert result.exit_code == 0 and result.stats and result.stats["records"] == 5
    assert result.var_pool[0].value == "5"
    log = log_text(tmp_path)
    assert "runs k8s: this worker's datax_run_on is k8s" in log
    assert "StandAloneJobContainerCommunicator" in log and "读出记录总数" in log  # the pod's own lines
    assert "Job porpoise-datax-" in log and "succeeded (Complete); container exit code 0" in log
    assert "deleted Job" in log and "propagation Background" in log
    assert any(b.get("k8s_job", "").startswith("porpoise-datax-") for b in beats)

    job = next(iter(controller.seen.values())).job
    spec, pod = job["spec"], job["spec"]["template"]["spec"]
    assert spec["backoffLimit"] == 0 and spec["ttlSecondsAfterFinished"] == 300
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == "porpoise-datax"
    assert pod["nodeSelector"] == {"pool": "etl"} and pod["containers"][0]["image"] == "porpoise/datax:test"
    container = pod["containers"][0]
    assert container["resources"] == {"requests": {"memory": "2919Mi", "cpu": "1"}, "limits": {"memory": "2919Mi"}}
    assert "--jvm=-Xms1G -Xmx2G" in container["args"]


def dsbuild_out(name: str) -> Any:
    from model.definition import Property

    return Property.model_validate(out_param(name))


async def test_failure_reports_the_container_exit_code(controller: FakeController, k8s_settings: Settings,
                                                       tmp_path: Path) -> None:
    env, _ = environment()
    with pytest.raises(ApplicationError) as failed:
        await env.run(DataxTask(store_for(k8s_settings), k8s_settings).run, request_for(tmp_path, custom("fail")))
    assert "exited with code 1" in failed.value.message and "BackoffLimitExceeded" in failed.value.message
    assert "Framework-02" in failed.value.message  # DataX's own diagnosis, parsed from the pod log
    assert failed.value.details[0]["exit_code"] == 1


async def test_timeout_is_the_jobs_active_deadline(controller: FakeController, k8s_settings: Settings,
                                                   tmp_path: Path) -> None:
    settings = k8s_settings.model_copy(update={"datax_k8s_active_deadline_seconds": 1})
    env, _ = environment()
    with pytest.raises(ApplicationError, match="timed out on Kubernetes.*DeadlineExceeded"):
        await env.run(DataxTask(store_for(settings), settings).run, request_for(tmp_path, custom("hang")))
    assert next(iter(controller.seen.values())).job["spec"]["activeDeadlineSeconds"] == 1
    assert "container exit code 143" in log_text(tmp_path)  # datax.py's SIGTERM exit


async def test_cancel_deletes_the_job(controller: FakeController, k8s_settings: Settings, tmp_path: Path) -> None:
    env, _ = environment()
    task = asyncio.create_task(env.run(DataxTask(store_for(k8s_settings), k8s_settings).run,
                                       request_for(tmp_path, custom("hang"))))
    await until(lambda: bool(controller.processes), "the container to run")
    proc = next(iter(controller.processes.values()))
    await asyncio.sleep(0.5)
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert controller.batch.list_namespaced_job(NS).items == []
    assert "cancelled: deleting Job" in log_text(tmp_path)
    await until(lambda: proc.poll() is not None, "the garbage-collected pod's process to end")


async def test_a_retried_attempt_reattaches_to_the_running_job(
        controller: FakeController, k8s_settings: Settings, tmp_path: Path, km: KmockThread,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Attempt 1's worker dies mid-run (no cleanup); attempt 2 finds the Job in attempt 1's last heartbeat."""
    controller.behaviour = Behaviour(env={"DATAX_STUB_INTERVAL": "1.5"})  # runs ~3s: time to re-attach
    jobs_path = f"post /apis/batch/v1/namespaces/{NS}/jobs"
    creates = km.requests(jobs_path)
    run_id = uuid.uuid4().hex
    env1, beats1 = environment(attempt=1, run_id=run_id)
    monkeypatch.setattr(_Session, "delete", lambda self: None)  # a crashed worker cleans nothing up
    first = asyncio.create_task(env1.run(DataxTask(store_for(k8s_settings), k8s_settings).run,
                                         request_for(tmp_path, custom("ok", records=4))))
    await until(lambda: any("k8s_job" in b for b in beats1) and bool(controller.processes), "attempt 1 to run")
    env1.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    monkeypatch.undo()
    last = [b for b in beats1 if "k8s_job" in b][-1]
    assert controller.batch.read_namespaced_job(last["k8s_job"], NS)  # still there, still running

    env2, _ = environment(attempt=2, heartbeat_details=[last], run_id=run_id)
    result = await env2.run(DataxTask(store_for(k8s_settings), k8s_settings).run,
                            request_for(tmp_path, custom("ok", records=4)))
    assert result.exit_code == 0 and result.stats and result.stats["records"] == 4
    assert f"re-attaching to Job {last['k8s_job']}" in log_text(tmp_path, 2)
    assert len(controller.seen) == 1  # one Job ran, not two
    assert km.requests(jobs_path) - creates == 1  # attempt 1 created the Job, attempt 2 none


async def test_watch_expiry_resumes(controller: FakeController, k8s_settings: Settings, tmp_path: Path,
                                    km: KmockThread) -> None:
    controller.behaviour = Behaviour(env={"DATAX_STUB_INTERVAL": "0.4"}, finish_delay=1.2)
    settings = k8s_settings.model_copy(update={"datax_k8s_watch_seconds": 0.3})
    watches = km.requests(kmock.action.WATCH)
    env, _ = environment()
    result = await env.run(DataxTask(store_for(settings), settings).run, request_for(tmp_path, custom("ok")))
    assert result.exit_code == 0
    assert km.requests(kmock.action.WATCH) - watches >= 3  # kmock ignores timeoutSeconds: our window ended them
    note = next(line for line in log_text(tmp_path).splitlines() if "watch call(s)" in line)
    assert int(note.rsplit(" watch call(s)", 1)[0].rsplit(" ", 1)[1]) >= 3


@pytest.mark.parametrize(("mode", "message"), [
    ("unschedulable", r"could not start: pod \S+ stayed Pending for 0.5s \(Unschedulable: 0/3 nodes"),
    ("image-pull", r"could not start: pod \S+ is in ImagePullBackOff: Back-off pulling image"),
])
async def test_a_pod_that_cannot_start_fails_clearly(controller: FakeController, k8s_settings: Settings,
                                                     tmp_path: Path, mode: str, message: str) -> None:
    controller.behaviour = Behaviour(mode=mode)
    env, _ = environment()
    with pytest.raises(ApplicationError, match=message):
        await env.run(DataxTask(store_for(k8s_settings), k8s_settings).run, request_for(tmp_path, custom("ok")))
    assert "deleted Job" in log_text(tmp_path)


async def until(check: Any, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


# --------------------------------------------------------------------------------------------------
# Through the real worker: the shared sample, and a changed password
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
async def k8s_stack(client: Client, settings: Settings, km: KmockThread, tmp_path_factory: pytest.TempPathFactory
                    ) -> AsyncIterator[tuple[Settings, httpx.AsyncClient]]:
    async with datax_stack(client, settings, tmp_path_factory.mktemp("datax-k8s"), datax_k8s_namespace=NS,
                           datax_k8s_host=km.url, datax_k8s_watch_seconds=1.0, datax_k8s_poll_seconds=0.25) as pair:
        yield pair


@pytest.mark.skipif(not MARIADB_URL, reason="PORPOISE_TEST_MARIADB_URL not set (.ci/run sets it)")
async def test_the_shared_sample_runs_as_kubernetes_jobs(controller: FakeController,
                                                         k8s_stack: tuple[Settings, httpx.AsyncClient]) -> None:
    own, api = k8s_stack
    with sample_databases():
        await register_sample_datasources(api)
        doc = sample_document(fix_custom=True)
        tasks = json.loads(doc["taskDefinitionJson"])
        for t in tasks:
            t["taskParams"]["runOn"] = "k8s"  # the task option of the routing rule
        doc["taskDefinitionJson"] = json.dumps(tasks)
        saved = await submit(api, doc)
        status = await wait(api, await start(api, saved["code"]), 90)
        assert status["state"] == "SUCCESS", errors(status)
        with admin("mariadb") as engine:
            assert scalar(engine, "select count(*) from source_db.target_table") == 6
            assert scalar(engine, "select count(*) from target_db.target_table") == 3
        assert len(controller.seen) == 3
        for seen in controller.seen.values():  # the password is only in the Secret
            assert "pwd" not in json.dumps(seen.job) and "pwd" not in json.dumps(seen.config_map)
            assert set(seen.secret["string_data"].values()) == {"pwd"}
            assert "${porpoise_ds_1_password}" in seen.config_map["data"]["job.json"]
        r = await api.get(f"/runs/{status['instanceId']}/tasks/{nodes(status)['task_datax']['code']}/log")
        assert "runs k8s: the task says runOn=k8s" in r.text and "读出记录总数" in r.text


@pytest.mark.skipif(not PG_URL, reason="PORPOISE_TEST_POSTGRES_URL not set (.ci/run sets it)")
async def test_a_changed_password_applies_on_kubernetes(controller: FakeController, client: Client,
                                                        k8s_stack: tuple[Settings, httpx.AsyncClient]) -> None:
    """One database is enough here: the local test covers both; this one covers the Secret path."""
    own, api = k8s_stack
    db = "postgres"
    # The new one holds what a shell or a quoting scheme could trip on: ' " $HOME and a space.
    first, second = f"K1x{uuid.uuid4().hex}", f"""K2'x"$HOME {uuid.uuid4().hex}"""
    src, dst = unique("dxk_src"), unique("dxk_dst")
    with db_user(db, first) as user, tables(db, src, dst):
        grant_tables(db, user, src, dst)
        from sqlalchemy import make_url

        from tests.integration.conftest_sql import admin_url

        url = make_url(admin_url(db))
        ds_type = "POSTGRESQL" if db == "postgres" else "MARIADB"
        r = await api.post("/datasources", json={"name": unique("dxk"), "type": ds_type, "host": url.host,
                                                 "port": url.port, "database": url.database, "userName": user,
                                                 "password": first})
        ds = r.json()
        task = datax_task("ui", dsType=ds_type, dataSource=ds["id"], dtType=ds_type, dataTarget=ds["id"],
                          sql=f"select id, label from {src}", targetTable=dst, xmx=8,  # xmx >= 4G: Kubernetes
                          local_params=[out_param("datax_records")])
        saved = await submit(api, dsbuild.export(unique("dxk_rotation"), [task], [(None, "ui")]))

        async def once() -> dict[str, Any]:
            return await wait(api, await start(api, saved["code"]), 60)

        status = await once()
        assert status["state"] == "SUCCESS", errors(status)
        assert nodes(status)["ui"]["varPool"][-1]["value"] == "2"
        set_password(db, user, second)  # on the real database and in the registry
        kick(db, user)
        r = await api.put(f"/datasources/{ds['id']}", json={"password": second})
        assert r.status_code == 200
        fresh = await once()
        assert fresh["state"] == "SUCCESS", errors(fresh)
        secrets = [s.secret["string_data"] for s in controller.seen.values()]
        assert secrets[0] == {f"PORPOISE_DS_{ds['id']}_PASSWORD": first}
        # the new password, in the Secret, escaped for the JSON string its placeholder sits in
        assert secrets[-1] == {f"PORPOISE_DS_{ds['id']}_PASSWORD": second.replace('"', '\\"')}
        for run_status in (status, fresh):
            await assert_run_keeps_secrets(client, own, run_status["instanceId"], [first, second])

