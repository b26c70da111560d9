"""How a policy is written here: a function that yields violation messages, wrapped with its name,
one-line description, severity, enforcement level and a fix hint."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

Props = Mapping[str, Any]
MANDATORY, ADVISORY = EnforcementLevel.MANDATORY, EnforcementLevel.ADVISORY
HIGH, MEDIUM, LOW, CRITICAL = Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.CRITICAL

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFULSET = "kubernetes:apps/v1:StatefulSet"
WORKLOADS = (DEPLOYMENT, STATEFULSET)
CRONJOB = "kubernetes:batch/v1:CronJob"
POD_OWNERS = (*WORKLOADS, CRONJOB)  # whatever runs containers (a CronJob has no probes)
SERVICE = "kubernetes:core/v1:Service"
CONFIGMAP = "kubernetes:core/v1:ConfigMap"
SECRET = "kubernetes:core/v1:Secret"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
CERTIFICATE = "kubernetes:cert-manager.io/v1:Certificate"
ROLLOUT = "kubernetes:argoproj.io/v1alpha1:Rollout"
ANALYSIS_TEMPLATE = "kubernetes:argoproj.io/v1alpha1:AnalysisTemplate"
CONTAINER = "docker:index/container:Container"
NAME_LABEL = "app.kubernetes.io/name"
APP, GATEWAY = "living-codex-app", "living-codex-gateway"
CREDENTIAL_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CONNECTION_STRING|API_KEY", re.I)
URL_WITH_PASSWORD = re.compile(r"://[^/\s:@]*:[^@\s]+@")


def resource_policy(
    name: str,
    description: str,
    severity: Severity,
    remediation: str,
    types: tuple[str, ...],
    enforcement: EnforcementLevel = MANDATORY,
) -> Callable[[Callable[[str, Props], Iterable[str]]], ResourceValidationPolicy]:
    def wrap(check: Callable[[str, Props], Iterable[str]]) -> ResourceValidationPolicy:
        def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
            if args.resource_type in types:
                for message in check(args.resource_type, args.props):
                    report(message, None)

        return ResourceValidationPolicy(
            name=name,
            description=description,
            validate=validate,
            enforcement_level=enforcement,
            severity=severity,
            remediation_steps=remediation,
        )

    return wrap


Resources = list[tuple[str, str, Props]]  # (type, name, props)


def stack_policy(
    name: str,
    description: str,
    severity: Severity,
    remediation: str,
    enforcement: EnforcementLevel = MANDATORY,
) -> Callable[[Callable[[Resources], Iterable[tuple[str, str]]]], StackValidationPolicy]:
    """The check yields (resource name, message) pairs."""

    def wrap(check: Callable[[Resources], Iterable[tuple[str, str]]]) -> StackValidationPolicy:
        def validate(args: StackValidationArgs, report: ReportViolation) -> None:
            resources = [(r.resource_type, r.name, r.props) for r in args.resources]
            for resource_name, message in check(resources):
                report(f"{resource_name}: {message}", None)

        return StackValidationPolicy(
            name=name,
            description=description,
            validate=validate,
            enforcement_level=enforcement,
            severity=severity,
            remediation_steps=remediation,
        )

    return wrap


# -- reading Kubernetes and Docker properties ----------------------------------------------
def labels_of(props: Props) -> Mapping[str, str]:
    return props.get("metadata", {}).get("labels", {}) or {}


def component(props: Props) -> str:
    return str(labels_of(props).get(NAME_LABEL, ""))


def pod_spec(props: Props) -> Props:
    spec: Props = props.get("spec") or {}
    if "jobTemplate" in spec:  # a CronJob's pods are its Jobs'
        spec = spec["jobTemplate"].get("spec") or {}
    return (spec.get("template") or {}).get("spec") or {}


def containers(props: Props) -> list[Props]:
    pod = pod_spec(props)
    return list(pod.get("containers", []) or []) + list(pod.get("initContainers", []) or [])


def nginx_configs(resource_type: str, props: Props) -> list[str]:
    """nginx.conf texts a resource carries: a ConfigMap entry, or a file uploaded to a container."""
    if resource_type == CONFIGMAP:
        return [str(v) for k, v in (props.get("data") or {}).items() if k == "nginx.conf"]
    if resource_type == CONTAINER:
        return [
            str(u.get("content", ""))
            for u in props.get("uploads", []) or []
            if str(u.get("file", "")).endswith("nginx.conf")
        ]
    return []


def docker_env(props: Props) -> dict[str, str]:
    return dict(str(e).partition("=")[::2] for e in props.get("envs", []) or [])
