"""Gate report folders: one per gate, even when two gates of a target start in the same second."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from codexops.gate import new_report_dir


def test_gates_started_in_the_same_second_get_their_own_folders(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    first = new_report_dir(reports, "staging-20261204T160000Z")
    (first / "report.json").write_text("{}")
    second = new_report_dir(reports, "staging-20261204T160000Z")
    assert first.name == "staging-20261204T160000Z" and second.name == "staging-20261204T160000Z-2"
    assert list(second.iterdir()) == [] and (first / "report.json").read_text() == "{}"


def test_concurrent_gates_never_share_a_folder(tmp_path: Path) -> None:
    with ThreadPoolExecutor(8) as pool:
        folders = list(pool.map(lambda _: new_report_dir(tmp_path, "production-20261204T160000Z"), range(16)))
    assert len(set(folders)) == 16 and all(folder.is_dir() for folder in folders)
