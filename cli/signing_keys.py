"""`sensei signing-keys rotate|revoke`: the platform's certificate signing keys.

Platform-wide (every organization's certificates hang on them), so only platform principals
may change them: run these with `--as-operator` (or logged in with the operator's key).
`sensei certificates keys` lists them.
"""

from __future__ import annotations

import argparse

from cli import names
from cli.client import Client
from cli.commands import SubParsers
from cli.errors import ExitCode
from cli.output import Output, as_json, enum_label
from sensei.verification.v1 import verification_pb2, verification_pb2_grpc

pb = verification_pb2


def register(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    """Adds `signing-keys rotate` and `signing-keys revoke`."""
    group = commands.add_parser(
        "signing-keys", help="rotate or revoke certificate signing keys (platform operator)"
    )
    verbs = group.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    rotate = verbs.add_parser(
        "rotate",
        parents=[common],
        help="a new active key; the previous one is retired (its certificates stay valid)",
    )
    rotate.add_argument("--request-id", default="", help="idempotency key: a repeat rotates once")
    rotate.set_defaults(handler=run_rotate)
    revoke = verbs.add_parser(
        "revoke",
        parents=[common],
        help="revoke a key: every certificate it signed fails verification from now on",
    )
    revoke.add_argument("key", help="the key id, or signingKeys/{key id}")
    revoke.add_argument("--reason", default="", help="why (kept with the key)")
    revoke.set_defaults(handler=run_revoke)


def _stub(client: Client) -> verification_pb2_grpc.VerificationServiceStub:
    return verification_pb2_grpc.VerificationServiceStub(client.channel("verification"))


def _status(key: verification_pb2.SigningKey) -> str:
    return enum_label(pb.SigningKeyStatus.Name(key.status), "SIGNING_KEY_STATUS_")  # type: ignore[arg-type]


async def run_rotate(args: argparse.Namespace, client: Client, out: Output) -> int:
    """RotateSigningKey."""
    response = await _stub(client).RotateSigningKey(
        pb.RotateSigningKeyRequest(request_id=args.request_id),
        metadata=await client.metadata(),
        timeout=client.timeout,
    )
    if out.json_mode:
        out.json(as_json(response))
        return ExitCode.OK
    out.fields(
        [
            ("active key", response.signing_key.key_id),
            ("retired key", response.retired_key.key_id or "-"),
        ]
    )
    return ExitCode.OK


async def run_revoke(args: argparse.Namespace, client: Client, out: Output) -> int:
    """RevokeSigningKey."""
    name = names.signing_key(args.key)
    response = await _stub(client).RevokeSigningKey(
        pb.RevokeSigningKeyRequest(name=name, reason=args.reason),
        metadata=await client.metadata(),
        timeout=client.timeout,
    )
    if out.json_mode:
        out.json(as_json(response))
        return ExitCode.OK
    out.fields(
        [
            ("revoked key", f"{response.signing_key.key_id} ({_status(response.signing_key)})"),
            ("active key", response.active_key.key_id),
        ]
    )
    return ExitCode.OK
