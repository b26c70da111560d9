"""Usernames unique ignoring case and Unicode form: users.username_key (NFKC + casefold), unique.

Refuses, changing nothing, when existing accounts already collide (`Admin` beside `admin`): it names them
and says what to do. The rule is copied from app/usernames.py on purpose: a migration keeps doing what it
did when it was written.

Revision ID: 0005
"""

import unicodedata
from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _key(username: str) -> str:
    return unicodedata.normalize("NFKC", username).casefold()


def _keys(bind: sa.Connection) -> dict[int, str]:
    """Each account's key, after refusing if two accounts share one (before any change is made)."""
    rows = bind.execute(sa.text("SELECT id, username FROM users ORDER BY id")).all()
    groups: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for user_id, username in rows:
        groups[_key(username)].append((user_id, username))
    collisions = [group for group in groups.values() if len(group) > 1]
    if collisions:
        named = "; ".join(" and ".join(f"{name!r} (id {user_id})" for user_id, name in g) for g in collisions)
        raise RuntimeError(
            f"migration 0005 makes usernames unique ignoring case and Unicode form, but these accounts "
            f"collide: {named}. Nothing was changed. Keep one account of each group: delete the others "
            "(DELETE /api/admin/users/<name> as an admin, on the release before this one) or rename them "
            "(UPDATE users SET username = '<new name>' WHERE id = <id>), then start again."
        )
    return {user_id: _key(username) for user_id, username in rows}


def upgrade() -> None:
    bind = op.get_bind()
    keys = _keys(bind)
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("username_key", sa.Text, nullable=True))
    for user_id, key in keys.items():
        bind.execute(sa.text("UPDATE users SET username_key = :key WHERE id = :id"), {"key": key, "id": user_id})
    with op.batch_alter_table("users") as batch:
        batch.alter_column("username_key", existing_type=sa.Text, nullable=False)
        batch.create_index("uq_users_username_key", ["username_key"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_index("uq_users_username_key")
        batch.drop_column("username_key")
