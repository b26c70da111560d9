"""Grafana applies GF_SECURITY_ADMIN_PASSWORD(__FILE) only when it creates its database, so a rotated
password would never reach an existing one. RESET_ADMIN_PASSWORD, run before the server starts (an init
container; a wrapper on Docker), sets the admin password from the secret on every start once a database
exists; on the first start the server creates the admin with it."""

from __future__ import annotations

DATA_DIR = "/var/lib/grafana"
PASSWORD_FILE = "/run/secrets/grafana/admin-password"

RESET_ADMIN_PASSWORD = (
    "set -eu; "
    f'if [ ! -f "{DATA_DIR}/grafana.db" ]; then '
    'echo "first start: the server creates the admin user with the secret password"; exit 0; fi; '
    'if [ -n "${GF_SECURITY_ADMIN_PASSWORD__FILE:-}" ]; then cat "$GF_SECURITY_ADMIN_PASSWORD__FILE"; '
    'else printf "%s" "$GF_SECURITY_ADMIN_PASSWORD"; fi '
    "| grafana cli --homepath /usr/share/grafana admin reset-admin-password --password-from-stdin > /dev/null "
    '|| { echo "could not set the Grafana admin password from the secret" >&2; exit 1; }; '
    'echo "admin password set from the secret"'
)
