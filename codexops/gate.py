"""`codexops gate`: the deployment checklist, then the load test, then the alert state, then a verdict.

PASS, WARN (a warning threshold crossed), FAIL, or INCONCLUSIVE (the load generator was starved, so the
load says nothing about the stack: codexops/load_client.py), each with its reasons in plain words; exit 0
for PASS and WARN, 1 for FAIL, 2 when the gate could not run, 3 for INCONCLUSIVE. Every step has a
timeout, so a hung dependency ends in a verdict, never in a hung gate.
"""

from __future__ import annotations

import csv
import fcntl
import itertools
import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from codexops import http_client, load_client
from codexops.checklist import CHECKLIST_DIR
from codexops.gate_baseline import Baseline, Window, baselines, describe
from codexops.targets import Target, TargetError, resolve_target
from infra.alerts import is_latency_alert
from infra.spec import ROOT, EnvironmentSpec
from loadtests.shapes import duration, per_user_rate, ramp_seconds
from loadtests.thresholds import Measurement, judge, steady_rps_from_history

BIN = Path(sys.executable).parent
HTTP_TIMEOUT = 5.0
EXIT_INCONCLUSIVE = 3  # the load generator was starved: not a verdict on the stack


class GateCannotRun(RuntimeError):
    """The gate could not run (exit 2): the message says why and what to do."""


@dataclass
class Step:
    name: str
    status: str  # pass, warn, fail, inconclusive
    seconds: float
    reasons: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class GateReport:
    target: str
    stack: str
    url: str
    started: str
    verdict: str = "FAIL"
    steps: list[Step] = field(default_factory=list)
    directory: str = ""
    release: dict[str, str] | None = None  # {"id", "digest"} of the release judged; None: no release
    spec_digest: str = ""  # sha256 of the spec whose thresholds judged it
    shape: str = ""  # the load shape run; only "gate" at scale 1.0 is promotion evidence
    scale: float = 1.0
    target_rps: float = 0.0  # the spec's load.targetRps
    achieved_rps: float | None = None  # held after the ramp (gate shape only)
    # The gate shape's candidate against each stack it would be promoted to; informational, never the verdict.
    baselines: list[Baseline] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return {"PASS": 0, "WARN": 0, "INCONCLUSIVE": EXIT_INCONCLUSIVE}.get(self.verdict, 1)

    def reasons(self) -> list[str]:
        return [f"{s.name}: {r}" for s in self.steps for r in s.reasons]


# -- step 1: the checklist ----------------------------------------------------------------------------
CHECKLIST_PLUGINS = ("-p", "testinfra.plugin", "-p", "pytest_timeout")


def run_checklist(target_file: Path, out: Path, timeout: float) -> Step:
    """The packaged checklist (codexops/checklist), run by pytest on the resolved target."""
    began = time.monotonic()
    command = [
        str(BIN / "pytest"),
        str(CHECKLIST_DIR),
        "-c",
        os.devnull,  # its own options only, not those of a project it happens to sit in
        *CHECKLIST_PLUGINS,
        f"--target-file={target_file}",
        f"--junitxml={out / 'junit.xml'}",
        "-p",
        "no:cacheprovider",
        "-q",
        "-o",
        "timeout=30",
        "--rootdir",
        str(CHECKLIST_DIR),
        "--confcutdir",
        str(CHECKLIST_DIR),
    ]
    # The plugins it uses, named: autoloading every installed one (Locust's, schemathesis's, hypothesis's)
    # cost each checklist about 2.5 s of CPU (3.4-3.9 s against 1.2-1.3 s, 2026-12-07).
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=CHECKLIST_DIR, env=env)
    except subprocess.TimeoutExpired:
        return Step(
            "checklist",
            "fail",
            time.monotonic() - began,
            [f"the checklist did not finish in {timeout:.0f} s"],
        )
    (out / "checklist.log").write_text(result.stdout + result.stderr)
    cases = _junit_cases(out / "junit.xml")
    failed = [c for c in cases if c["outcome"] == "failed"]
    figures = {
        "tests": len(cases),
        "failed": len(failed),
        "skipped": sum(1 for c in cases if c["outcome"] == "skipped"),
    }
    reasons = [f"{c['name']}: {c['message']}" for c in failed]
    if not cases:
        reasons.append(f"the checklist ran no test (pytest exit {result.returncode}); see checklist.log")
    status = "fail" if reasons else "pass"
    return Step("checklist", status, time.monotonic() - began, reasons, figures)


