"""Alerts from inside a run, without ever holding the DAG (docs/alerts.md, reference §7).

The workflow calls :meth:`Alerts.task_failed`, :meth:`Alerts.task_timeout` and :meth:`Alerts.workflow_end`;
each checks DS's rule (:func:`core.alerts.should_send`) here, in workflow code, so a run without a
warning group (most of them) records nothing in its history. A due alert starts the ``send_alerts``
activity in the background: its retries are Temporal's, and the DAG goes on at once.

Only the end of the run waits, at most two minutes, for alerts still being sent (a workflow that
completes abandons its activities), and continue-as-new waits the same way so none is lost in the
hand-over. How each alert went is kept as an :class:`~core.contracts.AlertNote` in the run's status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from core.alerts import compact_status, should_send
from core.contracts import Activities, AlertNote, InstanceStatus, RunInput
from core.contracts.alerts import AlertKind, AlertRequest, AlertResult

ACTIVITY = Activities.SEND_ALERTS
MAX_ATTEMPTS = 3  # the activity itself returns the outcome on its last attempt
TASK_ALERT_NODES = 50  # a task alert names its task and the failures; the canvas is for the end alert
DRAIN = timedelta(minutes=2)  # the longest the end of a run (or a continue-as-new) waits for alerts


class Alerts:
    def __init__(self, run: RunInput, notes: list[AlertNote] | None = None) -> None:
        self._run = run
        self._pending: set[asyncio.Task[None]] = set()
        self.notes: list[AlertNote] = list(notes or [])

    def task_failed(self, status: Callable[[], InstanceStatus], task_code: int) -> None:
        self._start(AlertKind.TASK_FAILURE, status, task_code)

    def task_timeout(self, status: Callable[[], InstanceStatus], task_code: int) -> None:
        self._start(AlertKind.TASK_TIMEOUT, status, task_code)

    def workflow_end(self, status: InstanceStatus) -> None:
        self._start(AlertKind.WORKFLOW_END, lambda: status, None)

    async def drain(self) -> None:
        """Wait (bounded) for the alerts in flight; what is still sending after that is given up."""
        if not self._pending:
            return
        try:
            await workflow.wait_condition(lambda: not self._pending, timeout=DRAIN)
        except TimeoutError:
            workflow.logger.warning("%d alert(s) still sending after %s; not waiting longer",
                                    len(self._pending), DRAIN)
            for t in list(self._pending):
                t.cancel()

    def _start(self, kind: AlertKind, status_of: Callable[[], InstanceStatus], task_code: int | None) -> None:
        run = self._run
        if run.is_sub_process or run.warning_group_id <= 0:  # most runs: nothing to build
            return
        status = status_of()
        due, _ = should_send(kind, run.warning_type, status.state, is_sub_process=run.is_sub_process,
                             warning_group_id=run.warning_group_id)
        if not due:
            return
        small, counts, omitted = compact_status(
            status, keep=task_code, **({"max_nodes": TASK_ALERT_NODES} if task_code is not None else {}))
        request = AlertRequest(
            kind=kind, warning_group_id=run.warning_group_id, warning_type=run.warning_type, status=small,
            task_code=task_code, start_params=dict(run.start_params), command_type=run.command_type,
            timezone=run.timezone, max_attempts=MAX_ATTEMPTS, node_counts=counts, nodes_omitted=omitted)
        task = asyncio.create_task(self._send(request))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(self, request: AlertRequest) -> None:
        try:
            result: AlertResult = await workflow.execute_activity(
                ACTIVITY, request, result_type=AlertResult,
                start_to_close_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=5), backoff_coefficient=2.0,
                                         maximum_attempts=MAX_ATTEMPTS),
                summary=f"{request.kind.value} alert to group {request.warning_group_id}",
            )
            note = AlertNote(kind=request.kind.value, task_code=request.task_code, ok=result.ok,
                             summary=result.summary())
        except ActivityError as e:  # no worker took it in time, or every attempt crashed
            cause = e.cause.message if isinstance(e.cause, ApplicationError) else str(e.cause or e)
            note = AlertNote(kind=request.kind.value, task_code=request.task_code, ok=False,
                             summary=f"{request.kind.value} alert not sent: {cause}")
        if not note.ok:
            workflow.logger.warning("%s", note.summary)
        self.notes.append(note)


__all__ = ["Alerts"]
