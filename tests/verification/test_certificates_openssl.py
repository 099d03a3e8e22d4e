"""The hand verification in docs/certificates.md, run with real openssl, jq and base64."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.verification.certificates import issue_certificate
from services.verification.envelope import CertificateClaims
from services.verification.keyring import Keyring, SigningKeyRecord, jwks_of

DOC = Path(__file__).resolve().parents[2] / "docs" / "certificates.md"

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("bash", "openssl", "jq", "base64")),
    reason="needs bash, openssl, jq and base64",
)


def _documented_script() -> str:
    text = DOC.read_text()
    block = text.split("<!-- verify-script:start -->", 1)[1].split("<!-- verify-script:end -->")[0]
    return block.split("```sh\n", 1)[1].rsplit("```", 1)[0]


def _run(
    directory: Path, envelope: bytes, jwks: dict[str, object]
) -> subprocess.CompletedProcess[str]:
    (directory / "cert.json").write_bytes(envelope)
    (directory / "jwks.json").write_text(json.dumps(jwks))
    return subprocess.run(
        ["bash", "-c", _documented_script()],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_documented_openssl_commands_verify_a_certificate(
    tmp_path: Path, keyring: Keyring, active_record: SigningKeyRecord, claims: CertificateClaims
) -> None:
    issued = issue_certificate(claims, keyring.private_key(active_record.key_id))
    run = _run(tmp_path, issued.envelope, jwks_of([active_record]))
    assert run.returncode == 0, run.stderr
    assert "Verified OK" in run.stdout


def test_documented_openssl_commands_reject_a_tampered_payload(
    tmp_path: Path, keyring: Keyring, active_record: SigningKeyRecord, claims: CertificateClaims
) -> None:
    issued = issue_certificate(claims, keyring.private_key(active_record.key_id))
    envelope = json.loads(issued.envelope)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["score"] = 0.25
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    run = _run(tmp_path, json.dumps(envelope).encode(), jwks_of([active_record]))
    assert run.returncode != 0
    assert "Verified OK" not in run.stdout
    assert "Verification failure" in run.stdout + run.stderr


def test_documented_openssl_commands_reject_a_revoked_key(
    tmp_path: Path, keyring: Keyring, active_record: SigningKeyRecord, claims: CertificateClaims
) -> None:
    issued = issue_certificate(claims, keyring.private_key(active_record.key_id))
    revoked = active_record.revoked("compromised", datetime(2025, 6, 1, tzinfo=UTC))
    run = _run(tmp_path, issued.envelope, jwks_of([revoked]))
    assert run.returncode != 0
    assert "Verified OK" not in run.stdout
