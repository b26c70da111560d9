"""The service's statements, as SQLAlchemy renders them for asyncpg: the anchor runs exactly these.

tests/integration/test_bench_anchor_sql.py captures what app/storage/graph.py and app/authview.py
issue against PostgreSQL and checks it equals these, so a change to the service's SQL fails the test
instead of leaving the anchor measuring something else.
"""

from __future__ import annotations

_NODE_COLUMNS = (
    "nodes.id, nodes.type_id, nodes.title, nodes.content, nodes.meta, nodes.state, nodes.version, "
    "nodes.created_at, nodes.updated_at"
)

NODE_BY_ID = f"SELECT {_NODE_COLUMNS} \nFROM nodes \nWHERE nodes.id = $1::VARCHAR"
COUNT_BY_TYPE = "SELECT count(*) AS count_1 \nFROM nodes \nWHERE nodes.type_id = $1::VARCHAR"
LIST_BY_TYPE = (
    f"SELECT {_NODE_COLUMNS} \nFROM nodes \nWHERE nodes.type_id = $1::VARCHAR "
    "ORDER BY nodes.created_at, nodes.id \n LIMIT $2::INTEGER OFFSET $3::INTEGER"
)
INSERT_NODE = (
    "INSERT INTO nodes (id, type_id, title, content, meta, state, version, created_at, updated_at) "
    "VALUES ($1::VARCHAR, $2::VARCHAR, $3::VARCHAR, $4::VARCHAR, $5::JSON, $6::VARCHAR, $7::INTEGER, "
    "$8::TIMESTAMP WITH TIME ZONE, $9::TIMESTAMP WITH TIME ZONE)"
)
USER_BY_ID = (
    "SELECT users.id, users.username, users.username_key, users.password_hash, users.role, "
    "users.failed_logins, users.locked_until, users.created_at, users.disabled, users.security_stamp \n"
    "FROM users \nWHERE users.id = $1::INTEGER"
)

# Each service path and the statements it issues, in order (the create runs in one transaction).
PATHS: dict[str, tuple[str, ...]] = {
    "read": (NODE_BY_ID,),
    "list": (COUNT_BY_TYPE, LIST_BY_TYPE),
    "create": (INSERT_NODE, NODE_BY_ID),
    "auth": (USER_BY_ID,),
}
