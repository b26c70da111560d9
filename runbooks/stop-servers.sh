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
for file in "$ROOT"/Pulumi.*.yaml; do
    stack="$(basename "$file" .yaml)"
    stack="${stack#Pulumi.}"
    codexops down --stack "$stack"
done
