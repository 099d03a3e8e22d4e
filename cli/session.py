"""Where the CLI keeps its login, and which addresses and token a command uses.

`sensei login` stores the access token and the service addresses in
`$SENSEI_CLI_HOME/session.json` (default `$XDG_CONFIG_HOME/sensei`, else `~/.config/sensei`),
readable by its owner only. A command uses, in this order, the stored token while it is
valid, a remembered API key (`login --remember-key`) exchanged anew, `$SENSEI_TOKEN` while it
is valid, or `$SENSEI_API_KEY` exchanged for a token that is not stored. With `--as-operator`
it uses `$SENSEI_OPERATOR_API_KEY` (the platform operator's, from the bootstrap) instead.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from cli.errors import CliError, ExitCode

SERVICES = ("org", "migration", "verification", "pattern")
DEFAULT_ADDRESSES = {
    "org": "127.0.0.1:50051",
    "migration": "127.0.0.1:50052",
    "verification": "127.0.0.1:50053",
    "pattern": "127.0.0.1:50054",
}
SESSION_FILE = "session.json"
# The role of the platform operator's tokens (no organization).
OPERATOR_ROLE = "OPERATOR"
# A token this close to its expiry is treated as expired: a call must not die mid-way.
EXPIRY_MARGIN_SECONDS = 30.0


def home(environ: Mapping[str, str]) -> Path:
    """The directory of the CLI's session file."""
    explicit = environ.get("SENSEI_CLI_HOME")
    if explicit:
        return Path(explicit).expanduser()
    config = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config).expanduser() / "sensei"


def env_address(service: str, environ: Mapping[str, str]) -> str:
    """A service's address from `SENSEI_<SVC>_ADDR`, else its default port on localhost."""
    return environ.get(f"SENSEI_{service.upper()}_ADDR") or DEFAULT_ADDRESSES[service]


@dataclass(frozen=True)
class TokenClaims:
    """What the CLI reads from an access token (without verifying it; the services do)."""

    subject: str
    role: str
    org_id: str | None
    expires_at: float

    @property
    def org_name(self) -> str | None:
        """`organizations/{org}`, or None for a platform principal (service, operator)."""
        return f"organizations/{self.org_id}" if self.org_id else None

    def expired(self, now: float | None = None) -> bool:
        """Whether the token is expired or about to be."""
        return (now or time.time()) >= self.expires_at - EXPIRY_MARGIN_SECONDS


def claims_of(token: str) -> TokenClaims:
    """Reads the claims of a JWT access token; CliError when it is not one."""
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return TokenClaims(
            subject=str(data["sub"]),
            role=str(data["role"]),
            org_id=str(data["org"]) if data.get("org") else None,
            expires_at=float(data["exp"]),
        )
    except (IndexError, KeyError, TypeError, ValueError, binascii.Error):
        raise CliError("the access token is not a Sensei JWT", ExitCode.UNAUTHENTICATED) from None


@dataclass(frozen=True)
class Session:
    """A stored login: the token, the addresses it belongs with, and maybe the API key."""

    token: str
    addresses: dict[str, str]
    api_key: str = ""  # only with `login --remember-key`
    saved_at: float = field(default_factory=time.time)

    @property
    def claims(self) -> TokenClaims:
        """The token's claims."""
        return claims_of(self.token)

    def with_token(self, token: str) -> Session:
        """The same session with a new token."""
        return replace(self, token=token, saved_at=time.time())


def load(directory: Path) -> Session | None:
    """The stored session, or None when there is none; CliError when it is unreadable."""
    path = directory / SESSION_FILE
    try:
        data: Any = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path}: {exc}; run `sensei login` again") from None
    if not isinstance(data, dict) or not isinstance(data.get("token"), str):
        raise CliError(f"{path} is not a sensei session; run `sensei login` again")
    addresses = data.get("addresses")
    if not isinstance(addresses, dict):
        addresses = {}
    return Session(
        token=data["token"],
        addresses={k: str(v) for k, v in addresses.items() if k in SERVICES},
        api_key=str(data.get("api_key") or ""),
        saved_at=float(data.get("saved_at") or 0),
    )


def save(directory: Path, session: Session) -> Path:
    """Writes the session file (mode 0600, directory 0700), atomically; returns its path."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / SESSION_FILE
    data = {
        "token": session.token,
        "addresses": session.addresses,
        "saved_at": session.saved_at,
    }
    if session.api_key:
        data["api_key"] = session.api_key
    # mkstemp creates the file 0600, so the secret is never readable by others, not even briefly.
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".session-", suffix=".json")
    try:
        with os.fdopen(descriptor, "w") as file:
            json.dump(data, file, indent=2)
            file.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def forget(directory: Path) -> bool:
    """Removes the stored session; whether there was one."""
    path = directory / SESSION_FILE
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed
