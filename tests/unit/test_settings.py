"""Bad settings are refused at start with the setting named, not at first use."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.settings import Settings


@pytest.mark.parametrize(("field", "value", "says"), [
    ("datax_run_on", "cloud", "datax_run_on must be auto, local or k8s"),
    ("datax_k8s_min_xmx_gb", 0, "datax_k8s_min_xmx_gb"),
    ("log_secret_param_pattern", "([", "not a valid regex"),
    ("api_long_poll_limit", -1, "greater than or equal to 0"),
])
def test_a_bad_setting_names_itself(field: str, value: object, says: str) -> None:
    with pytest.raises(ValidationError) as e:
        Settings(**{field: value})  # type: ignore[arg-type]
    assert field in str(e.value) and says in str(e.value)


def test_the_ui_url_follows_the_ui_port_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PORPOISE_TEMPORAL_UI_URL", raising=False)
    assert Settings(temporal_ui_port=18233).temporal_ui_url == "http://127.0.0.1:18233"  # type: ignore[call-arg]
    monkeypatch.setenv("PORPOISE_TEMPORAL_UI_PORT", "18234")
    assert Settings().temporal_ui_url == "http://127.0.0.1:18234"  # type: ignore[call-arg]
    explicit = Settings(temporal_ui_port=18233, temporal_ui_url="https://ui.example")  # type: ignore[call-arg]
    assert explicit.temporal_ui_url == "https://ui.example"
