#!/usr/bin/env bash
# buf breaking (FILE rules) of protos/ against the previous commit on main, when it had protos.
set -euo pipefail
cd "$(dirname "$0")/.."
buf=.venv/bin/buf
if ! git rev-parse -q --verify HEAD~1 >/dev/null || ! git cat-file -e HEAD~1:protos/buf.yaml 2>/dev/null; then
  echo "buf breaking: no previous protos to compare with"
  exit 0
fi
"$buf" breaking protos --against ".git#ref=HEAD~1,subdir=protos"
echo "buf breaking: no breaking changes against HEAD~1"
