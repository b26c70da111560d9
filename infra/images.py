"""The images the program runs, in one place so a bump is one line.

The app: main.yml pushes `ghcr.io/<owner>/living-codex:<commit>` and promotion writes its digest into the
stack (`living-codex:image`); APP_REPOSITORY is that repository for this repository's owner.

Third-party images are named by tag here, and every one runs by digest: the program resolves each tag in
its registry at preview (`Target.pinned`), and the policy `images-by-digest` refuses a pod or container
without one. To pin a digest in this file instead (`name:tag@sha256:...`, used as given), run
`scripts/pin-images.sh` where a registry is reachable; it prints each tag's current digest.
"""

APP_REPOSITORY = "ghcr.io/living-codex/living-codex"

POSTGRES = "postgres:16.4-alpine"
REDIS = "redis:7.4.6-alpine"  # 7.4.6: the fix for CVE-2025-49844 (Lua use-after-free, remote code execution)
NGINX = "nginxinc/nginx-unprivileged:1.28.0-alpine"  # 1.27.3+: `resolve` on upstream servers
PROMETHEUS = "prom/prometheus:v2.54.1"
GRAFANA = "grafana/grafana:11.2.2"
JAEGER = "jaegertracing/all-in-one:1.62.0"
ALERTMANAGER = "prom/alertmanager:v0.27.0"
AWS_CLI = "amazon/aws-cli:2.17.9"  # copies verified backups to S3-compatible storage
KUBE_STATE_METRICS = "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.13.0"  # backup and pod state

THIRD_PARTY = (POSTGRES, REDIS, NGINX, PROMETHEUS, GRAFANA, JAEGER, ALERTMANAGER, AWS_CLI, KUBE_STATE_METRICS)
