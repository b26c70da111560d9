"""Pinned third-party images, in one place so a bump is one line."""

POSTGRES = "postgres:16.4-alpine"
REDIS = "redis:7.4.1-alpine"
NGINX = "nginxinc/nginx-unprivileged:1.28.0-alpine"  # 1.27.3+: `resolve` on upstream servers
PROMETHEUS = "prom/prometheus:v2.54.1"
GRAFANA = "grafana/grafana:11.2.2"
JAEGER = "jaegertracing/all-in-one:1.62.0"
ALERTMANAGER = "prom/alertmanager:v0.27.0"
