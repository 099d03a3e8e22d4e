"""The offline verifier command: verify-certificate cert.json --keys jwks.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.verification.certificates import issue_certificate
from services.verification.envelope import CertificateClaims
from services.verification.keyring import Keyring, SigningKeyRecord, jwks_of
from services.verification.offline import main


@pytest.fixture
def files(
    tmp_path: Path, keyring: Keyring, active_record: SigningKeyRecord, claims: CertificateClaims
) -> tuple[Path, Path]:
    cert = tmp_path / "cert.json"
    keys = tmp_path / "jwks.json"
    cert.write_bytes(issue_certificate(claims, keyring.private_key(active_record.key_id)).envelope)
    keys.write_text(json.dumps(jwks_of([active_record])))
    return cert, keys


def test_valid_certificate_prints_valid_and_exits_zero(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cert, keys = files
    assert main(["verify-certificate", str(cert), "--keys", str(keys)]) == 0
    assert capsys.readouterr().out.strip() == "VALID"


def test_certificate_against_other_keys_prints_the_reason_and_exits_one(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cert, keys = files
    keys.write_text(json.dumps({"keys": []}))
    assert main(["verify-certificate", str(cert), "--keys", str(keys)]) == 1
    assert capsys.readouterr().out.startswith("UNKNOWN_KEY")


def test_tampered_certificate_prints_signature_invalid(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    cert, keys = files
    envelope = json.loads(cert.read_bytes())
    envelope["signatures"][0]["sig"] = envelope["signatures"][0]["sig"][:-8] + "AAAAAAA="
    cert.write_text(json.dumps(envelope))
    assert main(["verify-certificate", str(cert), "--keys", str(keys)]) == 1
    assert capsys.readouterr().out.startswith("SIGNATURE_INVALID")


def test_unreadable_keys_file_is_a_usage_error(files: tuple[Path, Path], tmp_path: Path) -> None:
    cert, _ = files
    assert main(["verify-certificate", str(cert), "--keys", str(tmp_path / "absent.json")]) == 2


def test_missing_keys_option_is_a_usage_error(files: tuple[Path, Path]) -> None:
    cert, _ = files
    assert main(["verify-certificate", str(cert)]) == 2
