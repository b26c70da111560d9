#!/usr/bin/env bash
# Roll a stack back to its previous desired state (the git log of its Pulumi.<stack>.yaml), or to
# --version: a commit of the stack file plus a sync. Restores the database backup when the schema moved
# forward since (asks first unless --yes); ROLLED BACK only when the checklist passes afterwards.
# By hand, the same: git revert <the promotion commit> && codexops sync <stack>. The target needs its
# evidence committed (evidence/<stack>/<release>/) where the stack's spec requires it, or had run there by
# break-glass before; otherwise --break-glass=REASON (recorded in the stack file, reported by diff).
set -euo pipefail
# shellcheck source=runbooks/common.sh
source "$(dirname "$0")/common.sh"

USAGE="usage: $0 [--version=RELEASE] [--stack=production] [--yes] [--local] [--break-glass=REASON]   roll back (default: previous release)"
stack=production
flags=()
for arg in "$@"; do
    case "$arg" in
        --version=*) flags+=(--to "${arg#--version=}") ;;
        --stack=*) stack="${arg#--stack=}" ;;
        --yes | --local) flags+=("$arg") ;;
        --break-glass=*) flags+=(--break-glass "${arg#--break-glass=}") ;;
        -h | --help) usage "$USAGE" && exit 0 ;;
        *) bad_flag "$arg" "$USAGE" ;;
    esac
done
codexops rollback "$stack" "${flags[@]}"
