"""Rules that span resources: budgets, default deny, Services that select pods, monitoring wired."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from policies.core import (
    CONFIGMAP,
    CONTAINER,
    DEPLOYMENT,
    HIGH,
    HPA,
    MEDIUM,
    NETWORK_POLICY,
    PDB,
    SERVICE,
    WORKLOADS,
    Resources,
    stack_policy,
)


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _pod_labels(props: Mapping[str, Any]) -> dict[str, str]:
    template = (props.get("spec") or {}).get("template") or {}
    return dict((template.get("metadata") or {}).get("labels") or {})


@stack_policy(
    "pdb-for-every-replicated-deployment",
    "Every Deployment with more than one replica has a PodDisruptionBudget.",
    HIGH,
    "Declare a policy/v1 PodDisruptionBudget selecting its pods.",
)
def pdb_coverage(resources: Resources) -> Iterable[tuple[str, str]]:
    selectors = [
        dict(p.get("spec", {}).get("selector", {}).get("matchLabels", {})) for t, _, p in resources if t == PDB
    ]
    # An autoscaled Deployment has no replicas field: its autoscaler's minimum counts.
    minimums = {
        p.get("spec", {}).get("scaleTargetRef", {}).get("name"): p.get("spec", {}).get("minReplicas", 1)
        for t, _, p in resources
        if t == HPA
    }
    for type_, name, props in resources:
        spec = props.get("spec", {})
        count = spec.get("replicas", minimums.get(props.get("metadata", {}).get("name"), 1))
        replicated = type_ == DEPLOYMENT and count > 1
        if replicated and not any(_matches(s, _pod_labels(props)) for s in selectors):
            yield name, "replicated Deployment without a PodDisruptionBudget"


@stack_policy(
    "default-deny-network-policy",
    "Each namespace with workloads has a default-deny NetworkPolicy.",
    HIGH,
    "Add a NetworkPolicy with podSelector: {} and both policyTypes.",
)
def default_deny(resources: Resources) -> Iterable[tuple[str, str]]:
    denied = {
        p.get("metadata", {}).get("namespace")
        for t, _, p in resources
        if t == NETWORK_POLICY
        and not p.get("spec", {}).get("podSelector")
        and set(p.get("spec", {}).get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    }
    namespaces = {p.get("metadata", {}).get("namespace") for t, _, p in resources if t in WORKLOADS}
    for namespace in sorted(n for n in namespaces - denied if n):
        yield namespace, "namespace has no default-deny NetworkPolicy"


@stack_policy(
    "services-select-pods",
    "Every Service selects the pods of some workload.",
    MEDIUM,
    "Fix the Service selector to match a Deployment's or StatefulSet's pod labels.",
)
def services_select_pods(resources: Resources) -> Iterable[tuple[str, str]]:
    pods = [_pod_labels(p) for t, _, p in resources if t in WORKLOADS]
    for type_, name, props in resources:
        if type_ == SERVICE:
            selector = dict(props.get("spec", {}).get("selector") or {})
            if not any(_matches(selector, labels) for labels in pods):
                yield name, f"selector {selector or '{}'} matches no workload's pods"


def _prometheus_configs(resources: Resources) -> list[tuple[str, str, str]]:
    """(resource name, prometheus.yml, alert rules) from ConfigMaps and uploaded files."""
    found = []
    for type_, name, props in resources:
        files: dict[str, str] = {}
        if type_ == CONFIGMAP:
            files = {k: str(v) for k, v in (props.get("data") or {}).items()}
        elif type_ == CONTAINER:
            files = {
                str(u.get("file", "")).rsplit("/", 1)[-1]: str(u.get("content", ""))
                for u in props.get("uploads", []) or []
                if str(u.get("file", "")).startswith("/etc/prometheus/")
            }
        if "prometheus.yml" in files:
            found.append((name, files["prometheus.yml"], files.get("alert-rules.yml", "")))
    return found


@stack_policy(
    "app-monitored",
    "Prometheus scrapes the app and loads alert rules.",
    HIGH,
    "Render prometheus.yml and alert-rules.yml with infra/render.py and infra/alerts.py.",
)
def app_monitored(resources: Resources) -> Iterable[tuple[str, str]]:
    configs = _prometheus_configs(resources)
    if not configs:
        yield "stack", "no Prometheus configuration is declared"
    for name, config_text, rules_text in configs:
        try:
            config = yaml.safe_load(config_text) or {}
        except yaml.YAMLError:
            yield name, "prometheus.yml is not valid YAML"
            continue
        jobs = [j for j in config.get("scrape_configs", []) if j.get("metrics_path") == "/metrics/prometheus"]
        if not jobs:
            yield name, "no scrape job reads the app's /metrics/prometheus"
        rules = (yaml.safe_load(rules_text) or {}).get("groups", []) if rules_text else []
        if not config.get("rule_files") or not any(g.get("rules") for g in rules):
            yield name, "no alert rules are loaded"


POLICIES = [pdb_coverage, default_deny, services_select_pods, app_monitored]
