"""`sensei certificates get|verify|keys`: fetch a certificate, check it online or offline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, cast

from cli import names
from cli.client import Client
from cli.commands import SubParsers
from cli.errors import CliError, ExitCode
from cli.output import Output, as_json, count, enum_label, when
from sensei.verification.v1 import verification_pb2, verification_pb2_grpc

pb = verification_pb2
VALIDITY_PREFIX = "CERTIFICATE_VALIDITY_"


def register(commands: SubParsers, common: argparse.ArgumentParser) -> None:
    """Adds `certificates` and its subcommands."""
    group = commands.add_parser("certificates", help="fetch and verify certificates")
    verbs = group.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    get = verbs.add_parser(
        "get",
        parents=[common],
        help="show a certificate or save its envelope",
        description=(
            "Fetches a certificate (by its name, id, or the name of the verification it "
            "certifies). With -o FILE the DSSE envelope is written byte for byte as issued: "
            "the file `certificates verify` and offline tools check."
        ),
    )
    get.add_argument(
        "certificate",
        help="organizations/{org}/certificates/{id}, certificates/{id}, id, or a verification",
    )
    get.add_argument("-o", "--output", type=Path, help="write the envelope here (`-` for stdout)")
    get.set_defaults(handler=run_get)

    verify = verbs.add_parser(
        "verify",
        parents=[common],
        help="check a certificate envelope file",
        description=(
            "Checks a DSSE envelope file with VerificationService.VerifyCertificate (public, "
            "no login needed) or, with --offline, locally against a JWKS file (from "
            "`sensei certificates keys -o jwks.json`). Exits 0 when VALID, 1 otherwise."
        ),
    )
    verify.add_argument("file", type=Path, help="the envelope file (from `certificates get -o`)")
    verify.add_argument(
        "--offline", action="store_true", help="verify locally, without calling any service"
    )
    verify.add_argument("--keys", type=Path, help="JWKS file of the signing keys (with --offline)")
    verify.set_defaults(handler=run_verify)

    keys = verbs.add_parser(
        "keys",
        parents=[common],
        help="list the certificate signing keys, or save them as a JWKS file",
    )
    keys.add_argument("-o", "--output", type=Path, help="write the JWKS here (`-` for stdout)")
    keys.set_defaults(handler=run_keys)


def _stub(client: Client) -> verification_pb2_grpc.VerificationServiceAsyncStub:
    return cast(
        "verification_pb2_grpc.VerificationServiceAsyncStub",
        verification_pb2_grpc.VerificationServiceStub(client.channel("verification")),
    )


def validity_label(validity: int) -> str:
    """`VALID` for CERTIFICATE_VALIDITY_VALID."""
    return enum_label(pb.CertificateValidity.Name(validity), VALIDITY_PREFIX)  # type: ignore[arg-type]


async def _certificate_name(reference: str, client: Client) -> str:
    if not names.is_verification(reference):
        return await names.certificate(reference, client)
    name = await names.verification(reference, client)
    response = await _stub(client).GetVerification(
        pb.GetVerificationRequest(name=name),
        metadata=await client.metadata(),
        timeout=client.timeout,
    )
    if not response.verification.certificate:
        status = enum_label(
            pb.VerificationStatus.Name(response.verification.status),  # type: ignore[arg-type]
            "VERIFICATION_STATUS_",
        )
        raise CliError(f"{name} has no certificate (it is {status})", ExitCode.NOT_FOUND)
    return str(response.verification.certificate)


def _write(path: Path, data: bytes, out: Output) -> None:
    if str(path) == "-":
        buffer = getattr(out.stdout, "buffer", None)
        if buffer is not None:
            out.stdout.flush()
            buffer.write(data)
            buffer.flush()
        else:
            out.stdout.write(data.decode())
            out.stdout.flush()
        return
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}", ExitCode.ERROR) from None


async def run_get(args: argparse.Namespace, client: Client, out: Output) -> int:
    """Fetches a certificate; prints it or writes its envelope."""
    name = await _certificate_name(args.certificate, client)
    response = await _stub(client).GetCertificate(
        pb.GetCertificateRequest(name=name),
        metadata=await client.metadata(),
        timeout=client.timeout,
    )
    certificate = response.certificate
    if args.output is not None:
        _write(args.output, certificate.envelope, out)
        if str(args.output) == "-":
            return ExitCode.OK
        if out.json_mode:
            out.json({"certificate": certificate.name, "written": str(args.output)})
        else:
            out.line(f"wrote the envelope of {certificate.name} to {args.output}")
        return ExitCode.OK
    if out.json_mode:
        out.json(as_json(certificate))
        return ExitCode.OK
    out.fields(
        [
            ("name", certificate.name),
            ("verification", certificate.verification),
            (
                "type",
                enum_label(
                    pb.VerificationType.Name(certificate.verification_type), "VERIFICATION_TYPE_"
                ),
            ),  # type: ignore[arg-type]
            ("score", f"{certificate.score:.3f}"),
            ("source schema", certificate.source_schema_fingerprint),
            ("target schema", certificate.target_schema_fingerprint),
            ("result digest", certificate.result_digest),
            ("key id", certificate.key_id),
            ("payload type", certificate.payload_type),
            ("issued", when(certificate.create_time)),
        ]
    )
    return ExitCode.OK


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes() if str(path) != "-" else sys.stdin.buffer.read()
    except OSError as exc:
        raise CliError(f"cannot read {what} {path}: {exc.strerror}", ExitCode.USAGE) from None


async def run_verify(args: argparse.Namespace, client: Client, out: Output) -> int:
    """VALID (exit 0) or the reason (exit 1)."""
    envelope = _read(args.file, "certificate")
    if args.offline:
        validity, key_id, detail, statement = _verify_offline(envelope, args.keys)
    else:
        if args.keys is not None:
            raise CliError("--keys goes with --offline", ExitCode.USAGE)
        response = await _stub(client).VerifyCertificate(
            pb.VerifyCertificateRequest(envelope=envelope), timeout=client.timeout
        )
        validity = validity_label(response.validity)
        key_id, detail = response.key_id, response.detail
        statement = as_json(response.statement) if response.HasField("statement") else None
    valid = validity == "VALID"
    if out.json_mode:
        verdict: dict[str, Any] = {"validity": validity, "keyId": key_id, "detail": detail}
        if statement is not None:
            verdict["statement"] = statement
        verdict["offline"] = bool(args.offline)
        out.json(verdict)
    elif valid:
        out.line(f"VALID  signed by key {key_id}")
        _summarize(statement, out)
    else:
        out.line(f"{validity}: {detail}" if detail else validity)
    return ExitCode.OK if valid else ExitCode.NEGATIVE


def _summarize(statement: dict[str, Any] | None, out: Output) -> None:
    if not statement:
        return
    predicate = statement.get("predicate") or {}
    subjects = statement.get("subject") or []
    out.fields(
        [
            ("certificate", predicate.get("certificateId", "")),
            ("migration", predicate.get("migrationId", "")),
            ("type", predicate.get("type", "")),
            ("score", predicate.get("score", "")),
            ("issued", predicate.get("time", "")),
            *(
                (f"{side} schema", (subject.get("digest") or {}).get("sha256", ""))
                for side, subject in zip(("source", "target"), subjects, strict=False)
                if isinstance(subject, dict)
            ),
        ]
    )


def _verify_offline(
    envelope: bytes, keys_path: Path | None
) -> tuple[str, str, str, dict[str, Any] | None]:
    if keys_path is None:
        raise CliError(
            "--offline needs --keys jwks.json"
            " (get it with `sensei certificates keys -o jwks.json`)",
            ExitCode.USAGE,
        )
    try:
        jwks = json.loads(_read(keys_path, "keys"))
    except ValueError as exc:
        raise CliError(f"cannot read keys {keys_path}: {exc}", ExitCode.USAGE) from None
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise CliError(f'{keys_path} is not a JWKS ({{"keys": [...]}})', ExitCode.USAGE)
    # The same code as `python -m services.verification verify-certificate`: no server, no database.
    from services.verification.certificates import verify_envelope

    outcome = verify_envelope(envelope, jwks)
    return outcome.validity.value, outcome.key_id, outcome.detail, outcome.statement


async def run_keys(args: argparse.Namespace, client: Client, out: Output) -> int:
    """Lists the signing keys (public); -o writes the JWKS the offline verifier reads."""
    stub = _stub(client)
    request = pb.ListSigningKeysRequest()
    keys: list[verification_pb2.SigningKey] = []
    while True:
        response = await stub.ListSigningKeys(request, timeout=client.timeout)
        keys.extend(response.signing_keys)
        if not response.next_page_token:
            break
        request.page_token = response.next_page_token
    jwks = {"keys": [as_json(key.jwk) for key in keys]}
    if args.output is not None:
        _write(args.output, (json.dumps(jwks, indent=2) + "\n").encode(), out)
        if str(args.output) != "-":
            if out.json_mode:
                out.json({"written": str(args.output), "keys": len(keys)})
            else:
                out.line(f"wrote {count(len(keys), 'signing key')} to {args.output}")
        return ExitCode.OK
    if out.json_mode:
        out.json(jwks)
        return ExitCode.OK
    out.table(
        ["KEY ID", "STATUS", "NOT BEFORE", "NOT AFTER"],
        [
            (
                key.key_id,
                enum_label(pb.SigningKeyStatus.Name(key.status), "SIGNING_KEY_STATUS_"),  # type: ignore[arg-type]
                when(key.not_before),
                when(key.not_after),
            )
            for key in keys
        ],
    )
    return ExitCode.OK
