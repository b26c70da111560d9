"""Fix-forward: judge a deploy's firing alerts on the new release's own samples.

A verification after a deploy asks Prometheus for firing alerts, but an alert computed over a 5-minute
rate window keeps firing on the previous release's samples for minutes after a fixing release took over.
For each firing alert the rule's expression (infra/alerts.py, the rules Prometheus was given) is
evaluated again now with every range window shortened to the time since the deploy, so only samples
scraped after the deploy count; instant selectors read the latest sample, which is the new release's
once Prometheus scraped it (the local backend waits for that; the smoke load takes longer than a scrape).
The alert counts when its condition holds on those samples. It also counts, as before, when it cannot be
judged: a rule this checkout does not know, no samples since the deploy (the expression's left side is
empty over the window: fewer than two scrapes for a rate), or a query that fails.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from infra.alerts import AlertRule

RANGE = re.compile(r"\[(\d+)([smhdwy])\]")
COMPARISON = re.compile(r"\s(?:>|<|==)\s[\d.]+$")  # every rule of infra/alerts.py ends "<measure> <op> <number>"
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}

Query = Callable[[str], list[dict[str, Any]]]  # an instant query at "now": its result vector


@dataclass
class Judgement:
    counted: list[dict[str, Any]] = field(default_factory=list)  # firing alerts that judge the release
    predating: list[str] = field(default_factory=list)  # names firing only on samples older than the deploy
    notes: list[str] = field(default_factory=list)  # why an alert was counted without being re-judged


def windowed(expression: str, seconds: int) -> str:
    """`expression` with every range selector no longer than `seconds` ([5m] -> [42s] for 42)."""

    def shorten(match: re.Match[str]) -> str:
        length = int(match.group(1)) * UNIT_SECONDS[match.group(2)]
        return f"[{min(length, seconds)}s]"

    return RANGE.sub(shorten, expression)


def measure(expression: str) -> str:
    """The rule's left side: what has data whether or not the condition holds."""
    return COMPARISON.split(expression)[0]


def _holds(rule: AlertRule, seconds: int, query: Query) -> bool | None:
    """Whether the rule's condition holds over the last `seconds`; None when they hold no sample."""
    if query(windowed(rule.expr, seconds)):
        return True
    return False if query(windowed(measure(rule.expr), seconds)) else None


def judge_since(
    firing: list[dict[str, Any]], rules: list[AlertRule], since: datetime, now: datetime, query: Query
) -> Judgement:
    """Split `firing` into alerts that hold on samples newer than `since` and those that do not."""
    by_name = {rule.name: rule for rule in rules}
    age = int((now - since).total_seconds())
    judgement = Judgement()
    for alert in firing:
        name = str(alert["labels"].get("alertname"))
        rule = by_name.get(name)
        if rule is None:
            judgement.counted.append(alert)
            judgement.notes.append(f"{name}: not a rule of infra/alerts.py, counted as firing")
            continue
        try:
            holds = _holds(rule, max(age, 1), query)
        except Exception as exc:  # whatever fails, the alert is not discounted
            judgement.counted.append(alert)
            judgement.notes.append(f"{name}: could not re-evaluate ({exc}), counted as firing")
            continue
        if holds is None:
            judgement.counted.append(alert)
            judgement.notes.append(f"{name}: no samples in the {age} s since the deploy to judge it by, counted")
        elif holds:
            judgement.counted.append(alert)
        elif name not in judgement.predating:
            judgement.predating.append(name)
    return judgement
