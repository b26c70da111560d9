"""What the benchmark writes into the local stack's database, taken back when it ends.

The create rows add a node per request (about 80,000 per run, type `bench.create`) and the scale curve
seeds up to 100,000 (`bench.scale`). Left in place they stay in the stack `make gate` judges next: after
a few benchmarks its unfiltered lists counted 550,000 nodes per request and a healthy gate FAILed at
40 of 150 RPS. The 3,000 nodes the uncached reads cycle over stay (a fixed set, re-created as 409s).
"""

from __future__ import annotations

import asyncio

import asyncpg

from benchmarks.scale import SCALE_TYPE
from benchmarks.wrk import CREATE_TYPE


async def _remove(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        status = await conn.execute("DELETE FROM nodes WHERE type_id = ANY($1::text[])", [CREATE_TYPE, SCALE_TYPE])
        # FULL: a plain VACUUM leaves the heap at its largest, and a count over most of it then scans
        # every page it ever had (seen: about 14,500 pages, by the planner's estimate, for 12,500 live nodes;
        # 242 after this rewrite).
        await conn.execute("VACUUM (FULL, ANALYZE) nodes")
        return int(status.split()[-1])
    finally:
        await conn.close()


def remove_written(dsn: str) -> int:
    """Delete the nodes the benchmark wrote (their edges cascade); how many there were."""
    return asyncio.run(_remove(dsn))
