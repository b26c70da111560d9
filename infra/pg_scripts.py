"""Shell run inside the PostgreSQL containers, kept here so tests run the same text against a real server.

PASSWORD_SYNC makes the role's password the one in the stack's Secret at every start: the image sets
POSTGRES_PASSWORD only when it creates the cluster, so a rotated password would otherwise lock the app out.
It connects over the local socket (trusted by the image, as by `initdb --auth-local=trust`), so it needs
no old password; psql reads the new one from the environment (\\getenv), never from its command line.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence

ROLE, DATABASE = "codex", "livingcodex"

PASSWORD_SYNC = (
    "for attempt in $(seq 60); do "
    "printf '%s\\n' '\\getenv pw POSTGRES_PASSWORD' \"ALTER ROLE " + ROLE + " WITH PASSWORD :'pw';\" "
    "| psql -X -q -v ON_ERROR_STOP=1 -U " + ROLE + " -d " + DATABASE + " && exit 0; sleep 1; "
    "done; echo 'could not set the codex password' >&2; exit 1"
)


def docker_entrypoint(options: Sequence[str] = ()) -> str:
    """The Docker image has no postStart hook: start the server (with `options`, the entry's args), sync
    the password, then wait on the server (forwarding the stop signal so PostgreSQL shuts down cleanly)."""
    server = " ".join(["docker-entrypoint.sh", "postgres", *map(shlex.quote, options)])
    return f"{server} & pid=$!; trap 'kill -TERM $pid' TERM INT; ( {PASSWORD_SYNC} ); wait $pid; wait $pid"


def backup_script(keep: int) -> str:
    """pg_dump (custom format) into $BACKUP_DIR under a temporary name, read back with `pg_restore --list`,
    renamed, newest `keep` kept. Any failure exits non-zero with the reason, so the Job fails and alerts.

    `pg_dump ... && mv ...` under `set -e` hid a failed dump (set -e ignores a failing left side of &&):
    each step is checked explicitly. Connection settings come from PGHOST, PGUSER, PGPASSWORD, PGDATABASE.
    """
    return (
        "set -eu; (set -o pipefail) 2>/dev/null && set -o pipefail; "
        'fail() { echo "backup FAILED: $*" >&2; rm -f "$file.partial"; exit 1; }; '
        "dir=${BACKUP_DIR:-/backups}; "
        'file="$dir/livingcodex-$(date -u +%Y%m%dT%H%M%SZ).dump"; '
        'pg_dump --format=custom --file="$file.partial" || fail "pg_dump exited $?"; '
        'test -s "$file.partial" || fail "pg_dump wrote nothing"; '
        'pg_restore --list "$file.partial" > /dev/null || fail "the dump does not read back (pg_restore --list)"; '
        'mv "$file.partial" "$file"; '
        f'ls -1t "$dir"/livingcodex-*.dump | tail -n +{keep + 1} | xargs -r rm --; '
        'echo "backup written and verified: $file ($(wc -c < "$file") bytes)"'
    )


# Copy the newest verified dump to $BACKUP_DESTINATION (s3://bucket/prefix) with the AWS CLI, then check the
# object is there with the same size. Credentials and AWS_ENDPOINT_URL come from the environment.
OFFSITE_SCRIPT = (
    "set -eu; "
    'fail() { echo "offsite copy FAILED: $*" >&2; exit 1; }; '
    'file=$(ls -1t "${BACKUP_DIR:-/backups}"/livingcodex-*.dump 2>/dev/null | head -n 1); '
    'test -n "$file" || fail "no dump to copy"; '
    'object="${BACKUP_DESTINATION%/}/$(basename "$file")"; '
    'aws s3 cp --only-show-errors "$file" "$object" || fail "aws s3 cp exited $?"; '
    'size=$(wc -c < "$file" | tr -d " "); '
    'listed=$(aws s3 ls "$object") || fail "$object is not listed after the copy"; '
    'echo "$listed" | grep -q " $size " || fail "$object is not $size bytes: $listed"; '
    'echo "copied offsite: $object ($size bytes)"'
)

# Restore the newest dump into a scratch server started in $SCRATCH (an emptyDir), owned by whoever runs
# this, and check the restore produced tables: proves the dump restores, without touching production.
RESTORE_CHECK_SCRIPT = (
    "set -eu; "
    'fail() { echo "restore check FAILED: $*" >&2; exit 1; }; '
    'dump=$(ls -1t "${BACKUP_DIR:-/backups}"/livingcodex-*.dump 2>/dev/null | head -n 1); '
    'test -n "$dump" || fail "no dump found in ${BACKUP_DIR:-/backups}"; '
    'scratch=${SCRATCH:-/scratch}; data="$scratch/data"; rm -rf "$data"; '
    'initdb -D "$data" -U postgres --auth=trust > "$scratch/initdb.log" 2>&1 '
    '|| fail "initdb: $(cat "$scratch/initdb.log")"; '
    'pg_ctl -D "$data" -o "-k $scratch -c listen_addresses=" -l "$scratch/server.log" -w start > /dev/null '
    '|| fail "scratch server did not start: $(cat "$scratch/server.log")"; '
    'stop() { pg_ctl -D "$data" -m fast -w stop > /dev/null 2>&1 || true; }; trap stop EXIT; '
    'createdb -h "$scratch" -U postgres restorecheck || fail "createdb"; '
    'pg_restore --exit-on-error --no-owner --no-acl -h "$scratch" -U postgres -d restorecheck "$dump" '
    '|| fail "pg_restore of $dump"; '
    'tables=$(psql -X -tA -h "$scratch" -U postgres -d restorecheck -c '
    "\"select count(*) from information_schema.tables where table_schema = 'public'\"); "
    'test "$tables" -gt 0 || fail "$dump restored no tables"; '
    'echo "restore check passed: $dump restored $tables tables"'
)


# Restore the newest dump, from inside the PostgreSQL pod (the backups claim is mounted there read-only).
RESTORE_SCRIPT = (
    'set -eu; dump=$(ls -1t "${BACKUP_DIR:-/backups}"/livingcodex-*.dump | head -n 1); '
    f'pg_restore --clean --if-exists --no-owner --role={ROLE} -U {ROLE} -d {DATABASE} "$dump"; '
    'echo "restored: $dump"'
)
