"""The benchmark's pure parts: anchor ratios and targets, the scale table, profile summaries, ports."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from benchmarks import profile
from benchmarks.gateway import Ports, anchors
from benchmarks.report import ANCHOR_CREATE, ANCHOR_READ, BARE, anchor_ratios, issue_targets
from benchmarks.run import _better
from benchmarks.scale_report import scale_points, scale_table
from benchmarks.wrk import WrkResult


def _row(rps: float, p50: float = 1.0, p95: float = 2.0, p99: float = 3.0) -> dict[str, Any]:
    return {"rps": rps, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99}


def test_each_service_path_is_a_ratio_of_its_own_anchor() -> None:
    rows = {"service node read, uncached": _row(700, p95=4.0), ANCHOR_READ: _row(1000, p95=2.0), BARE: _row(10)}
    ratios = {r["path"]: r for r in anchor_ratios(rows)}
    assert set(ratios) == {"node read, uncached"}  # pairs missing a side are left out, not divided by zero
    assert ratios["node read, uncached"]["rps"] == pytest.approx(0.7)
    assert ratios["node read, uncached"]["p95_ms"] == pytest.approx(2.0)


def test_a_side_that_answered_errors_is_not_a_ratio() -> None:
    """An anchor left running by an interrupted bench answered 70,512 errors a second: no ratio from it."""
    failing = {**_row(70_512), "errors": 565_260}
    rows = {"service node read, uncached": _row(1_650), ANCHOR_READ: failing}
    assert anchor_ratios(rows) == []
    assert anchor_ratios({**rows, ANCHOR_READ: {**_row(3_000), "errors": 0}})[0]["rps"] == pytest.approx(0.55)


def test_a_round_without_errors_is_kept_over_a_faster_one_with_errors() -> None:
    clean = WrkResult(requests=10, seconds=1.0, errors=0, p50_ms=1, p95_ms=2, p99_ms=3, wrk_cpu=0, machine_busy=0)
    failing = WrkResult(
        requests=9_999, seconds=1.0, errors=9_999, p50_ms=1, p95_ms=1, p99_ms=1, wrk_cpu=0, machine_busy=0
    )
    assert _better(clean, failing) and not _better(failing, clean)
    assert _better(dataclasses.replace(clean, requests=20), clean)


def test_targets_are_judged_from_the_figures() -> None:
    rows = {
        "service node read, uncached": _row(690),
        ANCHOR_READ: _row(1000),
        "service create node": _row(800, p95=20.0),
        ANCHOR_CREATE: _row(1000, p95=10.0),
        "service node read, cached": _row(900),
        BARE: _row(1000),
    }
    found = {
        name: (measured, ok) for name, measured, ok in issue_targets({"rows": rows, "rssAfterWrkMB": {"app-1": 151}})
    }
    assert found[f"node read, uncached ≥ 0.7 of {ANCHOR_READ}"] == ("0.69", False)
    assert found[f"create node ≥ 0.7 of {ANCHOR_CREATE}"] == ("0.80", True)
    assert found[f"node read, cached ≥ 0.9 of {BARE}"] == ("0.90", True)
    assert found["create p95 ≤ 2x its anchor's"][1] is True  # exactly twice is within
    assert found["RSS ≤ 150 MB per replica after the benchmark"] == ("app-1 151 MB", False)


def _scale(replicas: int, nodes: int | None, path: str, side: str, rps: float) -> dict[str, Any]:
    return {"replicas": replicas, "nodes": nodes, "path": path, "side": side, **_row(rps, p95=rps / 100)}


def test_the_scale_table_pairs_service_and_anchor_per_point() -> None:
    rows = [
        _scale(1, None, "read", "service", 300),
        _scale(1, None, "read", "asyncpg", 600),
        _scale(2, 100_000, "list", "service", 50),
        _scale(2, 100_000, "list", "asyncpg", 100),
        _scale(4, None, "read", "service", 500) | {"errors": 2},
    ]
    points = scale_points(rows)
    assert [(p["axis"], p["value"], p["path"]) for p in points] == [
        ("replicas", 1, "read"),
        ("nodes", 100_000, "list"),
        ("replicas", 4, "read"),
    ]
    table = scale_table(rows, 4)
    assert "| 1 replica | read | 300 / 3.0 ms | 600 / 6.0 ms | 0.50 |" in table
    assert "| 100,000 nodes | list | 50 / 0.5 ms | 100 / 1.0 ms | 0.50 |" in table
    assert "| 4 replicas | read | 500 / 5.0 ms (2 errors) | - | - |" in table  # a missing anchor: shown missing
    assert scale_table([], 4) == ["No scale curve in this run."]


COLLAPSED = "\n".join(
    [
        "process 1:python;run (uvicorn/server.py:60);get_node (app/storage/graph.py:120);execute (sqlalchemy/engine/base.py:9) 6",
        "process 1:python;run (uvicorn/server.py:60);get_node (app/storage/graph.py:121);fetch (asyncpg/connection.py:3) 2",
        "process 1:python;run (uvicorn/server.py:60);render_json (app/rendering.py:10);encode (json/encoder.py:200) 2",
        "process 1:python;run (uvicorn/server.py:60);select (selectors.py:1) 40",
    ]
)


def test_top_costs_rank_functions_by_their_own_busy_samples() -> None:
    top = profile.top_costs(COLLAPSED)
    name, own, total = top[0]
    assert name == "execute (sqlalchemy/engine/base.py)" and own == pytest.approx(0.6) == total
    names = [name for name, _, _ in top]
    assert "get_node (app/storage/graph.py)" not in names  # no self time: a layer, not a cost
    assert not any(name.startswith("select") for name in names)  # the loop waiting is idle, not a cost
    assert profile.top_costs("") == []


def test_part_shares_go_to_the_innermost_matching_part_and_add_up() -> None:
    shares = profile.part_shares(COLLAPSED)
    assert shares["SQLAlchemy Core (statement, pool, result)"] == pytest.approx(0.6)
    assert shares["asyncpg driver"] == pytest.approx(0.2)
    assert shares["JSON rendering (app/rendering.py, json)"] == pytest.approx(0.2)
    assert sum(shares.values()) == pytest.approx(1.0)
    assert profile.part_shares("") == dict.fromkeys(shares, 0.0)


def test_ports_follow_codex_port_base(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_PORT_BASE", "40000")
    ports = Ports.from_env()
    assert (ports.service, ports.asyncpg, ports.asyncpg_replicas(2)) == (40501, 40504, (40521, 40522))
    monkeypatch.delenv("CODEX_PORT_BASE")
    assert Ports.from_env().service == 5301


def test_the_anchor_upstream_lists_exactly_the_replicas_given() -> None:
    config = anchors(Ports(), '{"a":"it\'s"}', (5321, 5322, 5323))
    upstream = config.split("upstream bench_asyncpg {", 1)[1].split("}", 1)[0]
    assert upstream.count("server 127.0.0.1:") == 3 and "127.0.0.1:5323;" in upstream
    assert 'return 200 \'{"a":"it\\\'s"}\';' in config
