"""What a gate of a slow release may say: FAIL on its latency, or INCONCLUSIVE when the machine starved
the load generator (codexops/load_client.py: the latency, the rate and the latency alerts are then not
judged, and INCONCLUSIVE is never evidence). Never PASS or WARN. `make test` runs other shards beside a
test's gate on 2 cores, so a starved client is a real outcome there, not a flaw of the release's test."""

from __future__ import annotations

from codexops.gate import EXIT_INCONCLUSIVE, GateReport

STARVED = "the load generator was"  # how every starvation reason begins (codexops/load_client.py)


def slow_release_refused(report: GateReport) -> bool:
    reasons = " | ".join(report.reasons())
    if "p95 latency" not in reasons:
        return False
    if report.verdict == "FAIL":
        return True
    load = next((s for s in report.steps if s.name == "load"), None)
    starved = bool(load and load.figures.get("client", {}).get("starved"))
    return report.verdict == "INCONCLUSIVE" and starved


def slow_release_refused_by_the_command(returncode: int, output: str) -> bool:
    """The same, from `codexops gate`'s exit status and output."""
    if "p95 latency" not in output:
        return False
    if returncode == 1 and "verdict: FAIL" in output:
        return True
    return returncode == EXIT_INCONCLUSIVE and "verdict: INCONCLUSIVE" in output and STARVED in output
