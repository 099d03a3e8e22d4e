"""TLS and mutual TLS of every gRPC port and channel, from the `SENSEI_TLS_*` settings.

- `SENSEI_TLS_CERT_FILE` / `SENSEI_TLS_KEY_FILE`: the server's identity (PEM). Set, the
  service's gRPC port speaks TLS only.
- `SENSEI_TLS_CA_FILE`: the roots outgoing channels trust (unset: the system's), and the CA
  that client certificates must chain to.
- `SENSEI_TLS_CLIENT_AUTH`: `none` (default) or `require` (mutual TLS: a caller without a
  certificate of that CA is refused during the handshake).
- `SENSEI_TLS_CLIENT_CERT_FILE` / `SENSEI_TLS_CLIENT_KEY_FILE`: the certificate outgoing
  channels present (unset: the server pair, which then needs the clientAuth usage too).
- `SENSEI_TLS_SERVER_NAME`: the name outgoing channels expect in the server certificate
  instead of the address's host.

Outgoing channels use TLS whenever any file setting is set. `check_files` and
`pair_problems` back `shared.settings`: one line per missing, unreadable or malformed file,
and per key that is not its certificate's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

CERT_FILE = "SENSEI_TLS_CERT_FILE"
KEY_FILE = "SENSEI_TLS_KEY_FILE"
CA_FILE = "SENSEI_TLS_CA_FILE"
CLIENT_AUTH = "SENSEI_TLS_CLIENT_AUTH"
CLIENT_CERT_FILE = "SENSEI_TLS_CLIENT_CERT_FILE"
CLIENT_KEY_FILE = "SENSEI_TLS_CLIENT_KEY_FILE"
SERVER_NAME = "SENSEI_TLS_SERVER_NAME"
CLIENT_AUTH_CHOICES = ("none", "require")

_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9*]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class TlsSettings:
    """The TLS files and choices of one process (paths as given; read when used)."""

    cert_file: str = ""
    key_file: str = ""
    ca_file: str = ""
    client_auth: bool = False
    client_cert_file: str = ""
    client_key_file: str = ""
    server_name: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TlsSettings | None:
        """The settings in `env`; None when no TLS file is set (plaintext)."""
        value = cls(
            cert_file=env.get(CERT_FILE, "").strip(),
            key_file=env.get(KEY_FILE, "").strip(),
            ca_file=env.get(CA_FILE, "").strip(),
            client_auth=env.get(CLIENT_AUTH, "").strip().lower() == "require",
            client_cert_file=env.get(CLIENT_CERT_FILE, "").strip(),
            client_key_file=env.get(CLIENT_KEY_FILE, "").strip(),
            server_name=env.get(SERVER_NAME, "").strip(),
        )
        files = (value.cert_file, value.ca_file, value.client_cert_file)
        return value if any(files) else None

    @property
    def serves_tls(self) -> bool:
        """Whether the server has an identity, so its port speaks TLS."""
        return bool(self.cert_file and self.key_file)

    def server_credentials(self) -> grpc.ServerCredentials:
        """The server's credentials: its pair, and the client CA when client auth is required."""
        pair = (_read(self.key_file), _read(self.cert_file))
        roots = _read(self.ca_file) if self.ca_file else None
        return grpc.ssl_server_credentials(
            [pair], root_certificates=roots, require_client_auth=self.client_auth
        )

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """Credentials of an outgoing channel: the CA to trust, the certificate to present."""
        cert_file, key_file = self.client_pair()
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca_file) if self.ca_file else None,
            private_key=_read(key_file) if key_file else None,
            certificate_chain=_read(cert_file) if cert_file else None,
        )

    def client_pair(self) -> tuple[str, str]:
        """(certificate, key) files outgoing channels present; the server pair by default."""
        if self.client_cert_file:
            return self.client_cert_file, self.client_key_file
        return self.cert_file, self.key_file

    def channel_options(self) -> list[tuple[str, Any]]:
        """Channel arguments: the expected server name, when overridden."""
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []


