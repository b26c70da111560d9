"""Renewed certificates reach running servers. cert-manager rewrites a certificate's Secret in place and the
kubelet refreshes the mounted files (within about a minute), but nginx and Redis read them only at start:
each runs under a small shell supervisor that checks the mounted files every RELOAD_SECONDS and, when they
changed, reloads the server in place (no restart, no dropped connections). Self-contained: no reloader
controller, no sidecar signalling across containers. On Docker a canary step's upstream weights reach the
gateway container (and its scrape target to Prometheus) by `docker exec` and the same in-place reload
(docker_file_reload)."""

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


def docker_file_reload(container: str, path: str, check: str, reload: str) -> str:
    """sh, run where `pulumi up` runs (the docker CLI on DOCKER_HOST): the file on stdin is written beside
    `path` in the running `container` (as root: uploads are root's), checked there with `check` (which reads
    `path`.next) as the image's own user, moved in place and loaded with `reload`. The first run keeps the
    uploaded file (.uploaded) for docker_file_restore. A file the check refuses fails the command, and
    `pulumi up` with it; the server keeps what it has."""
    box, new, kept = shlex.quote(container), f"{path}.next", f"{path}.uploaded"
    return (
        "set -eu; "
        f"docker exec -i -u 0 {box} sh -c 'cat > {new} && chmod 0644 {new} && "
        f"{{ [ -f {kept} ] || cp -p {path} {kept}; }}'; "
        f"docker exec {box} {check}; "
        f"docker exec -u 0 {box} mv {new} {path}; "
        f"docker exec {box} {reload}; "
        f'echo "{container}: reloaded with the new {path}"'
    )


def docker_file_restore(container: str, path: str, reload: str) -> str:
    """sh that puts the uploaded file back and reloads; nothing to do for a container created since (it
    runs its upload) or one that is gone."""
    box, kept = shlex.quote(container), f"{path}.uploaded"
    return (
        "set -eu; "
        f"docker inspect {box} >/dev/null 2>&1 || exit 0; "
        f"if docker exec -u 0 {box} sh -c '[ -f {kept} ] && mv {kept} {path}'; then "
        f"docker exec {box} {reload}; "
        f'echo "{container}: reloaded with its uploaded {path}"; fi'
    )


def docker_nginx_reload(container: str, conf: str) -> str:
    """A new nginx.conf for a running gateway: `nginx -t`, then `nginx -s reload` (SIGHUP: new workers take
    new connections, the old ones finish theirs)."""
    return docker_file_reload(container, conf, f"nginx -q -t -c {conf}.next", nginx_reload(conf))


def docker_nginx_restore(container: str, conf: str) -> str:
    return docker_file_restore(container, conf, nginx_reload(conf))


def nginx_reload(conf: str) -> str:
    return f"nginx -s reload -c {conf}"


PROMETHEUS_RELOAD = "kill -HUP 1"  # Prometheus is the container's first process; SIGHUP re-reads its config


def docker_prometheus_reload(container: str, config: str) -> str:
    """A new prometheus.yml for a running Prometheus: `promtool check config`, then SIGHUP (its data, alert
    state and scrapes go on; a restart would lose the alerts' pending time)."""
    return docker_file_reload(container, config, f"promtool check config {config}.next", PROMETHEUS_RELOAD)


def docker_prometheus_restore(container: str, config: str) -> str:
    return docker_file_restore(container, config, PROMETHEUS_RELOAD)
