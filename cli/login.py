"""`sensei login` / `sensei logout`: exchange an API key for a token and keep it."""

from __future__ import annotations

import argparse
import getpass
import sys
import time

import grpc

from cli import session as sessions
from cli.client import Client, exchange_api_key
from cli.commands import SubParsers
from cli.errors import CliError, ExitCode
from cli.output import Output


def register(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    """Adds `login` and `logout`."""
    login = commands.add_parser(
        "login",
        parents=[common],
        help="exchange an API key for an access token and store it",
        description=(
            "Exchanges an API key for an access token (AuthService.ExchangeApiKey) and stores "
            "the token with the service addresses in $SENSEI_CLI_HOME/session.json (default "
            "~/.config/sensei), mode 0600. Addresses come from the --*-addr flags, else "
            "SENSEI_*_ADDR, else 127.0.0.1:5005x; later commands use the stored ones."
        ),
    )
    login.add_argument(
        "--api-key",
        metavar="KEY",
        help="the API key; `-` reads it from stdin; default $SENSEI_API_KEY, else a prompt",
    )
    login.add_argument(
        "--remember-key",
        action="store_true",
        help="also store the API key, to get new tokens when the stored one expires",
    )
    login.set_defaults(handler=run_login)
    logout = commands.add_parser(
        "logout", parents=[common], help="forget the stored token (and API key)"
    )
    logout.set_defaults(handler=run_logout)


def _api_key(argument: str | None, client: Client) -> str:
    if argument == "-":
        key = sys.stdin.readline().strip()
    elif argument:
        key = argument.strip()
    elif client.environ.get("SENSEI_API_KEY"):
        key = client.environ["SENSEI_API_KEY"].strip()
    elif sys.stdin.isatty():
        key = getpass.getpass("API key: ").strip()
    else:
        key = ""
    if not key:
        raise CliError(
            "no API key: pass --api-key KEY (or `-` to read stdin) or set SENSEI_API_KEY",
            ExitCode.USAGE,
        )
    return key


async def run_login(args: argparse.Namespace, client: Client, out: Output) -> int:
    """Exchanges the key, stores the session, tells who is logged in."""
    api_key = _api_key(args.api_key, client)
    addresses = {
        service: getattr(args, f"{service}_addr", None)
        or sessions.env_address(service, client.environ)
        for service in sessions.SERVICES
    }
    try:
        response = await exchange_api_key(addresses["org"], api_key, client.timeout, client.environ)
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            raise CliError(
                f"cannot reach the org service at {addresses['org']}: {exc.details()}"
                " (set --org-addr or SENSEI_ORG_ADDR)",
                ExitCode.UNAVAILABLE,
            ) from None
        raise
    session = sessions.Session(
        token=response.access_token,
        addresses=addresses,
        api_key=api_key if args.remember_key else "",
    )
    claims = session.claims
    path = sessions.save(client.home, session)
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims.expires_at))
    if out.json_mode:
        out.json(
            {
                "subject": claims.subject,
                "role": claims.role,
                "organization": claims.org_name,
                "expireTime": expires,
                "session": str(path),
                "addresses": addresses,
            }
        )
        return ExitCode.OK
    where = claims.org_name or "no organization (service account)"
    out.line(f"Logged in as {claims.subject} ({claims.role}) in {where}.")
    out.line(f"Token valid until {expires}; session saved to {path}.")
    return ExitCode.OK


async def run_logout(args: argparse.Namespace, client: Client, out: Output) -> int:
    """Removes the session file."""
    existed = sessions.forget(client.home)
    if out.json_mode:
        out.json({"loggedOut": existed})
    else:
        out.line("Logged out." if existed else "Not logged in.")
    return ExitCode.OK
