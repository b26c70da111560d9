"""Pulumi entry point (Pulumi.yaml `main: infra/`): the spec of the selected stack, then the program."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi

from infra.program import build
from infra.spec import load_spec

build(load_spec(pulumi.get_stack()))
