"""Which database errors are the client's data (4xx) and which are the database being away (503).

Classified by SQLSTATE class where the driver gives one (PostgreSQL), else by the DB-API class.
Only a lost connection, a timeout or a server that is shutting down or overloaded is a 503.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exc as sa

# SQLSTATE classes: 08 connection, 53 resources, 57 operator intervention (shutdown, statement
# timeout), 58 system error, 40 transaction rollback (serialisation, deadlock), 55P03 lock timeout.
_UNAVAILABLE = ("08", "53", "57", "58", "40", "55P03")
_CONFLICT = ("23",)  # integrity constraint
_BAD_DATA = ("22", "54")  # data exception, program limit exceeded (value too large or complex)


@dataclass(frozen=True)
class DatabaseFailure:
    status: int  # 409, 422, 500 or 503
    code: str
    message: str
    detail: str  # for the server log: driver class and SQLSTATE, never the statement or parameters


def sqlstate_of(error: BaseException) -> str | None:
    orig = getattr(error, "orig", None)
    for candidate in (orig, getattr(orig, "__cause__", None)):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str):
            return state
    return None


def _detail(error: BaseException, state: str | None) -> str:
    orig = getattr(error, "orig", None) or error
    return f"{type(error).__name__}/{type(orig).__name__} sqlstate={state or '-'}"


def _by_class(error: BaseException) -> int:
    if isinstance(error, sa.DBAPIError) and error.connection_invalidated:
        return 503
    if isinstance(error, sa.IntegrityError):
        return 409
    if isinstance(error, sa.DataError):
        return 422
    if isinstance(error, sa.OperationalError | sa.InterfaceError | sa.TimeoutError | OSError | TimeoutError):
        return 503
    return 500


def classify(error: BaseException) -> DatabaseFailure:
    state = sqlstate_of(error)
    if state is None or (isinstance(error, sa.DBAPIError) and error.connection_invalidated):
        status = _by_class(error)
    elif state.startswith(_UNAVAILABLE):
        status = 503
    elif state.startswith(_CONFLICT):
        status = 409
    elif state.startswith(_BAD_DATA):
        status = 422
    else:
        status = 500
    detail = _detail(error, state)
    if status == 503:
        return DatabaseFailure(503, "database_unavailable", "the database did not answer; see /health database", detail)
    if status == 409:
        return DatabaseFailure(409, "conflict", "the write conflicts with stored data", detail)
    if status == 422:
        return DatabaseFailure(422, "invalid_data", "the database refused a value of this request", detail)
    return DatabaseFailure(500, "internal_error", "The server failed; the request id is in logs/server.log", detail)
