#!/usr/bin/env bash
# The image's installed dependencies, measured without Docker: `uv sync` of the image's set (the
# service only) and of the set the image used to install (the service and the `ops` tools) into
# temporary virtualenvs, bytecode compiled as in app/Dockerfile. Prints size and distribution count.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git ls-files -z pyproject.toml uv.lock README.md app codexops infra | xargs -0 cp --parents -t "$work"

measure() {  # label, then uv sync's group flags
  local label=$1
  shift
  rm -rf "$work/venv"
  (cd "$work" && UV_PROJECT_ENVIRONMENT="$work/venv" UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy \
    "$PYTHON" -m uv sync --frozen --no-editable --quiet --python "$PYTHON" "$@")
  local bytes count
  bytes=$(du -sb "$work/venv" | cut -f1)
  count=$(find "$work/venv/lib" -maxdepth 3 -name '*.dist-info' | wc -l)
  awk -v l="$label" -v b="$bytes" -v n="$count" 'BEGIN { printf "%-34s %6.1f MB  %3d distributions\n", l, b / 1e6, n }'
}

measure "service only (the image now)" --no-default-groups
measure "service + ops (the image before)" --no-dev
