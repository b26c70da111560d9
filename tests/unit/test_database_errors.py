"""Which database failures are the client's data (4xx) and which the database being away (503)."""

from __future__ import annotations

import pytest
from sqlalchemy import exc as sa

from app.storage.errors import classify


class DriverError(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__("driver message with 'user data'")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error_class", "sqlstate", "status"),
    [
        (sa.OperationalError, "08006", 503),  # connection failure
        (sa.OperationalError, "57P01", 503),  # admin shutdown (a restart)
        (sa.OperationalError, "57014", 503),  # statement timeout
        (sa.OperationalError, "53300", 503),  # too many connections
        (sa.DBAPIError, "40001", 503),  # serialisation failure: retry
        (sa.IntegrityError, "23505", 409),  # unique violation
        (sa.DataError, "22P05", 422),  # untranslatable character (NUL)
        (sa.DBAPIError, "22003", 422),  # numeric value out of range
        (sa.DBAPIError, "54000", 422),  # program limit exceeded
        (sa.ProgrammingError, "42601", 500),  # a syntax error is the server's bug
        (sa.InterfaceError, None, 503),  # connection closed under the driver
        (sa.DataError, None, 422),
        (sa.IntegrityError, None, 409),
        (sa.ProgrammingError, None, 500),
    ],
)
def test_classify(error_class: type[sa.DBAPIError], sqlstate: str | None, status: int) -> None:
    error = error_class("SELECT :v", {"v": "user data"}, DriverError(sqlstate))
    failure = classify(error)
    assert failure.status == status
    assert "user data" not in failure.detail and "user data" not in failure.message
    if sqlstate:
        assert f"sqlstate={sqlstate}" in failure.detail


def test_a_lost_connection_is_503_whatever_the_sqlstate() -> None:
    error = sa.DBAPIError("SELECT 1", {}, DriverError("22000"), connection_invalidated=True)
    assert classify(error).status == 503


def test_a_pool_timeout_and_os_errors_are_503() -> None:
    assert classify(sa.TimeoutError("QueuePool limit reached")).status == 503
    assert classify(ConnectionRefusedError(111, "refused")).status == 503
    assert classify(TimeoutError()).status == 503
