"""Account state (disabled, security stamp), the session's stamp, and login throttling per client.

Revision ID: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("security_stamp", sa.String(32), nullable=False, server_default=""))
    random_hex = "md5(random()::text)" if op.get_bind().dialect.name == "postgresql" else "lower(hex(randomblob(16)))"
    op.execute(f"UPDATE users SET security_stamp = {random_hex}")
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("stamp", sa.String(32), nullable=False, server_default=""))
    op.create_table(
        "login_throttle",
        sa.Column("username", sa.String(64), primary_key=True),
        sa.Column("client", sa.String(64), primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index("ix_login_throttle_updated_at", "login_throttle", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_login_throttle_updated_at", "login_throttle")
    op.drop_table("login_throttle")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("stamp")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("security_stamp")
        batch.drop_column("disabled")