class Target(str):
    """A `host:port` that also says how to reach it: `tls` None means plaintext.

    `ServiceConfig.address_of` returns one, so `shared.client.channel(address)` opens a TLS
    channel without the services passing settings along. Any string operation on it gives a
    plain `str` (plaintext), which a TLS server refuses: never a silent downgrade.
    """

    tls: TlsSettings | None

    def __new__(cls, address: str, tls: TlsSettings | None) -> Target:
        target = super().__new__(cls, address)
        target.tls = tls
        return target


def secure_channel(
    address: str, tls: TlsSettings, options: list[tuple[str, Any]] | None = None
) -> grpc.aio.Channel:
    """A plain `grpc.aio` TLS channel (no interceptors): CLI, dev stack, tests."""
    return grpc.aio.secure_channel(
        address, tls.channel_credentials(), options=[*(options or ()), *tls.channel_options()]
    )


def _read(path: str) -> bytes:
    return Path(path).read_bytes()


# --- checks at start (shared/settings.py) ---------------------------------------------------


def _readable(raw: str) -> bytes | str:
    """The file's bytes, or why it cannot be read."""
    try:
        return Path(raw).read_bytes()
    except FileNotFoundError:
        return "must be a readable file: there is no such file"
    except PermissionError:
        return "must be a readable file: permission denied"
    except IsADirectoryError:
        return "must be a readable file, not a directory"
    except OSError as exc:
        return f"must be a readable file: {exc.strerror or exc}"


def certificate_file() -> Callable[[str], str | None]:
    """A readable file of one or more PEM certificates."""

    def check(raw: str) -> str | None:
        data = _readable(raw)
        if isinstance(data, str):
            return data
        try:
            x509.load_pem_x509_certificates(data)
        except ValueError:
            return "must hold PEM certificates (-----BEGIN CERTIFICATE-----)"
        return None

    return check


def private_key_file() -> Callable[[str], str | None]:
    """A readable file holding an unencrypted PEM private key."""

    def check(raw: str) -> str | None:
        data = _readable(raw)
        if isinstance(data, str):
            return data
        try:
            serialization.load_pem_private_key(data, password=None)
        except TypeError:
            return "must hold an unencrypted PEM private key (this one needs a password)"
        except ValueError:
            return "must hold a PEM private key (-----BEGIN PRIVATE KEY-----)"
        return None

    return check


def server_name() -> Callable[[str], str | None]:
    """A DNS name (what the server certificate names)."""

    def check(raw: str) -> str | None:
        return None if _HOSTNAME.match(raw.strip()) else "must be a host name, e.g. org.sensei"

    return check


def pair_problems(env: Mapping[str, str]) -> list[str]:
    """Lines for settings that are fine alone but not together: half a pair, a key that is
    not its certificate's, client auth without a CA or without a server identity."""
    found: list[str] = []
    for cert_name, key_name in ((CERT_FILE, KEY_FILE), (CLIENT_CERT_FILE, CLIENT_KEY_FILE)):
        cert, key = env.get(cert_name, "").strip(), env.get(key_name, "").strip()
        if cert and not key:
            found.append(f"{key_name} is unset: {cert_name} needs its private key")
        elif key and not cert:
            found.append(f"{cert_name} is unset: {key_name} is the key of which certificate?")
        elif cert and key and not _matches(cert, key):
            found.append(
                f"{key_name} does not match {cert_name}: {key!r} is not the private key of"
                f" the first certificate in {cert!r}"
            )
    if env.get(CLIENT_AUTH, "").strip().lower() == "require":
        if not env.get(CA_FILE, "").strip():
            found.append(
                f"{CLIENT_AUTH}=require needs {CA_FILE}: the CA client certificates chain to"
            )
        if not env.get(CERT_FILE, "").strip():
            found.append(f"{CLIENT_AUTH}=require needs {CERT_FILE} and {KEY_FILE}: TLS first")
    return found


def _matches(cert_file: str, key_file: str) -> bool:
    """Whether the key is the first certificate's; True when either does not parse (those
    files get their own line)."""
    try:
        certificate = x509.load_pem_x509_certificates(Path(cert_file).read_bytes())[0]
        key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
    except (OSError, ValueError, TypeError, IndexError):
        return True
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    return bool(
        certificate.public_key().public_bytes(encoding, public)
        == key.public_key().public_bytes(encoding, public)
    )
