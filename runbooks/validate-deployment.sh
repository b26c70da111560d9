#!/usr/bin/env bash
# Validate a deployment: the deployment checklist, a smoke load and the alert state (the gate).
set -euo pipefail
# shellcheck source=runbooks/common.sh
source "$(dirname "$0")/common.sh"

USAGE="usage: $0 [local|staging|production|URL] [--shape=smoke|gate]   PASS/WARN exit 0, FAIL exit 1"
target=local
shape=smoke
for arg in "$@"; do
    case "$arg" in
        --shape=*) shape="${arg#--shape=}" ;;
        -h | --help) usage "$USAGE" && exit 0 ;;
        local | staging | production | http://* | https://*) target="$arg" ;;
        *) bad_flag "$arg" "$USAGE" ;;
    esac
done
codexops gate --target "$target" --shape "$shape"
