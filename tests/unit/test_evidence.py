"""Promotion evidence: only the signed attestation of a full gate of the exact digest counts.

Each refusal is a real attestation (ed25519, DSSE) written by the gate's own code, then tampered with the
way an operator who can write `.local/` or `reports/` could.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sys
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from codexops import signing
from codexops.cli import cli
from codexops.gate import GateReport, Step
from codexops.releases import attestation, history
from codexops.releases.evidence import Evidence, EvidenceRefused, check_evidence
from codexops.releases.history import Event
from codexops.releases.model import Release
from infra.spec import load_spec

STACK = "staging"
AT = datetime(2026, 12, 4, 12, 0, 0, tzinfo=UTC)
TARGET_RPS = load_spec(STACK).load.targetRps


def release(name: str = "a") -> Release:
    digest = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
    return Release(f"0.1.0+{digest[7:19]}", "0.1.0", "c0ffee", digest, "2026-12-04T11:00:00Z", None, None, "0001")


@pytest.fixture(autouse=True)
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CODEX_STACKS_DIR", str(tmp_path / "stacks"))
    monkeypatch.setenv("CODEX_SIGNING_KEY", str(tmp_path / "key" / "signing-key"))
    monkeypatch.setenv("CODEX_TRUSTED_KEYS", str(tmp_path / "trusted-keys.txt"))
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    key = signing.create_key(signing.signing_key_path())
    (tmp_path / "trusted-keys.txt").write_text("# trusted\n" + signing.public_line(key, "alice") + "\n")
    return tmp_path


def gate(
    tmp: Path,
    of: Release,
    verdict: str = "PASS",
    *,
    shape: str = "gate",
    scale: float = 1.0,
    target_rps: float = TARGET_RPS,
    at: datetime = AT,
) -> GateReport:
    """A finished gate as run_gate leaves it: report.json, the attestation, the history line."""
    out = tmp / "reports" / f"{STACK}-{at:%Y%m%dT%H%M%S}-{shape}-{len(list(tmp.glob('reports/*')))}"
    out.mkdir(parents=True)
    status = {"PASS": "pass", "WARN": "warn", "FAIL": "fail", "INCONCLUSIVE": "inconclusive"}[verdict]
    load = Step("load", status, 30.0, [] if verdict == "PASS" else ["p95 latency 900 ms is above the warning"])
    load.figures = {"requests": 6000, "failures": 0, "error_rate": 0.0, "p95_ms": 12.0, "rps": 149.0}
    report = GateReport(STACK, STACK, "http://127.0.0.1:5002", f"{at:%Y%m%dT%H%M%SZ}", verdict, [load], str(out))
    report.release = {"id": of.id, "digest": of.digest}
    report.shape, report.scale, report.target_rps, report.achieved_rps = shape, scale, target_rps, 148.0
    (out / "report.json").write_text(json.dumps(asdict(report), indent=2))
    attestation.attest_gate(out, lambda _: None, now=at)
    history.append(replace(history_line(report), at=f"{at:%Y-%m-%dT%H:%M:%SZ}"))
    return report


def history_line(report: GateReport) -> Event:
    assert report.release
    return Event("gate", STACK, report.release["id"], report.release["digest"], report.verdict,
                 report=f"{report.directory}/report.json")  # fmt: skip


def check(of: Release, now: datetime = AT + timedelta(hours=1), accept_warnings: bool = False) -> Evidence:
    return check_evidence(STACK, of, now=now, max_age=timedelta(hours=24), accept_warnings=accept_warnings)


def refused(of: Release, match: str, **kwargs: object) -> str:
    with pytest.raises(EvidenceRefused, match=match) as caught:
        check(of, **kwargs)  # type: ignore[arg-type]
    return str(caught.value)


# -- the accept path and the attestation itself -------------------------------------------------------------
def test_a_signed_full_pass_gate_of_the_digest_is_evidence(world: Path) -> None:
    good = release()
    report = gate(world, good)
    evidence = check_evidence(STACK, good, now=AT + timedelta(hours=1), max_age=timedelta(hours=24),
                              accept_warnings=False)  # fmt: skip
    envelope = Path(report.directory) / attestation.ENVELOPE
    assert evidence.verdict == "PASS" and evidence.signer == "alice" and evidence.at == AT
    assert evidence.report == Path(report.directory) / "report.json"
    assert evidence.digest == "sha256:" + hashlib.sha256(envelope.read_bytes()).hexdigest()
    assert evidence.attestation == envelope and evidence.release == good.id
    assert evidence.statement["subject"][0]["digest"]["sha256"] == good.digest.removeprefix("sha256:")


def test_the_attestation_is_an_in_toto_statement_in_a_signed_dsse_envelope(world: Path) -> None:
    good = release()
    directory = Path(gate(world, good).directory)
    envelope = json.loads((directory / attestation.ENVELOPE).read_text())
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    payload = base64.b64decode(envelope["payload"])
    statement = json.loads(payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [{"name": good.id, "digest": {"sha256": good.digest.removeprefix("sha256:")}}]
    assert statement["predicateType"] == attestation.PREDICATE_TYPE
    body = statement["predicate"]
    assert body["report"]["sha256"] == hashlib.sha256((directory / "report.json").read_bytes()).hexdigest()
    assert (body["verdict"], body["shape"], body["scale"], body["stack"]) == ("PASS", "gate", 1.0, STACK)
    assert body["targetRps"] == TARGET_RPS and body["achievedRps"] == 148.0 and body["figures"]["p95_ms"] == 12.0
    # The signature covers DSSE's PAE of exactly this payload, by the trusted key.
    payload_back, signer = signing.verify_envelope(envelope, signing.read_trusted())
    assert payload_back == payload and signer.owner == "alice"
    assert json.loads((directory / attestation.PREDICATE).read_text()) == body  # what CI's actions/attest signs


def test_a_smoke_or_a_scaled_gate_gets_no_attestation(world: Path) -> None:
    smoke = Path(gate(world, release(), shape="smoke").directory)
    scaled = Path(gate(world, release(), scale=0.5).directory)
    for directory in (smoke, scaled):
        assert not (directory / attestation.ENVELOPE).exists() and not (directory / attestation.STATEMENT).exists()


# -- each refusal ---------------------------------------------------------------------------------------------
def test_no_gate_at_all_is_refused(world: Path) -> None:
    refused(release(), "no gate has judged .* run `codexops gate --target staging`")


def test_a_smoke_only_gate_is_refused(world: Path) -> None:
    good = release()
    gate(world, good, shape="smoke")
    message = refused(good, "the latest gate of .* on staging was a smoke")
    assert "run `codexops gate --target staging` (the full gate)" in message


def test_a_later_smoke_pass_does_not_replace_an_earlier_full_gate_fail(world: Path) -> None:
    good = release()
    gate(world, good, "FAIL")
    gate(world, good, "PASS", shape="smoke", at=AT + timedelta(minutes=5))
    refused(good, "is FAIL: load: p95 latency")


def test_a_hand_edited_history_line_is_refused_the_signed_verdict_counts(world: Path) -> None:
    good = release()
    gate(world, good, "FAIL")
    path = world / "stacks" / STACK / "history.jsonl"
    path.write_text(path.read_text().replace('"verdict": "FAIL"', '"verdict": "PASS"'))
    assert history.read(STACK)[-1].verdict == "PASS"  # the forged line reads as a PASS
    message = refused(good, "is FAIL")
    assert "history line says PASS: edited" in message


def test_a_forged_history_line_without_an_attestation_is_refused(world: Path) -> None:
    good = release()
    gate(world, good, "FAIL")
    forged = world / "reports" / "forged"
    forged.mkdir()
    report = json.loads(next(world.glob("reports/*/report.json")).read_text())
    (forged / "report.json").write_text(json.dumps({**report, "verdict": "PASS"}))
    history.append(Event("gate", STACK, good.id, good.digest, "PASS", report=str(forged / "report.json")))
    refused(good, "has no signed attestation: .* `codexops keys init`")


def test_an_edited_report_is_refused(world: Path) -> None:
    good = release()
    report = Path(gate(world, good).directory) / "report.json"
    report.write_text(report.read_text().replace('"p95_ms": 12.0', '"p95_ms": 11.0'))
    refused(good, "report.json was edited after it was signed")


def test_an_edited_signed_payload_does_not_verify(world: Path) -> None:
    good = release()
    path = Path(gate(world, good, "FAIL").directory) / attestation.ENVELOPE
    envelope = json.loads(path.read_text())
    payload = base64.b64decode(envelope["payload"]).replace(b'"verdict":"FAIL"', b'"verdict":"PASS"')
    path.write_text(json.dumps({**envelope, "payload": base64.b64encode(payload).decode()}))
    refused(good, "does not verify .* altered after signing")


def test_a_gate_signed_by_an_untrusted_key_is_refused(world: Path) -> None:
    (world / "trusted-keys.txt").write_text("# nobody yet\n")
    good = release()
    gate(world, good)
    refused(good, "does not list .* add the public key line .* trusted-keys.txt")


def test_a_malformed_trusted_keys_line_is_a_clear_error(world: Path) -> None:
    (world / "trusted-keys.txt").write_text("ed25519 not-base64 bob\n")
    good = release()
    gate(world, good)
    refused(good, r"trusted-keys.txt:1: expected `ed25519 <base64 public key> <owner>`")


def test_a_trusted_keys_file_of_binary_bytes_is_a_clear_error(world: Path) -> None:
    good = release()
    gate(world, good)
    (world / "trusted-keys.txt").write_bytes(b"ed25519 \xc0\xff\x00 bob\n")
    refused(good, r"trusted-keys.txt cannot be read as a list of trusted keys")


def test_another_releases_gate_is_refused(world: Path) -> None:
    mine, other = release("mine"), release("other")
    report = gate(world, other)
    history.append(Event("gate", STACK, mine.id, mine.digest, "PASS", report=f"{report.directory}/report.json"))
    refused(
        mine, re.escape(f"judged digest {other.digest}, not {mine.id}'s {mine.digest}: it is another release's gate")
    )


def test_a_gate_at_another_load_than_the_spec_asks_is_refused(world: Path) -> None:
    good = release()
    gate(world, good, target_rps=TARGET_RPS / 10)
    refused(good, f"but the spec of staging asks {TARGET_RPS:g} RPS")


def test_a_gate_older_than_max_age_is_refused(world: Path) -> None:
    good = release()
    gate(world, good)
    refused(good, "is 25h00m old, older than --max-age 24h00m", now=AT + timedelta(hours=25))


def test_a_warn_gate_needs_accept_warnings(world: Path) -> None:
    good = release()
    gate(world, good, "WARN")
    refused(good, "is WARN: pass --accept-warnings")
    assert check_evidence(STACK, good, now=AT, max_age=timedelta(hours=1), accept_warnings=True).verdict == "WARN"


def test_an_inconclusive_gate_is_refused_even_with_accept_warnings(world: Path) -> None:
    good = release()
    gate(world, good, "INCONCLUSIVE")  # signed like any full gate: the signature is not the verdict
    refused(good, "is INCONCLUSIVE: load: p95 latency", accept_warnings=True)


def test_a_full_gate_run_without_a_key_is_not_evidence(world: Path) -> None:
    signing.signing_key_path().unlink()
    good = release()
    directory = Path(gate(world, good).directory)
    assert (directory / attestation.STATEMENT).exists() and not (directory / attestation.ENVELOPE).exists()
    refused(good, "has no signed attestation")


def test_a_sigstore_bundle_is_verified_only_in_ci(world: Path) -> None:
    signing.signing_key_path().unlink()
    good = release()
    directory = Path(gate(world, good).directory)
    (directory / attestation.BUNDLE).write_text("{}")
    refused(good, "signed in CI .* verified only in a workflow with `gh attestation verify`")


def test_no_release_serving_is_refused() -> None:
    with pytest.raises(EvidenceRefused, match="no release is deployed on staging"):
        check_evidence(STACK, None, now=AT, max_age=timedelta(hours=1), accept_warnings=False)


# -- the keys command -----------------------------------------------------------------------------------------
def test_keys_init_writes_a_private_key_once_and_show_says_whether_it_is_trusted(
    world: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEX_SIGNING_KEY", str(world / "new" / "signing-key"))
    (world / "trusted-keys.txt").write_text("")
    runner = CliRunner()
    made = runner.invoke(cli, ["keys", "init", "--owner", "bob"])
    assert made.exit_code == 0, made.output
    line = made.output.strip().splitlines()[-1]
    assert line.startswith("ed25519 ") and line.endswith(" bob")
    assert (world / "new" / "signing-key").stat().st_mode & 0o777 == 0o600
    again = runner.invoke(cli, ["keys", "init"])
    assert again.exit_code == 2 and "exists already" in again.output
    assert runner.invoke(cli, ["keys", "show", "--owner", "bob"]).exit_code == 1  # not trusted yet
    (world / "trusted-keys.txt").write_text(line + "\n")
    shown = runner.invoke(cli, ["keys", "show", "--owner", "bob"])
    assert shown.exit_code == 0 and line in shown.output and "trusted" in shown.output


def test_keys_init_with_a_bad_owner_writes_no_key(world: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_SIGNING_KEY", str(world / "new" / "signing-key"))
    made = CliRunner().invoke(cli, ["keys", "init", "--owner", "alice\ned25519 AAAA mallory"])
    assert made.exit_code == 2 and "one word" in made.output
    assert not (world / "new" / "signing-key").exists()


# -- CI: a sigstore bundle verified by `gh attestation verify` (here a stand-in `gh`; the real one: README) ---
FAKE_GH = """#!{python}
import json, pathlib, sys
pathlib.Path(sys.argv[0]).with_name("args.json").write_text(json.dumps(sys.argv[1:]))
bundle = pathlib.Path(sys.argv[sys.argv.index("--bundle") + 1])
if json.loads(bundle.read_text()).get("refuse"):
    sys.exit("Error: verifying with issuer \\"sigstore.dev\\": no matching attestation")
