"""Alerts reach a person: a Kubernetes (production) stack's Alertmanager routes to a receiver with an
integration. Staging on Docker keeps alerts in Alertmanager's API, which the gate reads."""

from __future__ import annotations

from collections.abc import Iterable

import yaml

from policies.core import CONFIGMAP, HIGH, Props, resource_policy

INTEGRATIONS = (
    "email_configs",
    "slack_configs",
    "webhook_configs",
    "pagerduty_configs",
    "opsgenie_configs",
    "msteams_configs",
)


def _routed_receivers(route: Props) -> set[str]:
    names = {str(route["receiver"])} if route.get("receiver") else set()
    for child in route.get("routes") or []:
        names |= _routed_receivers(child)
    return names


@resource_policy(
    "alert-receiver-in-production",
    "Production's Alertmanager routes alerts to a receiver with an integration (e-mail, Slack, webhook, ...).",
    HIGH,
    "Add a receiver to living-codex:alerting (receivers: [{name, email | slackChannel | webhookUrl}]).",
    (CONFIGMAP,),
)
def alert_receiver(resource_type: str, props: Props) -> Iterable[str]:
    text = (props.get("data") or {}).get("alertmanager.yml")
    if text is None:
        return
    try:
        config = yaml.safe_load(str(text)) or {}
    except yaml.YAMLError:
        yield "alertmanager.yml is not valid YAML"
        return
    routed = _routed_receivers(config.get("route") or {})
    reaching = [
        r.get("name")
        for r in config.get("receivers") or []
        if r.get("name") in routed and any(r.get(kind) for kind in INTEGRATIONS)
    ]
    if not reaching:
        yield "no routed receiver has an integration: production alerts reach nobody"


POLICIES = [alert_receiver]
