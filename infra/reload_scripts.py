"""Renewed certificates reach running servers. cert-manager rewrites a certificate's Secret in place and the
kubelet refreshes the mounted files (within about a minute), but nginx and Redis read them only at start:
each runs under a small shell supervisor that checks the mounted files every RELOAD_SECONDS and, when they
changed, reloads the server in place (no restart, no dropped connections). Self-contained: no reloader
controller, no sidecar signalling across containers."""

from __future__ import annotations

import shlex


def reload_on_change(start: str, reload: str, watched: str) -> str:
    """sh that runs `start` in the background, forwards the stop signals to it, and runs `reload` (with $pid
    set to the server's) when the content of `watched` (paths, space-separated) changes. A failed reload is
    reported and retried at the next check; the server keeps serving what it has."""
    return (
        "set -u; "
        f"sum() {{ cat {watched} 2>/dev/null | md5sum; }}; "
        f"{start} & pid=$!; sleeper=; "
        "trap 'kill -TERM $pid $sleeper 2>/dev/null' TERM INT; trap 'kill -QUIT $pid $sleeper 2>/dev/null' QUIT; "
        "last=$(sum); "
        "while kill -0 $pid 2>/dev/null; do "
        'sleep "${RELOAD_SECONDS:-30}" & sleeper=$!; wait $sleeper; '
        "now=$(sum); "
        'if [ "$now" != "$last" ]; then '
        f'if {reload}; then echo "reloaded: {watched} changed"; last=$now; '
        f'else echo "reload FAILED after {watched} changed; serving the previous files" >&2; fi; '
        "fi; "
        "done; "
        "wait $pid"
    )


def nginx_with_reload(conf: str, watched: str) -> str:
    """nginx in the foreground, reloaded (SIGHUP: new workers, old ones finish their requests) when its
    certificate or configuration changes and the new files pass `nginx -t`."""
    quoted = shlex.quote(conf)
    return reload_on_change(
        f"nginx -c {quoted} -g 'daemon off;'",
        f"nginx -q -t -c {quoted} && kill -HUP $pid",
        watched,
    )


def redis_with_reload(server: str, tls_dir: str) -> str:
    """redis-server; Redis 7 reloads its TLS context when tls-cert-file is set again (CONFIG SET), so a
    renewed certificate is served without a restart. The password comes from REDISCLI_AUTH."""
    files = f"{tls_dir}/tls.crt {tls_dir}/tls.key {tls_dir}/ca.crt"
    reload = (
        f"redis-cli --tls --cacert {tls_dir}/ca.crt -p ${{REDIS_PORT:-6379}} CONFIG SET "
        f"tls-cert-file {tls_dir}/tls.crt tls-key-file {tls_dir}/tls.key tls-ca-cert-file {tls_dir}/ca.crt "
        "| grep -q OK"
    )
    return reload_on_change(server, reload, files)
