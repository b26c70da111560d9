"""A rollout's attestation: every step with its figures and decision, the outcome and where it stopped,
signed about the release digest; never usable as a gate's evidence; shown in `history`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from codexops import signing
from codexops.releases import attestation
from codexops.releases.evidence import EvidenceRefused, checked_predicate
from codexops.releases.model import Release
from codexops.releases.rollout_attestation import ROLLOUT_PREDICATE_TYPE, attest_rollout
from codexops.releases.timeline import note
from codexops.rollout.analysis import Figures, StepAnalysis
from codexops.rollout.driver import RolloutResult
from infra.spec import EnvironmentSpec, Rollout, RolloutStep, load_spec

RELEASE = Release(
    "0.2.0+abcdef123456", "0.2.0", "c0ffee", "sha256:" + "ab" * 32, "2026-12-07T00:00:00Z", None, None, "h"
)


def _aborted() -> dict[str, object]:
    passed = StepAnalysis(1, 10, Figures(153, 0.0, 4.9, 9.0), Figures(1353, 0.0, 4.8, 8.0), "PASS", (), "60s")
    slow = StepAnalysis(2, 50, Figures(668, 0.0, 480.0, 510.0), Figures(828, 0.0, 5.0, 9.0), "FAIL", ("p95",), "60s")
    return RolloutResult("ABORTED", [passed, slow], "step 2 (50%) FAIL: p95").as_dict()


@pytest.fixture
def spec() -> EnvironmentSpec:
    steps = (RolloutStep(weight=10, pause="60s"), RolloutStep(weight=50, pause="60s"))
    staging = load_spec("staging")
    return staging.model_copy(update={"rollout": Rollout(steps=steps)})


@pytest.fixture
def key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[signing.TrustedKey]:
    monkeypatch.setenv("CODEX_SIGNING_KEY", str(tmp_path / "key" / "signing-key"))
    monkeypatch.setenv("CODEX_TRUSTED_KEYS", str(tmp_path / "trusted.txt"))
    created = signing.create_key(tmp_path / "key" / "signing-key")
    (tmp_path / "trusted.txt").write_text(signing.public_line(created, "tester") + "\n")
    return signing.read_trusted()


def test_an_aborted_rollout_is_signed_with_every_step_and_where_it_stopped(
    tmp_path: Path, spec: EnvironmentSpec, key: list[signing.TrustedKey]
) -> None:
    folder = attest_rollout(tmp_path, spec, RELEASE, "0.1.0+0123456789ab", _aborted(), print)
    assert folder.parent == tmp_path / "rollouts" and folder.name.startswith("staging-")
    envelope = json.loads((folder / attestation.ENVELOPE).read_text())
    payload, signer = signing.verify_envelope(envelope, key)
    assert signer.owner == "tester"
    statement = json.loads(payload)
    assert statement["predicateType"] == ROLLOUT_PREDICATE_TYPE
    assert statement["subject"][0]["digest"]["sha256"] == "ab" * 32
    body = statement["predicate"]
    assert (body["outcome"], body["abortedAtStep"], body["baseline"]) == ("ABORTED", 2, "0.1.0+0123456789ab")
    assert [(s["step"], s["weight"], s["decision"], s["window"]) for s in body["steps"]] == [
        (1, 10, "PASS", "60s"),
        (2, 50, "FAIL", "60s"),
    ]
    assert body["steps"][1]["canary"] == {"requests": 668, "error_rate": 0.0, "p95_ms": 480.0, "p99_ms": 510.0}
    assert body["plannedSteps"] == [{"weight": 10, "pause": "60s"}, {"weight": 50, "pause": "60s"}]
    assert body["analysis"]["minSamples"] == spec.rollout.analysis.minSamples
    assert json.loads((folder / "rollout.json").read_text()) == body


def test_without_a_key_the_statement_is_written_for_ci_to_sign(
    tmp_path: Path, spec: EnvironmentSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEX_SIGNING_KEY", str(tmp_path / "none"))
    folder = attest_rollout(tmp_path, spec, RELEASE, None, _aborted(), print)
    assert (folder / attestation.STATEMENT).exists() and (folder / attestation.PREDICATE).exists()
    assert not (folder / attestation.ENVELOPE).exists()


def test_a_rollout_attestation_is_never_a_gates_evidence(
    tmp_path: Path, spec: EnvironmentSpec, key: list[signing.TrustedKey]
) -> None:
    folder = attest_rollout(tmp_path, spec, RELEASE, None, _aborted(), print)
    payload, _ = signing.verify_envelope(json.loads((folder / attestation.ENVELOPE).read_text()), key)
    with pytest.raises(EvidenceRefused, match="not a gate"):
        checked_predicate(json.loads(payload), RELEASE, "staging", "the evidence", check_load=False)


def test_history_shows_each_step_and_the_abort() -> None:
    row = {"kind": "deploy", "report": None, "detail": "canary aborted", "rollout": _aborted()}
    shown = note(row)
    assert "step 1 10% PASS (canary 153 req, p95 4.9 ms; baseline 1353 req, p95 4.8 ms)" in shown
    assert "step 2 50% FAIL" in shown and "ABORTED: step 2 (50%) FAIL: p95" in shown
