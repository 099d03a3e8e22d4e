"""Offline certificate verifier: `verify-certificate cert.json --keys jwks.json`.

Needs no server and no database: the certificate envelope and the published JWKS (with key
status) are all it reads. Prints VALID or the reason; exits 0 only when the certificate is valid.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from services.verification.certificates import CertificateValidity, verify_envelope

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.verification",
        description="Sensei verification service tools.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser(
        "verify-certificate",
        help="verify a certificate (DSSE envelope) against published signing keys",
    )
    verify.add_argument("certificate", type=Path, help="the DSSE envelope JSON file")
    verify.add_argument(
        "--keys", required=True, type=Path, help="JWKS JSON file of the signing keys with status"
    )
    return parser


def main(argv: list[str]) -> int:
    """Run the offline verifier on `argv` (without the program name); returns the exit code.

    Prints `VALID` (exit 0) or the reason (`SIGNATURE_INVALID`, `UNKNOWN_KEY`, `KEY_REVOKED`,
    `MALFORMED`, `PAYLOAD_TYPE_MISMATCH`) followed by a detail (exit 1); exit 2 on bad usage or an
    unreadable keys file.
    """
    try:
        arguments = _parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        envelope = arguments.certificate.read_bytes()
    except OSError as exc:
        print(f"cannot read certificate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        jwks = json.loads(arguments.keys.read_bytes())
    except (OSError, ValueError) as exc:
        print(f"cannot read keys: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not isinstance(jwks, dict):
        print("cannot read keys: not a JWKS object", file=sys.stderr)
        return EXIT_USAGE
    outcome = verify_envelope(envelope, jwks)
    if outcome.valid:
        print(CertificateValidity.VALID.value)
        return EXIT_VALID
    print(f"{outcome.validity.value}: {outcome.detail}")
    return EXIT_INVALID
