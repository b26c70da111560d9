"""Renewed certificates reach running servers. cert-manager rewrites a certificate's Secret in place and the
kubelet refreshes the mounted files (within about a minute), but nginx and Redis read them only at start:
each runs under a small shell supervisor that checks the mounted files every RELOAD_SECONDS and, when they
changed, reloads the server in place (no restart, no dropped connections). Self-contained: no reloader
controller, no sidecar signalling across containers. On Docker a canary step's upstream weights reach the
gateway container by `docker exec` and the same graceful reload (docker_nginx_reload)."""

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


def docker_nginx_reload(container: str, conf: str) -> str:
    """sh, run where `pulumi up` runs (the docker CLI on DOCKER_HOST): the nginx.conf on stdin is written
    beside `conf` in the running `container` (as root: the upload is root's), checked there with `nginx -t`
    as nginx's own user, moved in place and loaded with `nginx -s reload`. The first run keeps the uploaded
    file (.uploaded) for docker_nginx_restore. A file nginx refuses fails the command, and `pulumi up` with
    it; nginx keeps serving the file it has."""
    box, new, kept = shlex.quote(container), f"{conf}.next", f"{conf}.uploaded"
    return (
        "set -eu; "
        f"docker exec -i -u 0 {box} sh -c 'cat > {new} && chmod 0644 {new} && "
        f"{{ [ -f {kept} ] || cp -p {conf} {kept}; }}'; "
        f"docker exec {box} nginx -q -t -c {new}; "
        f"docker exec -u 0 {box} mv {new} {conf}; "
        f"docker exec {box} nginx -s reload -c {conf}; "
        f'echo "{container}: nginx reloaded with the new upstream weights"'
    )


def docker_nginx_restore(container: str, conf: str) -> str:
    """sh that puts the uploaded nginx.conf back and reloads; nothing to do for a container created since
    (it runs its upload) or one that is gone."""
    box, kept = shlex.quote(container), f"{conf}.uploaded"
    return (
        "set -eu; "
        f"docker inspect {box} >/dev/null 2>&1 || exit 0; "
        f"if docker exec -u 0 {box} sh -c '[ -f {kept} ] && mv {kept} {conf}'; then "
        f"docker exec {box} nginx -s reload -c {conf}; "
        f'echo "{container}: nginx reloaded with its uploaded upstream"; fi'
    )
