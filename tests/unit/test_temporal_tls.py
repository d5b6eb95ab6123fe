"""How the settings for an external Temporal become the SDK's TLS config and API key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from temporalio.service import TLSConfig

from core.settings import Settings
from core.temporal import api_key, tls_config


def test_the_dev_server_is_plaintext() -> None:
    s = Settings()  # type: ignore[call-arg]
    assert tls_config(s) is False and api_key(s) is None


def test_tls_alone_uses_the_system_roots_and_an_api_key_implies_tls() -> None:
    assert tls_config(Settings(temporal_tls=True)) is True  # type: ignore[call-arg]
    keyed = Settings(temporal_api_key=SecretStr("k-123"))  # type: ignore[call-arg]
    assert tls_config(keyed) is True and api_key(keyed) == "k-123"


def test_mtls_reads_the_ca_cert_and_key_files(tmp_path: Path) -> None:
    ca, cert, key = (tmp_path / n for n in ("ca.crt", "tls.crt", "tls.key"))
    for f in (ca, cert, key):
        f.write_bytes(f"-----{f.name}-----".encode())
    tls = tls_config(Settings(temporal_tls_ca_file=ca, temporal_tls_cert_file=cert,  # type: ignore[call-arg]
                              temporal_tls_key_file=key, temporal_tls_server_name="t.example"))
    assert isinstance(tls, TLSConfig)
    assert (tls.server_root_ca_cert, tls.client_cert, tls.client_private_key, tls.domain) == (
        b"-----ca.crt-----", b"-----tls.crt-----", b"-----tls.key-----", "t.example")


def test_a_cert_without_its_key_is_refused(tmp_path: Path) -> None:
    cert = tmp_path / "tls.crt"
    cert.write_text("x")
    with pytest.raises(ValidationError, match="temporal_tls_cert_file and temporal_tls_key_file go together"):
        Settings(temporal_tls_cert_file=cert)  # type: ignore[call-arg]


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="temporal_tls_ca_file: .*nope.pem is not a readable file"):
        Settings(temporal_tls_ca_file=tmp_path / "nope.pem")  # type: ignore[call-arg]