def _junit_cases(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            element = case.find(tag)
            if element is not None:
                outcome = "skipped" if tag == "skipped" else "failed"
                message = (element.get("message") or "").splitlines()[0][:300] if element.get("message") else ""
        cases.append({"name": case.get("name", "?"), "outcome": outcome, "message": message})
    return cases


# -- step 2: the load test ------------------------------------------------------------------------------
def _load_user(target: Target) -> tuple[str, str]:
    """The gate's own editor account, which the stack provisions (GATE_USERNAME/GATE_PASSWORD): the gate
    never needs the admin password."""
    username = os.environ.get("CODEX_LOAD_USERNAME") or target.load_username
    password = os.environ.get("CODEX_LOAD_PASSWORD") or target.load_password
    if not (username and password):
        raise GateCannotRun(
            "no credentials for the load test: set CODEX_LOAD_USERNAME and CODEX_LOAD_PASSWORD to the stack's "
            "gate account (pulumi stack output gateUsername; pulumi stack output gatePassword --show-secrets), "
            "or run `codexops up` again so the local environment provisions it"
        )
    return username, password


@contextmanager
def one_full_load_at_a_time(shape: str, say: Callable[[str], None]) -> Iterator[None]:
    """With CODEX_GATE_LOCK naming a file, full gates on this machine take their load one at a time: two
    at once each starve the other's load generator (INCONCLUSIVE), so the second waits (make test sets it)."""
    path = os.environ.get("CODEX_GATE_LOCK")
    if shape != "gate" or not path:
        yield
        return
    with open(path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"    waiting for another full gate's load to end ({path})")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def run_load(target: Target, target_file: Path, shape: str, scale: float, out: Path) -> Step:
    began = time.monotonic()
    try:
        username, password = _load_user(target)
    except (httpx.HTTPError, GateCannotRun) as exc:
        return Step("load", "fail", time.monotonic() - began, [f"could not prepare the load test: {exc}"])
    env = {
        **os.environ,
        "CODEX_STACK": target.spec.stack,
        "CODEX_TARGET_FILE": str(target_file),  # Locust judges with the resolved target's thresholds
        "CODEX_LOAD_SHAPE": shape,
        "CODEX_LOAD_SCALE": str(scale),
        "CODEX_LOAD_USERNAME": username,
        "CODEX_LOAD_PASSWORD": password,
        "CODEX_LOAD_CLIENT_FILE": str(out / "client.json"),  # the generator's send lag
    }
    command = [
        str(BIN / "locust"),
        "-f",
        str(ROOT / "loadtests" / "locustfile.py"),
        "--headless",
        "--host",
        target.url,
        "--csv",
        str(out / "locust"),
        "--csv-full-history",
        "--html",
        str(out / "locust.html"),
        "--only-summary",
        "--stop-timeout",
        "5",
    ]
    limit = duration(shape, target.spec.load, scale) + 60
    try:
        _, cpu = load_client.run_measured(command, env=env, cwd=ROOT, timeout=limit, log=out / "locust.log")
    except subprocess.TimeoutExpired:
        return Step("load", "fail", time.monotonic() - began, [f"the load test did not end within {limit} s"])
    stats = _aggregated(out / "locust_stats.csv")
    if stats is None:
        return Step("load", "fail", time.monotonic() - began, ["Locust wrote no statistics; see locust.log"])
    if shape == "gate":  # the spec's target rate, held after the ramp: achieved against target
        achieved = steady_rps_from_history(out / "locust_stats_history.csv", ramp_seconds(target.spec.load))
        stats.update(target_rps=target.spec.load.targetRps, achieved_rps=round(achieved or 0.0, 1))
    spec = target.spec
    measured = Measurement.of_stats(stats)
    verdict = judge(measured, spec.thresholds, spec.load)
    status = STATUS[verdict.level]
    steady_from = ramp_seconds(spec.load) if shape == "gate" else 0
    client = load_client.assess(cpu, out / "client.json", steady_from, 1000 / per_user_rate(spec.load))
    stats["client"] = client.figures()
    # The stack's own errors, starved client or not: latency and rate are not judged here.
    errors = judge(Measurement(measured.requests, 0.0, measured.error_rate), spec.thresholds, spec.load)
    status, reasons = load_client.not_judged(status, verdict.reasons, STATUS[errors.level], client)
    return Step("load", status, time.monotonic() - began, reasons, stats)


STATUS = {"pass": "pass", "warning": "warn", "critical": "fail"}


def _aggregated(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    with path.open() as handle:
        for row in csv.DictReader(handle):
            if row["Name"] == "Aggregated":
                requests, failures = int(row["Request Count"]), int(row["Failure Count"])
                return {
                    "requests": requests,
                    "failures": failures,
                    "error_rate": failures / requests if requests else 0.0,
                    "p50_ms": float(row["50%"] or 0),
                    "p95_ms": float(row["95%"] or 0),
                    "p99_ms": float(row["99%"] or 0),
                    "rps": round(float(row["Requests/s"] or 0), 2),
                }
    return None


# -- step 3: alerts ---------------------------------------------------------------------------------------
def alertmanager_url(target: Target) -> str | None:
    """The target's Alertmanager: CODEX_ALERTMANAGER_URL, else the one the target resolved to (local)."""
    return (os.environ.get("CODEX_ALERTMANAGER_URL") or target.alertmanager_url or "").rstrip("/") or None


def _alertmanager_firing(url: str) -> list[dict[str, Any]]:
    """Alerts Alertmanager holds (what reaches the receivers), silenced and inhibited ones included."""
    alerts = http_client.get(f"{url}/api/v2/alerts", params={"active": "true"}, timeout=HTTP_TIMEOUT).json()
    return [{"labels": a["labels"], "annotations": a.get("annotations", {})} for a in alerts]


def _instant_query(prometheus: str, at: datetime) -> Callable[[str], list[dict[str, Any]]]:
    def query(expression: str) -> list[dict[str, Any]]:
        answer = http_client.get(
            f"{prometheus}/api/v1/query", params={"query": expression, "time": at.timestamp()}, timeout=HTTP_TIMEOUT
        ).json()
        if answer.get("status") != "success":
            raise ValueError(answer.get("error", "no answer"))
        return list(answer["data"]["result"])

    return query


def check_alerts(target: Target, wait: float, since: datetime | None = None, starved: str = "") -> Step:
    """Firing alerts: critical FAILs, warning WARNs. With `since` (a deploy's verification), an alert
    firing only on samples older than `since` does not count (codexops/alert_window.py). With `starved`
    (the load was INCONCLUSIVE: the machine starved its generator), the latency alerts, which measured the
    same machine over the same window, are not judged: INCONCLUSIVE when nothing else fires."""
    began = time.monotonic()
    manager = alertmanager_url(target)
    if not target.prometheus_url and not manager:
        return Step("alerts", "pass", 0.0, [], {"checked": False, "note": "no Prometheus for this target"})
    time.sleep(wait)  # one scrape and one rule evaluation after the load
    source = "Prometheus"
    try:
        alerts: list[dict[str, Any]] = []
        if target.prometheus_url:
            answer = http_client.get(f"{target.prometheus_url}/api/v1/alerts", timeout=HTTP_TIMEOUT)
            alerts = answer.json()["data"]["alerts"]
        firing = [a for a in alerts if a.get("state") == "firing"]
        if manager:
            source = "Alertmanager"
            firing = _alertmanager_firing(manager)
    except (httpx.HTTPError, KeyError, TypeError, ValueError) as exc:
        return Step("alerts", "fail", time.monotonic() - began, [f"{source} did not answer: {exc}"])
    figures: dict[str, Any] = {"checked": True, "source": source}
    if since is not None and firing:
        firing, figures = _judge_since(target, firing, since, figures)
    aside = [a for a in firing if starved and is_latency_alert(str(a["labels"].get("alertname")))]
    firing = [a for a in firing if a not in aside]
    reasons = [
        f"{a['labels'].get('alertname')} ({a['labels'].get('severity')}) firing: "
        f"{a.get('annotations', {}).get('summary', '')}"
        for a in firing
    ]
    severities = {a["labels"].get("severity") for a in firing}
    status = "fail" if "critical" in severities else "warn" if firing else "inconclusive" if aside else "pass"
    if aside:
        names = sorted({str(a["labels"].get("alertname")) for a in aside})
        figures["not_judged"] = names
        reasons.append(f"not judged: {', '.join(names)} firing, on the machine that starved the load ({starved})")
    pending = [a["labels"].get("alertname") for a in alerts if a.get("state") == "pending"]
    figures.update(firing=len(firing), pending=pending)
    return Step("alerts", status, time.monotonic() - began, reasons, figures)


def _judge_since(
    target: Target, firing: list[dict[str, Any]], since: datetime, figures: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The firing alerts that hold on samples newer than `since`; the others are named in the figures."""
    from codexops.alert_window import judge_since
    from infra.alerts import alert_rules

    figures = {**figures, "since": since.isoformat(timespec="seconds")}
    if not target.prometheus_url:
        figures["notes"] = ["no Prometheus to re-evaluate the rules: every firing alert counted"]
        return firing, figures
    now = datetime.now(UTC)
    judgement = judge_since(firing, alert_rules(target.spec), since, now, _instant_query(target.prometheus_url, now))
    figures.update(predating_deploy=judgement.predating, notes=judgement.notes)
    return judgement.counted, figures


# -- the verdict and the report ------------------------------------------------------------------------
def verdict(steps: list[Step]) -> str:
    """FAIL over INCONCLUSIVE (a stack that fails a check fails, whatever the load said) over WARN."""
    statuses = {s.status for s in steps}
    for status, name in (("fail", "FAIL"), ("inconclusive", "INCONCLUSIVE"), ("warn", "WARN")):
        if status in statuses:
            return name
    return "PASS"


def new_report_dir(reports: Path, name: str) -> Path:
    """REPORTS/NAME, or NAME-2, -3...: two gates of one target started in the same second (two operators,
    two CI jobs) never write into one folder, whose report and attestation would then mix."""
    reports.mkdir(parents=True, exist_ok=True)
    for attempt in itertools.count(1):
        out = reports / (name if attempt == 1 else f"{name}-{attempt}")
        try:
            out.mkdir()
        except FileExistsError:
            continue
        return out
    raise AssertionError("unreachable")


def run_gate(
    target: Target | str,
    spec: EnvironmentSpec | None = None,
    *,
    shape: str = "gate",
    scale: float = 1.0,
    prometheus_url: str | None = None,
    reports: Path = ROOT / "reports",
    say: Callable[[str], None] = print,
    alert_wait: float = 6.0,
    since: datetime | None = None,
    baseline_prometheus_url: str | None = None,
) -> GateReport:
    """Judge `target` (resolved, or a name for resolve_target; `spec` then names whose thresholds apply).
    `since`: when the release under verification finished deploying; alerts firing only on older
    samples then do not count (fix-forward). A plain gate passes none and judges every firing alert.
    `baseline_prometheus_url`: the Prometheus of the stack the candidate would be promoted to (a local
    target's is its local stack's), for the gate shape's baseline."""
    if isinstance(target, str):
        try:
            target = resolve_target(target, stack=spec.stack if spec else None, prometheus_url=prometheus_url)
        except TargetError as exc:
            raise GateCannotRun(str(exc)) from None
    if target.spec.environment == "Production" and not target.prometheus_url and not alertmanager_url(target):
        # A gate that cannot see alerts would pass a production release unchecked: it cannot run.
        raise GateCannotRun(
            f"{target.spec.stack} is a Production stack and its gate must check alerts: give --prometheus-url or "
            "CODEX_ALERTMANAGER_URL (in-cluster services: kubectl port-forward, as main.yml's sync does)"
        )
    try:
        live = http_client.get(f"{target.url}/health/live", timeout=HTTP_TIMEOUT)
    except httpx.HTTPError as exc:
        hint = f"run `codexops up --stack {target.spec.stack}` first" if target.kind == "local" else "is it deployed?"
        raise GateCannotRun(f"{target.url} does not answer ({exc}); {hint}") from None
    if live.status_code != 200:
        raise GateCannotRun(f"{target.url}/health/live answered {live.status_code}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = target.name
    slug = name if not name.startswith("http") else name.split("//", 1)[1].replace(":", "-")
    out = new_report_dir(reports, f"{slug.replace('/', '_')}-{stamp}")
    target_file = target.save(out / "target.json")
    report = GateReport(
        name,
        target.spec.stack,
        target.url,
        stamp,
        directory=str(out),
        release=target.release,
        spec_digest=target.spec_digest,
        shape=shape,
        scale=scale,
        target_rps=target.spec.load.targetRps,
    )
    release = (target.release or {}).get("id", "none: this checkout")
    say(f"==> checklist against {target.url} (stack {target.spec.stack}, release {release})")
    try:
        report.steps.append(run_checklist(target_file, out, timeout=180))
        say(f"    {report.steps[-1].status} ({report.steps[-1].seconds:.1f} s)")
        load = target.spec.load
        say(f"==> load test: shape {shape}, {duration(shape, load, scale)} s at {load.targetRps:g} RPS")
        with one_full_load_at_a_time(shape, say):
            began = time.time()
            report.steps.append(run_load(target, target_file, shape, scale, out))
            window = Window(began, time.time())
        say(f"    {report.steps[-1].status} ({report.steps[-1].seconds:.1f} s) {report.steps[-1].figures}")
    finally:
        target_file.unlink()  # it may carry the admin password; report.json names the target instead
    say("==> alert state in Alertmanager and Prometheus")
    load_step = next((s for s in report.steps if s.name == "load"), None)
    starved = str(load_step.figures.get("client", {}).get("starved", "")) if load_step else ""
    starved = starved if load_step is not None and load_step.status == "inconclusive" else ""
    report.steps.append(check_alerts(target, alert_wait, since, starved))
    predating = report.steps[-1].figures.get("predating_deploy")
    say(
        f"    {report.steps[-1].status}"
        + (f" (firing only on samples older than the deploy: {predating})" if predating else "")
    )
    if shape == "gate":
        report.baselines = baselines(
            target.spec.stack,
            target.prometheus_url,
            window,
            local=target.kind == "local",
            serving_url=baseline_prometheus_url,
        )
        for line in describe(target.spec.stack, report.baselines):
            say(line)
    report.verdict = verdict(report.steps)
    report.achieved_rps = next((s.figures.get("achieved_rps") for s in report.steps if s.name == "load"), None)
    write_report(report, target.spec, out)
    _attest(out, say)
    return report


def _attest(out: Path, say: Callable[[str], None]) -> None:
    """Sign the attestation of a full gate of a release; a key problem is said, the verdict stands."""
    from codexops.releases.attestation import attest_gate
    from codexops.signing import SigningError

    try:
        attest_gate(out, say)
    except (SigningError, OSError) as exc:
        say(f"    attestation not signed: {exc}")


def write_report(report: GateReport, spec: EnvironmentSpec, out: Path) -> None:
    from codexops.gate_report import latency_chart, markdown

    # A smoke draws no chart: its 10-20 s of load give a line of a few points (the table has its p50, p95
    # and p99), and matplotlib cost each deploy's verification about 0.5 s of CPU (2026-12-07).
    chart = None
    if report.shape != "smoke":
        chart = latency_chart(out / "locust_stats_history.csv", spec, out / "latency.png", report.baselines)
    (out / "report.json").write_text(json.dumps(asdict(report), indent=2, default=str))
    (out / "report.md").write_text(markdown(report, spec, chart))
