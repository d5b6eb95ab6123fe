"""The files the README's examples name exist, and the alert channel example is a valid channel."""

from __future__ import annotations

import json
import re
from pathlib import Path

from core.alerts import ChannelType
from storage.alerts import ChannelSpec, parse_params

ROOT = Path(__file__).resolve().parents[2]


def test_every_at_file_in_the_readme_exists() -> None:
    readme = (ROOT / "README.md").read_text()
    named = re.findall(r"@([\w./-]+\.json)", readme)
    assert named, "the README shows a channel-add @file example"
    for name in named:
        assert (ROOT / name).is_file(), f"README names {name}, which does not exist"


def test_mail_channel_example_is_a_valid_email_channel() -> None:
    spec = ChannelSpec.model_validate(json.loads((ROOT / "docs/examples/mail-channel.json").read_text()))
    assert spec.type is ChannelType.EMAIL
    params = parse_params(spec.type, spec.params)
    assert getattr(params, "to", None) == ["etl@example.com"]
