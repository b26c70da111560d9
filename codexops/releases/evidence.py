"""Promotion evidence: the signed attestation of the latest FULL gate of the exact release digest.

The stack's history only says where to look: the attestation, not the history line or the report file,
is the record. A release is promotable from a stack when its latest full gate there (the spec's `gate`
shape at scale 1.0, at the spec's load) has an attestation that
- is signed by a key listed in keys/trusted-keys.txt (a DSSE envelope, ed25519), or, in CI, is a
  sigstore bundle that `gh attestation verify` accepts for this repository's main workflow;
- names the release's digest as its subject and the spec's current target rate as its load;
- carries the sha256 of the report.json beside it (an edited report is refused);
- says PASS (WARN with accept_warnings) and is younger than max_age.
Smokes (`deploy`'s verification, `--shape smoke`) and scaled runs never count, and never hide a full
gate's FAIL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from codexops import signing
from codexops.releases import attestation, history
from codexops.releases.history import Event
from codexops.releases.model import Release
from infra.spec import SpecError, load_spec


class EvidenceRefused(RuntimeError):
    """The evidence does not allow the promotion (exit 1): what failed and what to run next."""


@dataclass(frozen=True)
class Evidence:
    verdict: str  # PASS or WARN, as signed
    report: Path  # the gate's report.json
    at: datetime  # when the gate finished (signed)
    digest: str  # "sha256:<hex>" of the attestation file (DSSE envelope or sigstore bundle)
    signer: str  # the trusted key's owner, or the workflow identity in CI
    release: str  # release id
    statement: dict[str, Any]  # the verified in-toto statement
    attestation: Path  # the signed file (attestation.json or attestation.sigstore.json): what a commit carries


def check_evidence(
    source_stack: str,
    release: Release | None,
    *,
    now: datetime,
    max_age: timedelta,
    accept_warnings: bool,
) -> Evidence:
    """The evidence that allows promoting `release` from `source_stack`, or EvidenceRefused saying why."""
    if release is None:
        raise EvidenceRefused(f"no release is deployed on {source_stack}: deploy one there and gate it first")
    gate = _latest_full_gate(source_stack, release)
    directory = Path(gate.report or "").parent
    where = f"the full gate of {release.id} on {source_stack} ({gate.at}, report {gate.report})"
    document, signer, signed = verified_statement(directory, release, where)
    body = checked_predicate(document, release, source_stack, where)
    check_report(directory / attestation.REPORT, body, where)
    verdict, at = str(body["verdict"]), _signed_time(body, where)
    edited = f" (its history line says {gate.verdict}: edited; the signed verdict counts)" * (gate.verdict != verdict)
    if verdict == "WARN" and not accept_warnings:
        raise EvidenceRefused(f"{where} is WARN{edited}: pass --accept-warnings to promote it anyway")
    if verdict not in ("PASS", "WARN"):
        reasons = "; ".join(body.get("reasons") or []) or "see the report"
        raise EvidenceRefused(f"{where} is {verdict}{edited}: {reasons}")
    if now - at > max_age:
        raise EvidenceRefused(
            f"{where} is {_human(now - at)} old, older than --max-age {_human(max_age)}: "
            f"run `codexops gate --target {source_stack}` again"
        )
    report, digest = directory / attestation.REPORT, attestation.envelope_digest(signed)
    return Evidence(verdict, report, at, digest, signer, release.id, document, signed)


# -- which gate ------------------------------------------------------------------------------------------
def _report_of(event: Event) -> dict[str, Any]:
    try:
        data = json.loads(Path(event.report or "").read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _is_full_gate(event: Event) -> bool:
    """Full when it says so or carries an attestation (a smoke never has one; the signature decides)."""
    directory = Path(event.report or "").parent
    if event.report and any((directory / name).exists() for name in (attestation.ENVELOPE, attestation.BUNDLE)):
        return True
    report = _report_of(event)
    return attestation.is_full(report.get("shape"), report.get("scale"))


def _latest_full_gate(stack: str, release: Release) -> Event:
    gates = [e for e in reversed(history.read(stack)) if e.kind == "gate" and e.release == release.id]
    run = f"run `codexops gate --target {stack}` (the full gate)"
    if not gates:
        raise EvidenceRefused(f"no gate has judged {release.id} on {stack}: {run}")
    full = next((e for e in gates if _is_full_gate(e)), None)
    if full is None:
        report = _report_of(gates[0])
        shape = f"shape {report.get('shape') or 'unrecorded'}, scale {report.get('scale', '?')}"
        raise EvidenceRefused(
            f"the latest gate of {release.id} on {stack} was a smoke ({shape}, {gates[0].at}): "
            f"only a full gate is evidence; {run}"
        )
    return full


# -- is it signed, and by whom ---------------------------------------------------------------------------
def verified_statement(directory: Path, release: Release, where: str) -> tuple[dict[str, Any], str, Path]:
    envelope, bundle = directory / attestation.ENVELOPE, directory / attestation.BUNDLE
    if envelope.exists():
        return (*_verify_envelope(envelope, where), envelope)
    if bundle.exists():
        return (*_verify_bundle(bundle, release, where), bundle)
    raise EvidenceRefused(
        f"{where} has no signed attestation: it ran without a signing key, or its files were forged. "
        "Run `codexops keys init`, add the printed line to keys/trusted-keys.txt, and run the full gate again"
    )


def _verify_envelope(path: Path, where: str) -> tuple[dict[str, Any], str]:
    try:
        envelope = json.loads(path.read_text())
        trusted = signing.read_trusted()
        payload, key = signing.verify_envelope(envelope, trusted)
    except signing.UntrustedKey as exc:
        raise EvidenceRefused(
            f"{where}: the attestation is {exc}. If that signer is trusted, add the public key line it printed "
            f"(`codexops keys show` on its machine) to {signing.trusted_keys_path().name} in a reviewed commit"
        ) from None
    except signing.BadSignature as exc:
        raise EvidenceRefused(f"{where}: {path.name} does not verify ({exc}); run the full gate again") from None
    except (signing.SigningError, ValueError) as exc:
        raise EvidenceRefused(f"{where}: {path.name} cannot be read: {exc}") from None
    if envelope.get("payloadType") != attestation.PAYLOAD_TYPE:
        raise EvidenceRefused(f"{where}: {path.name} is not an in-toto attestation")
    return _statement(payload, where), key.owner


def _verify_bundle(path: Path, release: Release, where: str) -> tuple[dict[str, Any], str]:
    """A sigstore bundle from `actions/attest`: verified by `gh attestation verify` inside a workflow."""
    repository = os.environ.get("GITHUB_REPOSITORY")
    if os.environ.get("GITHUB_ACTIONS") != "true" or not repository or not shutil.which("gh"):
        raise EvidenceRefused(
            f"{where} was signed in CI (sigstore bundle): it is verified only in a workflow with `gh attestation "
            "verify` (run the promote workflow), or gate the release locally with your signing key"
        )
    if not release.image:
        raise EvidenceRefused(f"{where}: a sigstore attestation needs an image release ({release.id} has none)")
    command = [
        *("gh", "attestation", "verify", f"oci://{release.image}", "--bundle", str(path)),
        *("--repo", repository, "--predicate-type", attestation.PREDICATE_TYPE),
        *("--signer-workflow", f"{repository}/.github/workflows/main.yml", "--format", "json"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        raise EvidenceRefused(f"{where}: gh attestation verify refused it: {result.stderr.strip()[-500:]}")
    try:
        verified = json.loads(result.stdout)[0]["verificationResult"]
        certificate = verified.get("signature", {}).get("certificate", {})
        return verified["statement"], str(certificate.get("subjectAlternativeName") or repository)
    except (ValueError, LookupError, AttributeError) as exc:
        raise EvidenceRefused(f"{where}: unexpected output of gh attestation verify ({exc})") from None


def _statement(payload: bytes, where: str) -> dict[str, Any]:
    try:
        document = json.loads(payload)
    except ValueError:
        raise EvidenceRefused(f"{where}: the signed payload is not JSON") from None
    if not isinstance(document, dict) or document.get("_type") != attestation.STATEMENT_TYPE:
        raise EvidenceRefused(f"{where}: the signed payload is not an in-toto Statement v1")
    return document


# -- what it says ----------------------------------------------------------------------------------------
def checked_predicate(
    document: dict[str, Any], release: Release, stack: str, where: str, *, check_load: bool = True
) -> dict[str, Any]:
    if document.get("predicateType") != attestation.PREDICATE_TYPE:
        raise EvidenceRefused(f"{where}: the attestation is a {document.get('predicateType')}, not a gate")
    digests = [str(s.get("digest", {}).get("sha256", "")) for s in document.get("subject", [])]
    wanted = release.digest.removeprefix("sha256:")
    if wanted not in digests:
        raise EvidenceRefused(
            f"{where}: the attestation judged digest sha256:{(digests or ['none'])[0]}, not {release.id}'s "
            f"{release.digest}: it is another release's gate"
        )
    body = document.get("predicate")
    if not isinstance(body, dict):
        raise EvidenceRefused(f"{where}: the attestation has no predicate")
    if not attestation.is_full(body.get("shape"), body.get("scale")):
        raise EvidenceRefused(
            f"{where}: the signed gate ran shape {body.get('shape')} at scale {body.get('scale')}; "
            f"only the full gate counts: run `codexops gate --target {stack}`"
        )
    if body.get("stack") != stack:
        raise EvidenceRefused(f"{where}: the attestation is of a gate on {body.get('stack')}, not on {stack}")
    if check_load:
        _check_load(body, stack, where)
    return body


def _check_load(body: dict[str, Any], stack: str, where: str) -> None:
    """The gate ran at the target rate the stack's spec asks now."""
    try:
        wanted = load_spec(stack).load.targetRps
    except SpecError as exc:
        raise EvidenceRefused(f"{where}: the spec of {stack} cannot be read to check the load: {exc}") from None
    if body.get("targetRps") != wanted:
        raise EvidenceRefused(
            f"{where}: gated at {body.get('targetRps')} RPS, but the spec of {stack} asks {wanted:g} RPS: "
            f"run `codexops gate --target {stack}` again"
        )


def check_report(path: Path, body: dict[str, Any], where: str) -> None:
    signed = str(body.get("report", {}).get("sha256", ""))
    if not path.exists():
        raise EvidenceRefused(f"{where}: {path} is missing; the attestation signs a report that is gone")
    actual = attestation.sha256_file(path)
    if actual != signed:
        raise EvidenceRefused(
            f"{where}: report.json was edited after it was signed (sha256 {actual[:12]}…, signed {signed[:12]}…); "
            "the signed attestation is the record: run the full gate again"
        )


def _signed_time(body: dict[str, Any], where: str) -> datetime:
    try:
        return datetime.strptime(str(body.get("at")), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise EvidenceRefused(f"{where}: the attestation's time {body.get('at')!r} is not readable") from None


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s"
