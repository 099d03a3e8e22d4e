"""`python -m shared.healthcheck HOST:PORT [SERVICE]`: exit 0 when the server is SERVING.

A container health check for Docker Compose (the image has no grpc_health_probe);
Kubernetes uses its native gRPC probes instead (an exec probe of this command with TLS:
native probes speak plaintext only). SERVICE defaults to "" (the whole server). Exit status
1 for any other status, and when the server cannot be reached in time.

TLS: the container's own `SENSEI_TLS_*` settings (the CA, and the client certificate or the
server pair when the server requires client certificates), or `--tls-ca/--tls-cert/--tls-key`.
"""

from __future__ import annotations

import argparse
import os
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from shared import tls as tls_settings
from shared.tls import TlsSettings


def status_of(
    address: str, service: str = "", timeout: float = 3.0, tls: TlsSettings | None = None
) -> str:
    """The health status name `address` reports for `service` (raises grpc.RpcError)."""
    channel = (
        grpc.secure_channel(address, tls.channel_credentials(), options=tls.channel_options())
        if tls is not None
        else grpc.insecure_channel(address)
    )
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m shared.healthcheck")
    parser.add_argument("address", help="HOST:PORT of the gRPC server")
    parser.add_argument("service", nargs="?", default="", help='service name ("" = server)')
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    parser.add_argument("--tls-ca", help="CA file to trust (default $SENSEI_TLS_CA_FILE)")
    parser.add_argument("--tls-cert", help="client certificate (default: from SENSEI_TLS_*)")
    parser.add_argument("--tls-key", help="its private key")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    for flag, name in (
        (args.tls_ca, tls_settings.CA_FILE),
        (args.tls_cert, tls_settings.CLIENT_CERT_FILE),
        (args.tls_key, tls_settings.CLIENT_KEY_FILE),
    ):
        if flag:
            env[name] = flag
    try:
        status = status_of(args.address, args.service, args.timeout, TlsSettings.from_env(env))
    except grpc.RpcError as exc:
        code = exc.code() if isinstance(exc, grpc.Call) else None
        print(f"{args.address}: {getattr(code, 'name', 'ERROR')}", file=sys.stderr)
        return 1
    print(f"{args.address} {args.service or '(server)'}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
