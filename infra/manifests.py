"""Kubernetes objects declared by the program, as YAML manifests, validated against the schema."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

from infra.crd_schemas import CrdNotFound, crd_errors
from infra.mock_runtime import Declaration, DeclaredResource

KUBERNETES = "kubernetes:"


@dataclass
class Manifest:
    resource: DeclaredResource
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", "?"))

    @property
    def name(self) -> str:
        return str(self.body.get("metadata", {}).get("name", self.resource.name))

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.name} (Pulumi resource {self.resource.name!r})"


@dataclass
class Finding:
    manifest: Manifest
    message: str
    severity: str  # error, skipped


def kubernetes_manifests(declaration: Declaration) -> list[Manifest]:
    return [Manifest(r, r.inputs) for r in declaration.custom() if r.type.startswith(KUBERNETES)]


def write_manifests(manifests: list[Manifest], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.yaml"):
        old.unlink()
    written = []
    for index, manifest in enumerate(manifests, start=1):
        slug = re.sub(r"[^a-z0-9-]+", "-", f"{manifest.kind}-{manifest.name}".lower())
        path = directory / f"{index:03d}-{slug}.yaml"
        path.write_text(yaml.safe_dump(manifest.body, sort_keys=False))
        written.append(path)
    return written


def validate(manifests: list[Manifest], kubernetes_version: str) -> list[Finding]:
    """Strict schema validation: built-in kinds against Kubernetes' schema, custom resources against their
    vendored CRD (infra/crds/); a custom resource without one is noted as skipped."""
    findings = []
    for manifest in manifests:
        try:
            kubernetes_validate.validate(manifest.body, kubernetes_version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            findings.extend(custom_resource_findings(manifest))
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path) or "(top level)"
            findings.append(Finding(manifest, f"{path}: {exc.message}", "error"))
    return findings


def custom_resource_findings(manifest: Manifest) -> list[Finding]:
    try:
        errors = crd_errors(manifest.body)
    except CrdNotFound as exc:
        return [Finding(manifest, f"custom resource {exc}: no CRD vendored in infra/crds/, not validated", "skipped")]
    return [Finding(manifest, error, "error") for error in errors]
