"""The client address used for login throttling: forwarded headers count only from trusted proxies."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from starlette.requests import Request

from app.config import Settings
from app.routes.deps import client_address


def _request(peer: str, headers: dict[str, str]) -> Request:
    settings = Settings(trusted_proxies="127.0.0.1,10.0.0.0/8")
    app = SimpleNamespace(state=SimpleNamespace(services=SimpleNamespace(settings=settings)))
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "app": app, "client": (peer, 4242), "headers": raw})


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        ("203.0.113.9", {"X-Real-IP": "1.2.3.4"}, "203.0.113.9"),  # an untrusted peer's headers are ignored
        ("127.0.0.1", {"X-Real-IP": "198.51.100.7"}, "198.51.100.7"),  # nginx's word for its peer
        ("127.0.0.1", {"X-Forwarded-For": "1.2.3.4, 198.51.100.7, 10.1.1.1"}, "198.51.100.7"),  # right-most untrusted
        ("127.0.0.1", {"X-Real-IP": "not-an-ip", "X-Forwarded-For": "garbage"}, "127.0.0.1"),
        ("::1", {}, "::1"),
    ],
)
def test_client_address(peer: str, headers: dict[str, str], expected: str) -> None:
    assert client_address(_request(peer, headers)) == expected


def test_a_bad_trusted_proxies_setting_names_the_variable() -> None:
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        Settings(trusted_proxies="localhost")
