"""`python -m shared.healthcheck HOST:PORT [SERVICE]`: exit 0 when the server is SERVING.

A container health check for Docker Compose (the image has no grpc_health_probe);
Kubernetes uses its native gRPC probes instead. SERVICE defaults to "" (the whole server).
Exit status 1 for any other status, and when the server cannot be reached in time.
"""

from __future__ import annotations

import argparse
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def status_of(address: str, service: str = "", timeout: float = 3.0) -> str:
    """The health status name `address` reports for `service` (raises grpc.RpcError)."""
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(response.status))


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m shared.healthcheck")
    parser.add_argument("address", help="HOST:PORT of the gRPC server")
    parser.add_argument("service", nargs="?", default="", help='service name ("" = server)')
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds (default 3)")
    args = parser.parse_args(argv)
    try:
        status = status_of(args.address, args.service, args.timeout)
    except grpc.RpcError as exc:
        code = exc.code() if isinstance(exc, grpc.Call) else None
        print(f"{args.address}: {getattr(code, 'name', 'ERROR')}", file=sys.stderr)
        return 1
    print(f"{args.address} {args.service or '(server)'}: {status}")
    return 0 if status == "SERVING" else 1


if __name__ == "__main__":
    sys.exit(main())
