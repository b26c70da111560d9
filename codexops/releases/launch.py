"""A replica's supervisord command: start the release's server only if its folder is as it was built.

    python -m codexops.releases.launch <release folder> <manifest digest> [serve args]

The digest is the one the deployer recorded (state.json) when it verified the release; every start,
supervisord's automatic restarts included, hashes the folder against files.sha256 first (about half a
second for a venv of 5,500 files) and then becomes the release's `codexops serve` (exec: the same pid,
so supervisord's signals reach the server). This runs from the operator's virtualenv, never from the
release being checked, and imports the standard library only.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from codexops.releases import manifest

REFUSED = 78  # EX_CONFIG: supervisord retries, then marks the program FATAL


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m codexops.releases.launch FOLDER MANIFEST_DIGEST [ARGS]", file=sys.stderr)
        return 2
    folder, expected, *args = Path(argv[0]), argv[1], *argv[2:]
    found = manifest.differences(folder, expected)
    if found:
        print(
            f"refused to start: release folder {folder} differs from its manifest ({len(found)}): "
            f"{manifest.summary(found)}; rebuild the release (`codexops release build` at its commit), then "
            f"`codexops sync <stack>`",
            file=sys.stderr,
            flush=True,
        )
        return REFUSED
    entry = folder / "venv" / "bin" / "codexops"
    os.execv(entry, [str(entry), *(args or ["serve"])])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
