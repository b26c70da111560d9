#!/usr/bin/env bash
# Print each third-party image of infra/images.py with the digest its tag points to now, as
# `name:tag@sha256:...`, ready to paste into infra/images.py. Needs a registry (docker buildx, network):
# run it in a workflow or on a workstation; the program resolves tags at preview when this is not done.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
"$python" -c 'from infra.images import THIRD_PARTY; print("\n".join(THIRD_PARTY))' | while read -r image; do
  case "$image" in
    *@sha256:*) echo "$image"; continue ;;
  esac
  digest=$(docker buildx imagetools inspect "$image" --format '{{json .Manifest}}' | jq -r .digest)
  [[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "error: no digest for $image: $digest" >&2; exit 2; }
  echo "$image@$digest"
done
