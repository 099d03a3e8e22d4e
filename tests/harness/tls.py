"""Certificates for tests, made at run time (devstack/tls.py), never checked in."""

from __future__ import annotations

from pathlib import Path

from devstack.tls import Authority, issue, write_pair


def service_tls_env(authority: Authority, directory: Path) -> dict[str, str]:
    """`SENSEI_TLS_*` of a service with a certificate of `authority` for 127.0.0.1 (used for
    its outgoing calls too), trusting `authority`, client certificates required."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_bytes(authority.certificate_pem)
    cert, key = write_pair(directory, "service", issue(authority, "services", ("127.0.0.1",)))
    return {
        "SENSEI_TLS_CERT_FILE": str(cert),
        "SENSEI_TLS_KEY_FILE": str(key),
        "SENSEI_TLS_CA_FILE": str(directory / "ca.crt"),
        "SENSEI_TLS_CLIENT_AUTH": "require",
    }
