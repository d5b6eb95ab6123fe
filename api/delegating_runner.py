"""A workflow runner that wraps another, for worker code that acts around every activation.

The SDK's ``WorkflowRunner`` makes a ``WorkflowInstance`` per cached run and calls its ``activate`` on
a workflow-task thread. Subclasses override :meth:`DelegatingRunner.wrap` and
:meth:`DelegatingInstance.activate`; everything else the worker asks of a runner or an instance goes to
the wrapped one. Used by the instance-event commit (api/interceptors.py), by
:class:`ContextFreeRunner` below and by the activation timer of the benchmarks (bench/activations.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.converter import DataConverter, WorkflowSerializationContext
from temporalio.worker import WorkflowRunner
from temporalio.worker._workflow_instance import WorkflowInstance, WorkflowInstanceDetails
from temporalio.workflow import _Definition


class DelegatingInstance(WorkflowInstance):
    def __init__(self, inner: WorkflowInstance) -> None:
        self.inner = inner

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        return self.inner.activate(act)

    def get_serialization_context(self, command_info: Any) -> Any:
        return self.inner.get_serialization_context(command_info)

    def get_external_store_context(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner.get_external_store_context(*args, **kwargs)

    def get_info(self) -> Any:
        return self.inner.get_info()

    def get_thread_id(self) -> int | None:
        return self.inner.get_thread_id()

    def __getattr__(self, name: str) -> Any:  # anything else the worker asks of the instance
        return getattr(self.inner, name)


class DelegatingRunner(WorkflowRunner):
    def __init__(self, inner: WorkflowRunner) -> None:
        self.inner = inner

    def prepare_workflow(self, defn: _Definition) -> None:
        self.inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return self.wrap(self.inner.create_instance(det), det)

    def wrap(self, instance: WorkflowInstance, det: WorkflowInstanceDetails) -> WorkflowInstance:
        """The instance the worker gets (called on the worker's event loop); the wrapped one by default."""
        return instance

    def set_worker_level_failure_exception_types(self, types: Sequence[type[BaseException]]) -> None:
        self.inner.set_worker_level_failure_exception_types(types)


class ContextFreeRunner(DelegatingRunner):
    """Skips the sandbox round trip the SDK makes for every payload sequence it encodes or decodes.

    To encode a completion or decode an activation, the worker asks the workflow instance, once per
    payload sequence, for the serialization context of the command the payloads belong to, and for
    its external-storage context. A sandboxed instance answers each question by running code in the
    sandbox: compiling a small snippet and entering the sandbox's importer. That was 15-20 % of the
    worker's samples in a dry run (docs/performance.md, "Run starts through the API, the sandbox's
    round trip per payload, ..."). A data converter that no context changes (no converter, codec or
    failure converter takes one) and that has no external storage makes the same payloads whatever
    the answers are; for it, the context is None (the worker then uses its own converter, which is
    what a context would have given back) and no storage context is needed. Use
    :func:`context_free` to wrap a runner only when that holds."""

    def wrap(self, instance: WorkflowInstance, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _ContextFreeInstance(instance)


class _ContextFreeInstance(DelegatingInstance):
    def get_serialization_context(self, command_info: Any) -> Any:
        return None

    def get_external_store_context(self, *args: Any, **kwargs: Any) -> Any:
        return None  # read only by external storage, which the converter has none of


def takes_no_context(converter: DataConverter) -> bool:
    """Whether ``converter`` is the same with any serialization context and has no external storage."""
    probe = WorkflowSerializationContext(namespace="porpoise-probe", workflow_id="porpoise-probe")
    return converter.external_storage is None and converter.with_context(probe) is converter


def context_free(runner: WorkflowRunner, converter: DataConverter) -> WorkflowRunner:
    """``runner`` wrapped in :class:`ContextFreeRunner` if ``converter`` takes no context, else as is."""
    return ContextFreeRunner(runner) if takes_no_context(converter) else runner
