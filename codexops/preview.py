"""`codexops preview STACK`: evaluate the program offline, print the plan, write and validate manifests."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import typer

from infra.manifests import Finding, kubernetes_manifests, validate, write_manifests
from infra.mock_runtime import Declaration, declare
from infra.spec import ROOT, EnvironmentSpec
from policies.evaluate import Violation, evaluate
from policies.pack import ALL_POLICIES
from policies.release import EVIDENCE_POLICY


@dataclass
class PreviewResult:
    declaration: Declaration
    manifest_dir: Path
    manifest_files: list[Path]
    findings: list[Finding] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    seconds: float = 0.0
    not_evaluated: dict[str, str] = field(default_factory=dict)  # policy -> why it could not be judged here

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def mandatory_violations(self) -> list[Violation]:
        return [v for v in self.violations if v.mandatory]


def run_preview(
    spec: EnvironmentSpec, out_root: Path = ROOT / "build" / "manifests", *, stand_in: bool = False
) -> PreviewResult:
    """`stand_in`: the image is a stand-in digest (nothing promoted yet), which no evidence can cover: the
    evidence policy is listed as not evaluated rather than reported against it."""
    began = time.perf_counter()
    declaration = declare(spec)
    manifests = kubernetes_manifests(declaration)
    directory = out_root / spec.stack
    files = write_manifests(manifests, directory)
    findings = validate(manifests, spec.kubernetesVersion) if manifests else []
    resources = [(r.type, r.name, r.inputs) for r in declaration.custom()]
    skipped = {EVIDENCE_POLICY: "the stand-in digest has no evidence by construction"} if stand_in else {}
    policies = [p for p in ALL_POLICIES if p.name not in skipped]
    violations = evaluate(resources, spec.environment, policies, stack=spec.stack)
    took = time.perf_counter() - began
    return PreviewResult(declaration, directory, files, findings, violations, took, skipped)


def print_plan(result: PreviewResult) -> None:
    declaration = result.declaration
    spec = declaration.spec
    typer.secho(
        f"Preview of stack {spec.stack} ({spec.platform}, {spec.environment}), offline under "
        "Pulumi's mock runtime: nothing was deployed.",
        bold=True,
    )
    components = [r for r in declaration.resources if not r.custom]
    children: dict[str, list[str]] = {}
    for resource in declaration.custom():
        children.setdefault(resource.parent, []).append(f"{resource.type} {resource.name}")
    for component in components:
        typer.echo(f"  {component.type} {component.name}")
        for line in children.get(component.urn, []):
            typer.echo(f"      + {line}")
    top_level = [
        line for parent, lines in children.items() if parent not in {c.urn for c in components} for line in lines
    ]
    for line in top_level:
        typer.echo(f"  + {line}")
    counts = Counter(r.type for r in declaration.custom())
    typer.echo(f"Resources: {len(declaration.custom())} in {len(components)} components")
    for type_, count in sorted(counts.items()):
        typer.echo(f"  {count:3d}  {type_}")
    print_prerequisites(declaration)


def print_prerequisites(declaration: Declaration) -> None:
    """What the target must already have. A real `pulumi preview` fails on an unpublished image, a missing
    issuer or missing cert-manager CRDs; the DNS-01 token is only used when cert-manager issues. Offline they
    are listed, and registry digests are stand-ins."""
    prerequisites = declaration.environment.prerequisites if declaration.environment else []
    if prerequisites:
        typer.echo("Prerequisites (not verifiable offline; digests shown are stand-ins):")
        for line in prerequisites:
            typer.echo(f"  - {line}")


def print_validation(result: PreviewResult) -> None:
    spec = result.declaration.spec
    if not result.manifest_files:
        typer.echo("Kubernetes manifests: none (this stack declares no Kubernetes objects)")
        return
    skipped = [f for f in result.findings if f.severity == "skipped"]
    valid = len(result.manifest_files) - len(skipped) - len(result.errors)
    typer.echo(f"Manifests: {len(result.manifest_files)} written to {result.manifest_dir}")
    for finding in skipped:
        typer.echo(f"  skipped {finding.manifest.label}: {finding.message}")
    for finding in result.errors:
        typer.secho(f"  INVALID {finding.manifest.label}: {finding.message}", fg="red")
    typer.echo(
        f"Schema validation (Kubernetes {spec.kubernetesVersion}, strict): {valid} valid, "
        f"{len(skipped)} skipped, {len(result.errors)} invalid"
    )


def print_policies(result: PreviewResult) -> None:
    environment = result.declaration.spec.environment
    for policy, why in result.not_evaluated.items():
        typer.secho(f"Policy {policy}: not evaluated ({why}); `pulumi up` evaluates it", fg="yellow")
    if not result.violations:
        typer.secho(f"Policy pack (policies/, {environment} enforcement): no violations", fg="green")
        return
    typer.echo(
        f"Policy pack (policies/, {environment} enforcement): {len(result.violations)} violations, "
        f"{len(result.mandatory_violations)} mandatory"
    )
    by_resource: dict[str, list[Violation]] = {}
    for violation in result.violations:
        by_resource.setdefault(violation.resource, []).append(violation)
    for resource, violations in sorted(by_resource.items()):
        typer.echo(f"  {resource}")
        for v in violations:
            colour = "red" if v.mandatory else "yellow"
            typer.secho(f"    [{v.level}] {v.policy} ({v.severity}): {v.message}", fg=colour)
            typer.echo(f"        fix: {v.hint}")
