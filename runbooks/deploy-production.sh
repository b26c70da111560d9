#!/usr/bin/env bash
# Promote the release serving staging to production, if staging's latest gate of it allows it.
set -euo pipefail
# shellcheck source=runbooks/common.sh
source "$(dirname "$0")/common.sh"

USAGE="usage: $0 [--accept-warnings] [--max-age=24h] [--local]   promote staging's gated release to production"
flags=()
for arg in "$@"; do
    case "$arg" in
        --accept-warnings | --local) flags+=("$arg") ;;
        --max-age=*) flags+=(--max-age "${arg#--max-age=}") ;;
        -h | --help) usage "$USAGE" && exit 0 ;;
        *) bad_flag "$arg" "$USAGE" ;;
    esac
done
codexops promote --from staging --to production "${flags[@]}"
