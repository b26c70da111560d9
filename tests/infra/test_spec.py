"""The environment spec: defaults are the runbook's; a wrong key names the key, the file, the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.spec import ROOT, SpecError, Thresholds, available_stacks, load_spec, stack_file


def _stack(tmp_path: Path, body: str, name: str = "trial") -> str:
    (tmp_path / f"Pulumi.{name}.yaml").write_text(body)
    return name


def test_committed_stacks_load() -> None:
    assert {"staging", "production"} <= set(available_stacks())
    production = load_spec("production")
    assert production.platform == "kubernetes" and production.tls and production.replicas >= 3
    assert load_spec("staging").platform == "docker"


def test_thresholds_default_to_the_runbook(tmp_path: Path) -> None:
    # The spec's defaults, not a committed stack's (a stack file may set its own thresholds).
    t = Thresholds()
    assert (t.p95LatencyMs.warning, t.p95LatencyMs.critical) == (500, 1000)
    assert (t.errorRate.warning, t.errorRate.critical) == (0.01, 0.05)
    assert (t.memoryUsagePercent.warning, t.memoryUsagePercent.critical) == (80, 90)
    assert (t.healthScore.warning, t.healthScore.critical) == (80, 60)
    assert t.moduleFailures.warning == 0
    assert load_spec(_stack(tmp_path, MINIMAL), tmp_path).thresholds == t  # a stack that sets none gets them


MINIMAL = "config:\n  living-codex:platform: docker\n  living-codex:image: codex:1.0.0\n"


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ("  living-codex:replica: 2\n", "unknown key 'living-codex:replica'"),
        ("  living-codex:replicas: zero\n", "living-codex:replicas"),
        (
            "  living-codex:thresholds:\n    p95LatencyMs: {warning: 900, critical: 500}\n",
            "warning must be below",
        ),
        ("  living-codex:thresholds:\n    latency: {warning: 1, critical: 2}\n", "thresholds.latency"),
    ],
)
def test_a_wrong_key_is_named_with_the_file(tmp_path: Path, extra: str, named: str) -> None:
    stack = _stack(tmp_path, MINIMAL + extra)
    with pytest.raises(SpecError) as error:
        load_spec(stack, tmp_path)
    assert named in str(error.value) and "Pulumi.trial.yaml" in str(error.value)


def test_other_namespaces_are_kept_for_the_providers(tmp_path: Path) -> None:
    stack = _stack(tmp_path, MINIMAL + "  kubernetes:context: prod\n  docker:host: ssh://deploy@staging\n")
    spec = load_spec(stack, tmp_path)
    assert spec.providers == {"kubernetes:context": "prod", "docker:host": "ssh://deploy@staging"}


def test_missing_key_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"living-codex:platform: Field required"):
        load_spec(_stack(tmp_path, "config:\n  living-codex:replicas: 2\n"), tmp_path)
    with pytest.raises(SpecError, match=r"Pulumi\.absent\.yaml not found"):
        load_spec("absent", tmp_path)


def test_an_encrypted_secret_is_accepted(tmp_path: Path) -> None:
    stack = _stack(tmp_path, MINIMAL + "  living-codex:jwtSecret:\n    secure: v1:abc==\n")
    assert load_spec(stack, tmp_path).secrets == {"jwtSecret": "v1:abc=="}


def test_a_plaintext_secret_is_flagged_for_the_policy_pack(tmp_path: Path) -> None:
    stack = _stack(tmp_path, MINIMAL + "  living-codex:jwtSecret: hunter2hunter2\n")
    assert load_spec(stack, tmp_path).plaintext_secrets == ("jwtSecret",)


def test_the_spec_imports_without_pulumi() -> None:
    """The local environment, the gate and Locust load specs where no Pulumi program runs."""
    code = "import sys; sys.modules['pulumi'] = None; from infra.spec import load_spec; load_spec('production')"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", ["", "../etc", ".hidden", "a/b", "staging\n", "a\x00b", "a" * 101, "é"])
def test_a_stack_name_that_is_not_plain_is_refused_before_any_path_is_made(name: str) -> None:
    with pytest.raises(SpecError, match="is not a plain name"):
        load_spec(name)


@pytest.mark.parametrize("name", ["staging", "prod-2.eu", "a_b", "a" * 100])
def test_plain_stack_names_name_their_file(name: str) -> None:
    assert stack_file(name).name == f"Pulumi.{name}.yaml"


def test_a_kubernetes_stack_without_its_pod_network_is_refused_with_how_to_find_it(tmp_path: Path) -> None:
    # No default (it was kind's 10.244.0.0/16): trusting another range breaks throttling or lets pods spoof.
    text = (ROOT / "Pulumi.production.yaml").read_text()
    line = next(line for line in text.splitlines() if line.startswith("  living-codex:podNetwork:"))
    with pytest.raises(SpecError, match=r"podNetwork: set living-codex:podNetwork .*spec\.podCIDR"):
        load_spec(_stack(tmp_path, text.replace(line + "\n", "")), tmp_path)
    assert load_spec("kind").podNetwork == "10.244.0.0/16"  # kind's own file names kind's range
    assert load_spec("staging").podNetwork is None  # Docker: the stack network's subnet instead
