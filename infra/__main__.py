"""Pulumi entry point (Pulumi.yaml `main: infra/`): the spec from the running stack's config, then the program."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.program import build
from infra.stack_config import spec_from_pulumi

build(spec_from_pulumi())
