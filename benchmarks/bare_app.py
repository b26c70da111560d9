"""The bare FastAPI anchor: one route answering the same JSON as a node read, nothing else.

Run by benchmarks/run.py under uvicorn[standard] (uvloop, httptools); BENCH_NODE_FILE names the JSON.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI

NODE: dict[str, Any] = json.loads(Path(os.environ.get("BENCH_NODE_FILE", "node.json")).read_text())
app = FastAPI()


@app.get("/api/nodes/{node_id}")
async def node(node_id: str) -> dict[str, Any]:
    return NODE
