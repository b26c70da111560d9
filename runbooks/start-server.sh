#!/usr/bin/env bash
# Start a stack's local environment (default staging: nginx on :5002, app replicas, Redis, PostgreSQL, Prometheus).
set -euo pipefail
# shellcheck source=runbooks/common.sh
source "$(dirname "$0")/common.sh"

USAGE="usage: $0 [--stack=STACK]   start the local environment (default stack staging, gateway :5002)"
parse_stack_only "$USAGE" "$@"
codexops up --stack "$stack"
