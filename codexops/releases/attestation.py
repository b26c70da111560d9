"""The attestation of a full gate: an in-toto Statement v1 about the release digest it judged.

Written next to the gate's report.json when a full gate (the spec's `gate` shape at scale 1.0) of a named
release finishes, whatever its verdict:
- statement.json: the statement (subject = the release digest; predicate = verdict, figures, the baselines
  against the stack it would be promoted to, spec digest, shape and scale, report.json's sha256);
- predicate.json: the predicate alone, what `actions/attest` signs in CI with the workflow's identity;
- attestation.json: the statement in a DSSE envelope signed with the operator's ed25519 key, when one
  exists (codexops/signing.py).
Smokes and scaled runs get none: they are never promotion evidence.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from codexops import signing

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://living-codex.dev/gate/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
FULL_SHAPE, FULL_SCALE = "gate", 1.0
REPORT, STATEMENT, PREDICATE = "report.json", "statement.json", "predicate.json"
ENVELOPE = "attestation.json"  # DSSE, signed locally
BUNDLE = "attestation.sigstore.json"  # sigstore bundle, signed in CI by actions/attest


def is_full(shape: object, scale: object) -> bool:
    """Only the spec's gate shape at its full scale is evidence."""
    return shape == FULL_SHAPE and isinstance(scale, int | float) and float(scale) == FULL_SCALE


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _load_figures(report: dict[str, Any]) -> dict[str, Any]:
    load: dict[str, Any] = next((s for s in report.get("steps", []) if s.get("name") == "load"), {})
    figures: dict[str, Any] = load.get("figures", {})
    keys = ("p95_ms", "p99_ms", "error_rate", "requests", "failures", "rps")
    return {k: figures[k] for k in keys if k in figures}


def _baselines(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The gate's baselines (codexops/gate_baseline.py) without their p95 series: figures, not charts."""

    def side(figures: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if figures is None else {k: v for k, v in figures.items() if k != "p95_series"}

    found = report.get("baselines") or []
    return [{**b, "candidate": side(b.get("candidate")), "serving": side(b.get("serving"))} for b in found]


def predicate(report_path: Path, at: datetime) -> dict[str, Any]:
    """The predicate of the gate whose report is `report_path`, bound to that file's exact bytes."""
    report = json.loads(report_path.read_text())
    return {
        "verdict": report["verdict"],
        "stack": report["stack"],
        "target": report["target"],
        "release": report["release"]["id"],
        "shape": report.get("shape"),
        "scale": report.get("scale"),
        "targetRps": report.get("target_rps"),
        "achievedRps": report.get("achieved_rps"),
        "figures": _load_figures(report),
        "baselines": _baselines(report),  # informational: the verdict does not depend on them
        "reasons": [f"{s['name']}: {r}" for s in report.get("steps", []) for r in s.get("reasons", [])][:20],
        "specDigest": report.get("spec_digest", ""),
        "report": {"name": REPORT, "sha256": sha256_file(report_path)},
        "at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def statement(
    release_id: str, digest: str, body: dict[str, Any], predicate_type: str = PREDICATE_TYPE
) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": release_id, "digest": {"sha256": digest.removeprefix("sha256:")}}],
        "predicateType": predicate_type,
        "predicate": body,
    }


def envelope_digest(path: Path) -> str:
    return "sha256:" + sha256_file(path)


def attest_gate(directory: Path, say: Callable[[str], None], *, now: datetime | None = None) -> Path | None:
    """Write the attestation of the gate in `directory` if it was a full gate of a named release.

    Returns the signed envelope's path, or None (not evidence, or no key: then the statement is still
    written, for CI to sign). Never changes the gate's verdict.
    """
    report_path = directory / REPORT
    report = json.loads(report_path.read_text())
    release = report.get("release") or {}
    if not is_full(report.get("shape"), report.get("scale")):
        if release.get("id"):
            ran = f"shape {report.get('shape')} at scale {report.get('scale')}"
            say(f"    not promotion evidence: {ran} (only the full gate is)")
        return None  # a smoke or a scaled run: nothing to attest
    if not release.get("id") or not release.get("digest", "").startswith("sha256:"):
        say("    no attestation: this gate judged no single release (a checkout, or a mixed stack)")
        return None
    body = predicate(report_path, now or datetime.now(UTC))
    return write_signed(directory, statement(release["id"], release["digest"], body), say)


def write_signed(directory: Path, document: dict[str, Any], say: Callable[[str], None]) -> Path | None:
    """statement.json and predicate.json in `directory`, and the DSSE envelope signed with the operator's
    key when there is one (its path; None: CI signs the predicate with the workflow's identity)."""
    body = document["predicate"]
    payload = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    (directory / STATEMENT).write_bytes(payload)
    (directory / PREDICATE).write_text(json.dumps(body, sort_keys=True))
    key_path = signing.signing_key_path()
    if not key_path.exists():
        where = "the workflow signs it (actions/attest)" if os.environ.get("GITHUB_ACTIONS") else "not signed"
        say(f"    attestation: {where}; no signing key at {key_path} (`codexops keys init` makes one)")
        return None
    envelope = signing.sign_envelope(payload, PAYLOAD_TYPE, signing.load_key(key_path))
    out = directory / ENVELOPE
    out.write_text(json.dumps(envelope, indent=2))
    say(f"    attestation signed ({envelope['signatures'][0]['keyid'][:19]}…): {out}")
    return out
