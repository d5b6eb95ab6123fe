"""The worker skips the sandbox round trip per payload (api/delegating_runner.py: ContextFreeRunner)
only for a data converter that no serialization context changes and that has no external storage."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec, SerializationContext, WithSerializationContext
from temporalio.worker import UnsandboxedWorkflowRunner

from api.delegating_runner import ContextFreeRunner, context_free, takes_no_context
from core.settings import Settings
from core.temporal import data_converter


class _ContextCodec(PayloadCodec, WithSerializationContext):
    """A codec that keys its work on the workflow (as a per-workflow encryption key would)."""

    def __init__(self, context: SerializationContext | None = None) -> None:
        self.context = context

    def with_context(self, context: SerializationContext) -> _ContextCodec:
        return _ContextCodec(context)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)


def test_porpoise_converter_takes_no_context_and_the_runner_is_wrapped(tmp_path: Path) -> None:
    converter = data_converter(Settings(data_dir=tmp_path))
    assert takes_no_context(converter)
    runner = UnsandboxedWorkflowRunner()
    wrapped = context_free(runner, converter)
    assert isinstance(wrapped, ContextFreeRunner) and wrapped.inner is runner


def test_a_converter_that_takes_context_keeps_the_sandbox_round_trip(tmp_path: Path) -> None:
    converter = dataclasses.replace(data_converter(Settings(data_dir=tmp_path)), payload_codec=_ContextCodec())
    assert not takes_no_context(converter)
    runner = UnsandboxedWorkflowRunner()
    assert context_free(runner, converter) is runner


def test_external_storage_keeps_the_sandbox_round_trip(tmp_path: Path) -> None:
    converter = data_converter(Settings(data_dir=tmp_path))
    with_storage = dataclasses.replace(converter)
    object.__setattr__(with_storage, "external_storage", object())  # any storage: its context is read
    assert not takes_no_context(with_storage)
