# Sourced by the runbook's scripts: where the repository is and how to run codexops.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT

codexops() {
    if [[ -x "$ROOT/.venv/bin/codexops" ]]; then
        "$ROOT/.venv/bin/codexops" "$@"
    elif command -v codexops >/dev/null 2>&1; then
        command codexops "$@"
    else
        echo "codexops is not installed: run 'make setup' in $ROOT" >&2
        return 2
    fi
}

# usage TEXT: print the script's usage and exit 0 when asked with -h/--help.
usage() {
    printf '%s\n' "$1"
}

# bad_flag FLAG USAGE: refuse an unknown flag (exit 2).
bad_flag() {
    printf 'unknown argument: %s\n%s\n' "$1" "$2" >&2
    exit 2
}

# parse_stack_only USAGE ARGS...: for scripts whose only flag is --stack=STACK; sets $stack
# (default staging), prints USAGE and exits 0 on -h/--help, refuses anything else.
# shellcheck disable=SC2034  # stack is read by the script that sourced this file
parse_stack_only() {
    local text="$1" arg
    shift
    stack=staging
    for arg in "$@"; do
        case "$arg" in
            --stack=*) stack="${arg#--stack=}" ;;
            -h | --help) usage "$text" && exit 0 ;;
            *) bad_flag "$arg" "$text" ;;
        esac
    done
}
