#!/usr/bin/env bash
# Regenerates the Python code of protos/ into sensei/ (or into $1): messages, gRPC stubs and
# mypy-protobuf type stubs. Reproducible: same protos + pinned tools => same bytes.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-.}")"
py="$(realpath -s "${PYTHON:-.venv/bin/python}")"
bin="$(dirname "$py")"
rm -rf "$out/sensei"
mkdir -p "$out"
mapfile -t files < <(cd protos && find sensei -name '*.proto' | LC_ALL=C sort)
(cd protos && "$py" -m grpc_tools.protoc -I . \
  --python_out="$out" --grpc_python_out="$out" \
  --plugin=protoc-gen-mypy="$bin/protoc-gen-mypy" --mypy_out="$out" \
  --plugin=protoc-gen-mypy_grpc="$bin/protoc-gen-mypy_grpc" --mypy_grpc_out="$out" \
  "${files[@]}") 2> >(grep -v "^Writing mypy to" >&2)
# Vendored protos of others (protos/third_party/): messages only, under sensei/third_party/
# so they never shadow the packages that own those names (grpc.*). Their descriptors keep
# the canonical file names (grpc/reflection/v1/reflection.proto), as reflection clients expect.
mkdir -p "$out/sensei/third_party"
mapfile -t vendored < <(cd protos/third_party && find . -name '*.proto' | sed 's|^\./||' | LC_ALL=C sort)
(cd protos/third_party && "$py" -m grpc_tools.protoc -I . \
  --python_out="$out/sensei/third_party" \
  --plugin=protoc-gen-mypy="$bin/protoc-gen-mypy" --mypy_out="$out/sensei/third_party" \
  "${vendored[@]}") 2> >(grep -v "^Writing mypy to" >&2)
# Namespace folders become regular packages so tools resolve them the same everywhere.
find "$out/sensei" -type d -exec sh -c 'printf "\"\"\"Generated from protos/ by scripts/gen_protos.sh; do not edit.\"\"\"\n" > "$0/__init__.py"' {} \;
