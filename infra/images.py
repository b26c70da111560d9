"""Pinned third-party images, in one place so a bump is one line."""

POSTGRES = "postgres:16.4-alpine"
REDIS = "redis:7.4.1-alpine"
NGINX = "nginxinc/nginx-unprivileged:1.28.0-alpine"  # 1.27.3+: `resolve` on upstream servers
PROMETHEUS = "prom/prometheus:v2.54.1"
GRAFANA = "grafana/grafana:11.2.2"
JAEGER = "jaegertracing/all-in-one:1.62.0"
ALERTMANAGER = "prom/alertmanager:v0.27.0"
AWS_CLI = "amazon/aws-cli:2.17.9"  # copies verified backups to S3-compatible storage
KUBE_STATE_METRICS = "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.13.0"  # backup and pod state
