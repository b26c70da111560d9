"""Every resource the program registers for each stack under Pulumi's mocks, as JSON: type, name, URN,
parent, protect/retain, dependencies and inputs. Written before and after a refactoring, `--compare`
says which URNs were added or removed (a removed one would be a replacement or a deletion) and which
resources' inputs changed.

    .venv/bin/python scripts/resource_snapshot.py /tmp/before.json           # staging and production
    .venv/bin/python scripts/resource_snapshot.py /tmp/after.json
    .venv/bin/python scripts/resource_snapshot.py --compare /tmp/before.json /tmp/after.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.mock_runtime import declare, with_release
from infra.spec import load_spec

STACKS = ("staging", "production")


def snapshot(stack: str) -> dict[str, dict[str, Any]]:
    declaration = declare(with_release(load_spec(stack)))
    return {
        r.urn: {
            "type": r.type,
            "name": r.name,
            "parent": r.parent,
            "protect": r.protect,
            "retainOnDelete": r.retain_on_delete,
            "dependencies": sorted(r.dependencies),
            "secrets": sorted(r.secrets),
            "inputs": r.inputs,
        }
        for r in declaration.resources
    }


def compare(before: dict[str, Any], after: dict[str, Any]) -> int:
    """Prints the differences per stack; 1 when a URN is gone (replaced or removed), else 0."""
    status = 0
    for stack in sorted(set(before) | set(after)):
        old, new = before.get(stack, {}), after.get(stack, {})
        removed, added = sorted(set(old) - set(new)), sorted(set(new) - set(old))
        changed = [urn for urn in sorted(set(old) & set(new)) if old[urn] != new[urn]]
        print(
            f"{stack}: {len(old)} before, {len(new)} after; {len(removed)} removed, {len(added)} added, "
            f"{len(changed)} changed"
        )
        for urn in removed:
            print(f"  removed {urn}")
        for urn in added:
            print(f"  added   {urn}")
        for urn in changed:
            keys = sorted(k for k in old[urn] if old[urn][k] != new[urn].get(k))
            print(f"  changed {urn}: {', '.join(keys)}")
        status |= bool(removed)
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--compare", action="store_true", help="compare two snapshots")
    parser.add_argument("--stack", action="append", help=f"a stack to snapshot (default: {', '.join(STACKS)})")
    args = parser.parse_args()
    if args.compare:
        before, after = (json.loads(path.read_text()) for path in args.files)
        return compare(before, after)
    result = {stack: snapshot(stack) for stack in args.stack or STACKS}
    args.files[0].write_text(json.dumps(result, indent=1, sort_keys=True, default=str) + "\n")
    print(", ".join(f"{stack}: {len(resources)} resources" for stack, resources in result.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
