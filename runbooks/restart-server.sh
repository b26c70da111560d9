#!/usr/bin/env bash
# Restart a stack's local environment: stop it (apps drain), start it, wait until healthy.
set -euo pipefail
# shellcheck source=runbooks/common.sh
source "$(dirname "$0")/common.sh"

USAGE="usage: $0 [--stack=STACK]   restart the local environment (default stack staging)"
parse_stack_only "$USAGE" "$@"
codexops down --stack "$stack"
codexops up --stack "$stack"