statement = json.loads((bundle.parent / "statement.json").read_text())
san = "https://github.com/o/r/.github/workflows/main.yml@refs/heads/main"
print(json.dumps([{{"verificationResult": {{"statement": statement,
      "signature": {{"certificate": {{"subjectAlternativeName": san}}}}}}}}]))
"""


@pytest.fixture
def in_ci(world: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = world / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(FAKE_GH.format(python=sys.executable))
    (bin_dir / "gh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_REPOSITORY", "o/r")
    signing.signing_key_path().unlink()  # CI has no operator key: the workflow signs
    return bin_dir


def image_release() -> Release:
    plain = release()
    return replace(plain, image=f"ghcr.io/o/living-codex@{plain.digest}")


def test_in_ci_a_bundle_that_gh_verifies_is_evidence_of_the_image_digest(in_ci: Path, world: Path) -> None:
    good = image_release()
    directory = Path(gate(world, good).directory)
    (directory / attestation.BUNDLE).write_text("{}")
    evidence = check(good)
    assert evidence.signer.startswith("https://github.com/o/r/.github/workflows/main.yml")
    args = json.loads((in_ci / "args.json").read_text())
    assert args[:3] == ["attestation", "verify", f"oci://{good.image}"]
    assert args[args.index("--predicate-type") + 1] == attestation.PREDICATE_TYPE
    assert args[args.index("--signer-workflow") + 1] == "o/r/.github/workflows/main.yml"
    assert args[args.index("--repo") + 1] == "o/r"


def test_in_ci_a_bundle_gh_refuses_is_refused_with_its_reason(in_ci: Path, world: Path) -> None:
    good = image_release()
    directory = Path(gate(world, good).directory)
    (directory / attestation.BUNDLE).write_text('{"refuse": true}')
    refused(good, "gh attestation verify refused it: .*no matching attestation")


def test_in_ci_the_report_is_still_checked_against_the_signed_digest(in_ci: Path, world: Path) -> None:
    good = image_release()
    directory = Path(gate(world, good).directory)
    (directory / attestation.BUNDLE).write_text("{}")
    (directory / "report.json").write_text((directory / "report.json").read_text().replace("PASS", "FAIL"))
    refused(good, r"report\.json was edited after it was signed")


def test_the_gate_says_what_is_not_evidence_and_when_it_is_unsigned(world: Path) -> None:
    from codexops.gate_report import markdown

    said: list[str] = []
    smoke = gate(world, release(), shape="smoke")
    attestation.attest_gate(Path(smoke.directory), said.append)
    assert said == ["    not promotion evidence: shape smoke at scale 1.0 (only the full gate is)"]
    assert "(not the full gate: not promotion evidence)" in markdown(smoke, load_spec(STACK), None)
    signing.signing_key_path().unlink()
    said.clear()
    full = gate(world, release())
    attestation.attest_gate(Path(full.directory), said.append)
    assert len(said) == 1 and "attestation: not signed; no signing key at" in said[0]
    assert "not promotion evidence" not in markdown(full, load_spec(STACK), None)
    assert "shape gate at scale 1, target" in markdown(full, load_spec(STACK), None)


def test_another_stacks_gate_is_refused(world: Path) -> None:
    good = release()
    report = gate(world, good)
    history.append(replace(history_line(report), stack="production"))  # staging's gate copied as production's
    with pytest.raises(EvidenceRefused, match="the attestation is of a gate on staging, not on production"):
        check_evidence("production", good, now=AT, max_age=timedelta(hours=1), accept_warnings=False)
