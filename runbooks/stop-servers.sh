#!/usr/bin/env bash
# Stop every local stack of this repository (each Pulumi.<stack>.yaml); apps drain first.
set -euo pipefail
# shellcheck source=runbooks/common.sh
source "$(dirname "$0")/common.sh"

USAGE="usage: $0   stop every local stack (staging, production); nothing is left listening"
for arg in "$@"; do
    case "$arg" in
        -h | --help) usage "$USAGE" && exit 0 ;;
        *) bad_flag "$arg" "$USAGE" ;;
    esac
done
# The stack files codexops reads its specs from (CODEX_REPO_DIR, else the checkout); one stack that
# cannot be stopped does not keep the others running.
status=0
for file in "${CODEX_REPO_DIR:-$ROOT}"/Pulumi.*.yaml; do
    stack="$(basename "$file" .yaml)"
    stack="${stack#Pulumi.}"
    codexops down --stack "$stack" || status=$?
done
exit "$status"
