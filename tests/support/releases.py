"""Releases for tests: built into a temporary release store, from this checkout or from a copy of it
with an extra migration (a release that moves the schema forward)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from codexops.releases.build import build_release
from codexops.releases.model import Release
from infra.spec import ROOT

EXTRA_MIGRATION = '''"""A test-only table: a release whose schema head is ahead of this checkout's.

Revision ID: {revision}
"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("release_probe_{revision}", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("release_probe_{revision}")
'''


def copy_checkout(destination: Path) -> Path:
    """The files git tracks (plus uncommitted edits of them), without .venv, .local or reports."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / name.decode()
        if source.is_file():
            target = destination / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def copy_with_migration(destination: Path, revision: str = "9001") -> Path:
    """A copy of this checkout whose schema head is one migration ahead (revision `revision`)."""
    from app.storage.migrate import head_revision

    tree = copy_checkout(destination)
    versions = tree / "app" / "storage" / "migrations" / "versions"
    (versions / f"{revision}_release_probe.py").write_text(
        EXTRA_MIGRATION.format(revision=revision, down=head_revision())
    )
    return tree


def build(source: Path | None = None, **env: str) -> Release:
    """Build into CODEX_RELEASES_DIR (the caller points it at a temporary folder)."""
    return build_release(lambda _: None, source=source, extra_env=env or None)
