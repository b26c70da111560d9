"""Table definitions used by the queries; the migrations in migrations/ create them."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

nodes = Table(
    "nodes",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("type_id", String(200), nullable=False),
    Column("title", String(500), nullable=False),
    Column("content", Text, nullable=False, default=""),
    Column("meta", JSON, nullable=False, default=dict),
    Column("state", String(16), nullable=False, default="ice"),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_nodes_type_created_id", "type_id", "created_at", "id"),  # a type's pages in order (0006)
)

edges = Table(
    "edges",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("from_id", String(200), ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
    Column("to_id", String(200), ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
    Column("role", String(100), nullable=False),
    Column("weight", Float, nullable=False, default=1.0),
    Column("meta", JSON, nullable=False, default=dict),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("from_id", "to_id", "role", name="uq_edges_from_to_role"),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    # app.usernames.username_key(username), unique (0005): `Admin` cannot register beside `admin`.
    Column("username_key", Text, nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", DateTime(timezone=True), nullable=True),  # unused since 0004 (throttling)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    # Changed when the account is disabled: tokens and sessions carrying the old stamp stop working.
    Column("security_stamp", String(32), nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("sid", String(64), primary_key=True),
    Column("user_id", Integer, nullable=False),
    Column("username", String(64), nullable=False),
    Column("role", String(16), nullable=False),
    Column("refresh_hash", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    Column("pending_sync", Boolean, nullable=False, default=False),
    Column("stamp", String(32), nullable=False, default=""),
)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("sid", String(64), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
    Column("pending_sync", Boolean, nullable=False, default=False),
)

# Failed logins per (username, client address): attempts since the last success and when the next
# attempt is allowed (epoch seconds, so the delay arithmetic is portable SQL).
login_throttle = Table(
    "login_throttle",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("client", String(64), primary_key=True),
    Column("attempts", Integer, nullable=False),
    Column("next_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False, index=True),
)

ai_jobs = Table(
    "ai_jobs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("node_id", String(200), nullable=True),
    Column("text", Text, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("owner", String(200), nullable=True),
    Column("result", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
)
