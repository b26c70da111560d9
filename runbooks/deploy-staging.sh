#!/usr/bin/env bash
# Build a release (or take --release), deploy it to staging (a commit of Pulumi.staging.yaml naming it,
# then rolling, verified, rolled back and reverted on FAIL), then gate it there: that gate is the
# evidence deploy-production.sh promotes on.
set -euo pipefail
# shellcheck source=runbooks/common.sh
source "$(dirname "$0")/common.sh"

USAGE="usage: $0 [--release=ID] [--local]   deploy to staging and gate it (default: build a new release)"
release=""
backend=()
for arg in "$@"; do
    case "$arg" in
        --release=*) release="${arg#--release=}" ;;
        --local) backend=(--local) ;;
        -h | --help) usage "$USAGE" && exit 0 ;;
        *) bad_flag "$arg" "$USAGE" ;;
    esac
done
if [[ -z "$release" ]]; then
    codexops release build
    release=latest
fi
codexops deploy staging --release "$release" "${backend[@]}"
codexops gate --target staging
