"""The images the program runs, in one place so a bump is one line.

The app: main.yml pushes `ghcr.io/<owner>/living-codex:<commit>` and promotion writes its digest into the
stack (`living-codex:image`); APP_REPOSITORY is that repository for this repository's owner.

Third-party images are pinned here, `name:tag@sha256:<digest>`, and run exactly as written: production runs
the image staging tested, and an upstream re-push of a tag restarts nothing. Renovate (renovate.json) bumps
tag and digest together in a pull request, whose preview and tests show the change. A constant still
without a digest (UNPINNED, until Renovate's first pin or `scripts/pin-images.sh` where a registry is
reachable) is resolved in its registry at preview (`Target.pinned`); the policy `images-by-digest` refuses
a pod or container without a digest either way. The digests were copied from public repositories that
pin the same tags (several agreeing); Renovate's first run re-checks each against its registry.
"""

APP_REPOSITORY = "ghcr.io/living-codex/living-codex"

POSTGRES = "postgres:16.4-alpine@sha256:5660c2cbfea50c7a9127d17dc4e48543eedd3d7a41a595a2dfa572471e37e64c"
# 7.4.6: the fix for CVE-2025-49844 (Lua use-after-free, remote code execution)
REDIS = "redis:7.4.6-alpine@sha256:3b73847e72874be07e6657b129a94761662b79bc0f679273757d4218573b2a98"
# 1.27.3+: `resolve` on upstream servers
NGINX = (
    "nginxinc/nginx-unprivileged:1.28.0-alpine@sha256:c97ff0bf7cbae369953c6da1232ec14ad9f971d66360c5698db0856a4cd657a0"
)
PROMETHEUS = "prom/prometheus:v2.54.1@sha256:f6639335d34a77d9d9db382b92eeb7fc00934be8eae81dbc03b31cfe90411a94"
GRAFANA = "grafana/grafana:11.2.2@sha256:d5133220d770aba5cb655147b619fa8770b90f41d8489a821d33b1cd34d16f89"
JAEGER = "jaegertracing/all-in-one:1.62.0@sha256:836e9b69c88afbedf7683ea7162e179de63b1f981662e83f5ebb68badadc710f"
ALERTMANAGER = "prom/alertmanager:v0.27.0@sha256:e13b6ed5cb929eeaee733479dce55e10eb3bc2e9c4586c705a4e8da41e5eacf5"
AWS_CLI = "amazon/aws-cli:2.17.9"  # copies verified backups to S3-compatible storage
# backup and pod state; the index digest from one public repository's pin table (Renovate re-checks it)
KUBE_STATE_METRICS = (
    "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.13.0"
    "@sha256:639a1e2da549210adddc0391ff91e270e83f7873014aec53258462812f741e6f"
)

THIRD_PARTY = (POSTGRES, REDIS, NGINX, PROMETHEUS, GRAFANA, JAEGER, ALERTMANAGER, AWS_CLI, KUBE_STATE_METRICS)

# No digest recorded yet (none was reachable when the others were pinned): resolved at preview until pinned.
UNPINNED = tuple(image for image in THIRD_PARTY if "@sha256:" not in image)
