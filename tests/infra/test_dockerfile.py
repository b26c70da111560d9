"""app/Dockerfile: multi-stage, pinned, non-root, with a healthcheck, and hadolint-clean."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[2] / "app" / "Dockerfile"
HADOLINT = Path(sys.executable).with_name("hadolint")


def test_hadolint_is_clean() -> None:
    result = subprocess.run([str(HADOLINT), str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_pinned_non_root_with_healthcheck() -> None:
    text = DOCKERFILE.read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.M)
    assert len(bases) == 2 and all(re.search(r":\d+\.\d+\.\d+", b) for b in bases)
    assert re.search(r"^USER 10001", text, re.M) and "HEALTHCHECK" in text
