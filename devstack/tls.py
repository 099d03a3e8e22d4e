"""A throwaway certificate authority and certificates for `make run TLS=1` and the tests.

`write_dev_tls(directory)` makes a fresh CA, one server certificate for every service
(named `localhost` and `127.0.0.1`, usable as a client certificate too, so services call
each other with it) and a client certificate for people (the CLI, grpcurl), as PEM files,
and returns the `SENSEI_TLS_*` settings that use them with mutual TLS required. Keys are
ECDSA P-256, readable by their owner only. `python -m devstack.tls DIR` writes the same
files for Compose or a test cluster (docker-compose.tls.yml, deploy/k8s-tls/). Nothing here
is for production.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_FOR = datetime.timedelta(days=30)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
# Compose and Kubernetes: the services' host names, and loopback for the health checks.
SERVICE_NAMES = ("org", "migration", "verification", "pattern", *LOOPBACK_NAMES)


@dataclass(frozen=True)
class Authority:
    """A CA: its key and self-signed certificate."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def certificate_pem(self) -> bytes:
        """The CA certificate, PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, PEM."""

    certificate_pem: bytes
    key_pem: bytes


def make_authority(common_name: str = "Sensei dev CA") -> Authority:
    """A new self-signed CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Authority(key, certificate)


def issue(
    authority: Authority, common_name: str, hosts: tuple[str, ...] = (), *, server: bool = True
) -> Issued:
    """A certificate signed by `authority` for `hosts` (DNS names or IP addresses); always
    usable by a client, by a server too when `server`."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(authority.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALID_FOR)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([_general_name(host) for host in hosts]), critical=False
        )
    certificate = builder.sign(authority.key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return Issued(certificate.public_bytes(serialization.Encoding.PEM), key_pem)


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def write_pair(directory: Path, stem: str, issued: Issued) -> tuple[Path, Path]:
    """Writes `<stem>.crt` and `<stem>.key` (0600); returns their paths."""
    cert_path, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert_path.write_bytes(issued.certificate_pem)
    key_path.touch(mode=0o600)
    key_path.chmod(0o600)
    key_path.write_bytes(issued.key_pem)
    return cert_path, key_path


def write_dev_tls(
    directory: Path, hosts: tuple[str, ...] = LOOPBACK_NAMES
) -> tuple[dict[str, str], dict[str, str]]:
    """A fresh CA and certificates under `directory` (the server's for `hosts`); returns
    (the services' settings, the settings of people's tools: the CLI's, as in .sensei/dev.env)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    authority = make_authority()
    ca_path = directory / "ca.crt"
    ca_path.write_bytes(authority.certificate_pem)
    server_cert, server_key = write_pair(
        directory, "server", issue(authority, "sensei services", hosts)
    )
    client_cert, client_key = write_pair(
        directory, "client", issue(authority, "sensei developer", server=False)
    )
    services = {
        "SENSEI_TLS_CERT_FILE": str(server_cert),
        "SENSEI_TLS_KEY_FILE": str(server_key),
        "SENSEI_TLS_CA_FILE": str(ca_path),
        "SENSEI_TLS_CLIENT_AUTH": "require",
    }
    people = {
        "SENSEI_TLS_CA_FILE": str(ca_path),
        "SENSEI_TLS_CLIENT_CERT_FILE": str(client_cert),
        "SENSEI_TLS_CLIENT_KEY_FILE": str(client_key),
    }
    return services, people


def main(argv: list[str] | None = None) -> None:
    """`python -m devstack.tls DIR`: a test CA and certificates for compose or a cluster."""
    parser = argparse.ArgumentParser(prog="python -m devstack.tls", description=main.__doc__)
    parser.add_argument("directory", type=Path)
    parser.add_argument(
        "--hosts", default=",".join(SERVICE_NAMES), help="names of the server certificate"
    )
    args = parser.parse_args(argv)
    write_dev_tls(args.directory, tuple(h.strip() for h in args.hosts.split(",") if h.strip()))
    for name in ("ca.crt", "server.crt", "server.key", "client.crt", "client.key"):
        print(args.directory / name)


if __name__ == "__main__":
    main()
