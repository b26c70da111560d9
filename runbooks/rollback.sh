#!/usr/bin/env bash
# Roll a stack back to its previous release, or to --version; restores the database backup when the
# schema moved forward since (asks first unless --yes).
set -euo pipefail
# shellcheck source=runbooks/common.sh
source "$(dirname "$0")/common.sh"

USAGE="usage: $0 [--version=RELEASE] [--stack=production] [--yes] [--local]   roll back (default: previous release)"
stack=production
flags=()
for arg in "$@"; do
    case "$arg" in
        --version=*) flags+=(--to "${arg#--version=}") ;;
        --stack=*) stack="${arg#--stack=}" ;;
        --yes | --local) flags+=("$arg") ;;
        -h | --help) usage "$USAGE" && exit 0 ;;
        *) bad_flag "$arg" "$USAGE" ;;
    esac
done
codexops rollback "$stack" "${flags[@]}"
