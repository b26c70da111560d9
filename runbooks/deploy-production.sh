#!/usr/bin/env bash
# Promote the release serving staging to production, if staging's latest gate of it allows it: the
# promotion commits Pulumi.production.yaml naming the release, syncs production and verifies it (on FAIL
# the revert is committed and production rolled back); then production is checked against its file.
set -euo pipefail
# shellcheck source=runbooks/common.sh
source "$(dirname "$0")/common.sh"

USAGE="usage: $0 [--accept-warnings] [--max-age=24h] [--local]   promote staging's gated release to production"
flags=()
backend=()
for arg in "$@"; do
    case "$arg" in
        --accept-warnings) flags+=("$arg") ;;
        --local) flags+=("$arg") && backend=(--local) ;;
        --max-age=*) flags+=(--max-age "${arg#--max-age=}") ;;
        -h | --help) usage "$USAGE" && exit 0 ;;
        *) bad_flag "$arg" "$USAGE" ;;
    esac
done
codexops promote --from staging --to production "${flags[@]}"
codexops diff production "${backend[@]}"
