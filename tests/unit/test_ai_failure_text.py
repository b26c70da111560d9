"""A failed AI job tells its owner what failed, never a database driver's message (which can carry
other rows' values)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError

from app.ai.pipeline import _failure_text


class _DriverError(Exception):
    sqlstate = "23505"


def test_a_database_failure_is_named_by_its_class_only() -> None:
    driver = _DriverError('duplicate key value violates unique constraint "nodes_pkey" DETAIL: Key (id)=(secret-42)')
    text = _failure_text(IntegrityError("INSERT INTO nodes ...", {"id": "secret-42"}, driver))
    assert text == "conflict: the write conflicts with stored data"
    assert "secret-42" not in text


def test_an_extractor_failure_keeps_its_message() -> None:
    assert _failure_text(ValueError("model answered 429")) == "ValueError: model answered 429"
