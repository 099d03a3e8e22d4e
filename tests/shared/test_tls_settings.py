"""`SENSEI_TLS_*` are checked at start: one clear line per missing, unreadable or mismatched
file (shared/tls.py, shared/settings.py). Certificates are made here, per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devstack.tls import issue, make_authority, write_pair
from shared import settings


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    """A CA, a certificate with its key, and a second key that is not its."""
    authority = make_authority()
    (tmp_path / "ca.crt").write_bytes(authority.certificate_pem)
    cert, key = write_pair(tmp_path, "server", issue(authority, "server", ("127.0.0.1",)))
    _, other_key = write_pair(tmp_path, "other", issue(authority, "other"))
    return {
        "ca": str(tmp_path / "ca.crt"),
        "cert": str(cert),
        "key": str(key),
        "other": str(other_key),
    }


def _good(files: dict[str, str]) -> dict[str, str]:
    return {
        "SENSEI_TLS_CERT_FILE": files["cert"],
        "SENSEI_TLS_KEY_FILE": files["key"],
        "SENSEI_TLS_CA_FILE": files["ca"],
        "SENSEI_TLS_CLIENT_AUTH": "require",
    }


def test_a_complete_mutual_tls_setup_passes(files: dict[str, str]) -> None:
    assert settings.problems("org", _good(files)) == []
    separate_client = {
        **_good(files),
        "SENSEI_TLS_CLIENT_CERT_FILE": files["cert"],
        "SENSEI_TLS_CLIENT_KEY_FILE": files["key"],
        "SENSEI_TLS_SERVER_NAME": "org.sensei.internal",
    }
    assert settings.problems("org", separate_client) == []


def test_a_missing_file_is_named_with_its_path(files: dict[str, str], tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.crt")
    found = settings.problems("org", {**_good(files), "SENSEI_TLS_CA_FILE": missing})
    assert found == [
        f"SENSEI_TLS_CA_FILE must be a readable file: there is no such file, got {missing!r}"
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_key_is_reported(files: dict[str, str]) -> None:
    Path(files["key"]).chmod(0)
    found = settings.problems("org", _good(files))
    assert found == [
        f"SENSEI_TLS_KEY_FILE must be a readable file: permission denied, got {files['key']!r}"
    ]


def test_a_key_that_is_not_the_certificates_is_reported(files: dict[str, str]) -> None:
    found = settings.problems("org", {**_good(files), "SENSEI_TLS_KEY_FILE": files["other"]})
    assert len(found) == 1
    assert found[0].startswith("SENSEI_TLS_KEY_FILE does not match SENSEI_TLS_CERT_FILE")


def test_a_file_that_is_not_pem_is_reported(files: dict[str, str]) -> None:
    # A key where a certificate belongs, and a certificate where a key belongs.
    found = settings.problems(
        "org",
        {**_good(files), "SENSEI_TLS_CERT_FILE": files["key"], "SENSEI_TLS_KEY_FILE": files["ca"]},
    )
    assert [line.split()[0] for line in found] == ["SENSEI_TLS_CERT_FILE", "SENSEI_TLS_KEY_FILE"]
    assert "must hold PEM certificates" in found[0]
    assert "must hold a PEM private key" in found[1]


def test_half_a_pair_is_reported(files: dict[str, str]) -> None:
    found = settings.problems("org", {"SENSEI_TLS_CERT_FILE": files["cert"]})
    assert found == ["SENSEI_TLS_KEY_FILE is unset: SENSEI_TLS_CERT_FILE needs its private key"]
    found = settings.problems("org", {"SENSEI_TLS_CLIENT_KEY_FILE": files["key"]})
    assert len(found) == 1 and found[0].startswith("SENSEI_TLS_CLIENT_CERT_FILE is unset")


def test_client_auth_needs_a_ca_and_a_server_identity() -> None:
    found = settings.problems("org", {"SENSEI_TLS_CLIENT_AUTH": "require"})
    assert [line.split("=")[0] for line in found] == ["SENSEI_TLS_CLIENT_AUTH"] * 2
    assert settings.problems("org", {"SENSEI_TLS_CLIENT_AUTH": "optional"}) == [
        "SENSEI_TLS_CLIENT_AUTH must be one of none, require, got 'optional'"
    ]


def test_a_server_name_must_be_a_host_name() -> None:
    assert len(settings.problems("org", {"SENSEI_TLS_SERVER_NAME": "org:50051"})) == 1
    assert settings.problems("org", {"SENSEI_TLS_SERVER_NAME": "org.sensei"}) == []
