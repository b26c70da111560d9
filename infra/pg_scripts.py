"""Shell run inside the PostgreSQL containers, kept here so tests run the same text against a real server.

PASSWORD_SYNC makes the role's password the one in the stack's Secret at every start: the image sets
POSTGRES_PASSWORD only when it creates the cluster, so a rotated password would otherwise lock the app out.
It connects over the local socket (trusted by the image, as by `initdb --auth-local=trust`), so it needs
no old password; psql reads the new one from the environment (\\getenv), never from its command line.
"""

from __future__ import annotations

ROLE, DATABASE = "codex", "livingcodex"

PASSWORD_SYNC = (
    "for attempt in $(seq 60); do "
    "printf '%s\\n' '\\getenv pw POSTGRES_PASSWORD' \"ALTER ROLE " + ROLE + " WITH PASSWORD :'pw';\" "
    "| psql -X -q -v ON_ERROR_STOP=1 -U " + ROLE + " -d " + DATABASE + " && exit 0; sleep 1; "
    "done; echo 'could not set the codex password' >&2; exit 1"
)

# The Docker image has no postStart hook: start the server, sync the password, then wait on the server
# (forwarding the stop signal so PostgreSQL shuts down cleanly).
DOCKER_ENTRYPOINT = (
    "docker-entrypoint.sh postgres & pid=$!; "
    "trap 'kill -TERM $pid' TERM INT; "
    f"( {PASSWORD_SYNC} ); "
    "wait $pid; wait $pid"
)


def backup_script(keep: int) -> str:
    """pg_dump (custom format) into $BACKUP_DIR, written under a temporary name then renamed, newest `keep` kept.

    Connection settings come from PGHOST, PGUSER, PGPASSWORD, PGDATABASE.
    """
    return (
        "set -eu; dir=${BACKUP_DIR:-/backups}; "
        'file="$dir/livingcodex-$(date -u +%Y%m%dT%H%M%SZ).dump"; '
        'pg_dump --format=custom --file="$file.partial" && mv "$file.partial" "$file"; '
        f'ls -1t "$dir"/livingcodex-*.dump | tail -n +{keep + 1} | xargs -r rm --; '
        'echo "backup written: $file"'
    )


# Restore the newest dump, from inside the PostgreSQL pod (the backups claim is mounted there read-only).
RESTORE_SCRIPT = (
    'set -eu; dump=$(ls -1t "${BACKUP_DIR:-/backups}"/livingcodex-*.dump | head -n 1); '
    f'pg_restore --clean --if-exists --no-owner --role={ROLE} -U {ROLE} -d {DATABASE} "$dump"; '
    'echo "restored: $dump"'
)
