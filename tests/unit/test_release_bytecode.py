"""A release's byte-code (codexops.releases.bytecode): every module gets a hash-checked .pyc, compiled once
per content and copied (never linked) into every later tree; a syntax error names its file and line."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from codexops.releases.bytecode import CompileError, compile_tree

FILES = 150  # more than one batch, so the worker pool compiles them


def tree(root: Path, marker: str = "") -> Path:
    package = root / "venv" / "lib" / "site-packages" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for index in range(FILES):
        (package / f"m{index}.py").write_text(f"VALUE = {index}\n")
    (package / "changed.py").write_text(f"MARK = {marker!r}\n")
    return root / "venv"


def pyc(source: Path) -> Path:
    return Path(importlib.util.cache_from_source(str(source)))


def test_each_module_is_compiled_once_and_copied_into_later_trees(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = compile_tree(tree(tmp_path / "a"), cache)
    assert (first.reused, first.compiled) == (0, FILES + 2)
    second_root = tree(tmp_path / "b", marker="edited")
    second = compile_tree(second_root, cache)
    assert (second.reused, second.compiled) == (FILES + 1, 1)  # only the edited module is compiled again
    module = Path("lib") / "site-packages" / "pkg" / "m7.py"
    assert pyc(second_root / module).read_bytes() == pyc(tmp_path / "a" / "venv" / module).read_bytes()
    assert pyc(second_root / module).stat().st_nlink == 1  # a copy: editing it changes neither the cache nor tree a


def test_the_byte_code_is_hash_checked_and_imports_with_the_real_path(tmp_path: Path) -> None:
    venv = tree(tmp_path / "a", marker="x")
    compile_tree(venv, tmp_path / "cache")
    changed = venv / "lib" / "site-packages" / "pkg" / "changed.py"
    flags = int.from_bytes(pyc(changed).read_bytes()[4:8], "little")
    assert flags == 0b11  # hash-based and checked: valid wherever the folder is moved
    code = "import pkg.changed as m; print(m.MARK, m.__spec__.cached, m.__file__)"
    shown = subprocess.run(
        [sys.executable, "-B", "-c", code],
        cwd=tmp_path,
        env={"PYTHONPATH": str(venv / "lib" / "site-packages")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert shown == ["x", str(pyc(changed)), str(changed)]


def test_a_syntax_error_names_the_file_relative_to_site_packages_and_its_line(tmp_path: Path) -> None:
    venv = tree(tmp_path / "a")
    (venv / "lib" / "site-packages" / "pkg" / "m3.py").write_text("ok = 1\ndef broken(:\n    pass\n")
    with pytest.raises(CompileError, match=r"^pkg/m3\.py, line 2: SyntaxError: "):
        compile_tree(venv, tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.partial-*"))
