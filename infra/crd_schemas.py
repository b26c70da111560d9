"""Custom resources checked against their projects' CRDs (vendored in infra/crds/), offline.

A CRD's openAPIV3Schema is close to JSON Schema; two Kubernetes extensions need translating:
`x-kubernetes-int-or-string` (no `type`: an integer or a string) and unknown fields. The API server prunes
unknown fields silently unless asked for strict field validation (`kubectl apply --validate=strict`, the
default since 1.27); here, as there, a field the schema does not declare is an error, except under
`x-kubernetes-preserve-unknown-fields`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRDS = Path(__file__).resolve().parent / "crds"
Schema = dict[str, Any]


class CrdNotFound(LookupError):
    """No vendored CRD defines this apiVersion and kind."""


@cache
def crd_schemas() -> dict[tuple[str, str], Schema]:
    """(apiVersion, kind) -> the strict JSON Schema of every served version of every vendored CRD."""
    schemas: dict[tuple[str, str], Schema] = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served", True):
                    schemas[(f"{group}/{version['name']}", kind)] = strict(version["schema"]["openAPIV3Schema"])
    return schemas


def strict(node: Any) -> Any:
    """The schema with undeclared fields refused and int-or-string spelled out, recursively."""
    if isinstance(node, list):
        return [strict(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: strict(value) for key, value in node.items() if key != "description"}
    if out.pop("x-kubernetes-int-or-string", False):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    keeps_unknown = out.pop("x-kubernetes-preserve-unknown-fields", False)
    if "properties" in out and "additionalProperties" not in out and not keeps_unknown:
        out["additionalProperties"] = False
    return out


def crd_errors(body: dict[str, Any]) -> list[str]:
    """Each place the custom resource breaks its CRD's schema ("" paths are the top level); CrdNotFound when
    no vendored CRD defines it. `metadata` is the API server's to check (ObjectMeta), as kubectl does."""
    key = (str(body.get("apiVersion")), str(body.get("kind")))
    schema = crd_schemas().get(key)
    if schema is None:
        raise CrdNotFound(f"{key[0]} {key[1]}")
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    return [f"{'.'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}" for e in errors]
