"""codexops serve returns freed argon2 buffers to the system (RSS does not keep them)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import asyncio, sys
import psutil
from argon2 import PasswordHasher
from codexops.malloc import return_freed_memory
if sys.argv[1] == "fixed":
    assert return_freed_memory()
hasher = PasswordHasher(time_cost=1, memory_cost=19 * 1024, parallelism=1)
hashed = hasher.hash("a-password-123")
process = psutil.Process()
async def logins() -> None:
    await asyncio.gather(*(asyncio.to_thread(hasher.verify, hashed, "a-password-123") for _ in range(24)))
before = process.memory_info().rss
asyncio.run(logins())
print((process.memory_info().rss - before) // 2**20)
"""


def _growth_mb(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=60, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def test_freed_argon2_buffers_leave_the_process() -> None:
    assert _growth_mb("fixed") < 20
    # glibc's default, for contrast: each executor thread keeps its 19 MiB after verifying
    assert _growth_mb("default") > 40
