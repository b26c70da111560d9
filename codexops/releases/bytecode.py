"""A release virtualenv's byte-code: each module compiled once per content, then copied into every release.

Releases of one lock hold the same ~3,300 dependency modules, and compiling all of them for every build
was most of a build's CPU (about 6 of its 8 s, 2026-12-07). Each compiled file is kept in a cache named by
the interpreter's cache tag and the source's sha256; a build copies what the cache has and compiles the
rest in parallel. The files are hash-checked .pyc (valid wherever the folder moves), and a release gets
copies, never links, so an edit to one release's file changes no other release and not the cache. The
cache is the building account's own (0700), trusted as uv's cache is.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import py_compile
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "CODEX_BYTECODE_CACHE"
BATCH = 64  # sources per worker task: one task per file costs more in pickling than it saves


class CompileError(RuntimeError):
    """A source does not compile; the message names its file (relative to site-packages) and line."""


@dataclass(frozen=True)
class Compiled:
    reused: int  # copied from the cache
    compiled: int  # compiled now (and added to the cache)


def cache_root() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "living-codex" / "bytecode"


def compile_tree(root: Path, cache: Path | None = None) -> Compiled:
    """Give every .py under root (symlinked folders not followed, as compileall) its hash-checked .pyc."""
    cache = cache or cache_root()
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    missing: list[tuple[str, str, str]] = []  # (source, its .pyc, the cache entry)
    reused = 0
    for source in _sources(root):
        entry = _entry(cache, source)
        target = importlib.util.cache_from_source(source)
        if os.path.isfile(entry):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(entry, target)
            reused += 1
        else:
            missing.append((source, target, entry))
    if missing:
        _compile_all(root, missing, cache)
    return Compiled(reused=reused, compiled=len(missing))


def _sources(root: Path) -> list[str]:
    found: list[str] = []
    for folder, _dirs, names in os.walk(root):  # os.walk does not descend into symlinked folders
        found.extend(os.path.join(folder, name) for name in names if name.endswith(".py"))
    return sorted(found)


def _entry(cache: Path, source: str) -> str:
    with open(source, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256").hexdigest()
    return str(cache / digest[:2] / f"{digest}.{sys.implementation.cache_tag}.pyc")


def _compile_all(root: Path, missing: list[tuple[str, str, str]], cache: Path) -> None:
    batches = [(str(root), missing[i : i + BATCH]) for i in range(0, len(missing), BATCH)]
    if len(batches) == 1:
        errors = [_compile_batch(batches[0])]
    else:
        with ProcessPoolExecutor(max_workers=min(os.cpu_count() or 1, len(batches))) as pool:
            errors = list(pool.map(_compile_batch, batches))
    found = next((error for error in errors if error), None)
    if found:
        raise CompileError(found)


def _compile_batch(batch: tuple[str, list[tuple[str, str, str]]]) -> str:
    """Compile a batch and cache each result; the first error's message, or "" (a worker's return value,
    since an exception raised in a worker pickles poorly)."""
    root, items = batch
    for source, target, entry in items:
        relative = _relative(source, root)
        try:
            # dfile: the name compiled in is the folder-independent one, so the cached file suits every
            # release (importing rewrites it to the real path anyway).
            py_compile.compile(
                source,
                cfile=target,
                dfile=relative,
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
            )
        except py_compile.PyCompileError as error:
            value = error.exc_value
            line = getattr(value, "lineno", None)
            return f"{relative}, line {line}: {error.exc_type_name}: {getattr(value, 'msg', value)}"
        _store(target, entry)
    return ""


def _relative(source: str, root: str) -> str:
    parts = Path(source).parts
    if "site-packages" in parts:
        return str(Path(*parts[parts.index("site-packages") + 1 :]))
    return os.path.relpath(source, root)


def _store(compiled: str, entry: str) -> None:
    """Into the cache atomically: builds side by side may store the same entry at once."""
    folder = os.path.dirname(entry)
    os.makedirs(folder, exist_ok=True)
    handle, scratch = tempfile.mkstemp(dir=folder, prefix=".partial-")
    os.close(handle)
    shutil.copyfile(compiled, scratch)
    os.replace(scratch, entry)
