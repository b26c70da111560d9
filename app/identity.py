"""Identity: users with argon2 passwords and roles, JWT access tokens with a jti, refresh, logout."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings
from app.errors import ApiError
from app.metrics import Metrics
from app.modules import Module
from app.sessions import SessionRecord, SessionsModule, SessionStore
from app.storage.module import StorageModule
from app.storage.schema import users
from app.timeutil import as_utc, utcnow

log = logging.getLogger("codex.identity")
ROLES = ("viewer", "editor", "admin")
ISSUER = "living-codex"
# Argon2id at OWASP's recommended minimum (19 MiB, 2 passes, 1 lane): a login costs tens of ms, not
# hundreds, so sign-in bursts do not starve the event loop's thread pool on small nodes.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown users, so their logins take as long as real ones."""
    return _hasher.hash("not-a-real-password")


def role_at_least(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def _hash_refresh(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _unauthorized(code: str, message: str) -> ApiError:
    return ApiError(401, code, message, headers={"WWW-Authenticate": "Bearer"})


class Principal:
    """The authenticated caller of one request."""

    def __init__(self, claims: dict[str, Any]) -> None:
        self.username: str = claims["sub"]
        self.user_id: int = claims["uid"]
        self.role: str = claims["role"]
        self.sid: str = claims["sid"]
        self.jti: str = claims["jti"]
        self.expires_at = datetime.fromtimestamp(claims["exp"], tz=utcnow().tzinfo)


class IdentityModule(Module):
    name = "identity"
    requires = ("storage", "sessions")

    def __init__(self, settings: Settings, storage: StorageModule, sessions: SessionsModule, metrics: Metrics) -> None:
        super().__init__()
        self.settings, self.storage, self.sessions, self.metrics = settings, storage, sessions, metrics
        secret = settings.jwt_secret
        if not secret:
            secret = secrets.token_urlsafe(48)
            log.warning(
                "JWT_SECRET is not set: using a random secret for this process only "
                "(development); tokens will not be accepted by other replicas"
            )
        self._secret = secret

    @property
    def engine(self) -> AsyncEngine:
        return self.storage.engine

    @property
    def store(self) -> SessionStore:
        return self.sessions.store

    async def start(self) -> None:
        if self.settings.admin_password:
            await self._ensure_admin(self.settings.admin_username, self.settings.admin_password)

    async def _ensure_admin(self, username: str, password: str) -> None:
        async with self.engine.connect() as conn:
            exists = await conn.scalar(select(users.c.id).where(users.c.username == username))
        if exists is None:
            try:
                await self.register(username, password, role="admin")
                log.info("bootstrap admin %r created from ADMIN_PASSWORD", username)
            except ApiError:
                pass  # another replica created it first

    # -- users ---------------------------------------------------------------------------
    async def register(self, username: str, password: str, role: str = "viewer") -> dict[str, Any]:
        password_hash = await asyncio.to_thread(_hasher.hash, password)
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    insert(users)
                    .values(
                        username=username,
                        password_hash=password_hash,
                        role=role,
                        failed_logins=0,
                        created_at=utcnow(),
                    )
                    .returning(users.c.id)
                )
                user_id = result.scalar_one()
        except IntegrityError as exc:
            raise ApiError(409, "username_taken", f"username {username!r} is taken", field="username") from exc
        return {"id": user_id, "username": username, "role": role}

    async def set_role(self, username: str, role: str) -> dict[str, Any]:
        async with self.engine.begin() as conn:
            result = await conn.execute(update(users).where(users.c.username == username).values(role=role))
        if result.rowcount == 0:
            raise ApiError(404, "user_not_found", f"user {username!r} not found", field="username")
        return {"username": username, "role": role}

    async def unlock(self, username: str) -> None:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(users).where(users.c.username == username).values(failed_logins=0, locked_until=None)
            )
        if result.rowcount == 0:
            raise ApiError(404, "user_not_found", f"user {username!r} not found", field="username")

    async def list_users(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(users).order_by(users.c.id))
            return [
                {
                    "id": r.id,
                    "username": r.username,
                    "role": r.role,
                    "locked": bool(r.locked_until and as_utc(r.locked_until) > utcnow()),
                }
                for r in rows
            ]

    # -- login, refresh, logout ----------------------------------------------------------
    async def login(self, username: str, password: str) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            user = (await conn.execute(select(users).where(users.c.username == username))).first()
        if user is None:
            await asyncio.to_thread(self._verify, _dummy_hash(), password)
            self.metrics.auth_failures.labels("unknown_user").inc()
            raise _unauthorized("invalid_credentials", "username or password is wrong")
        if user.locked_until and as_utc(user.locked_until) > utcnow():
            self.metrics.auth_failures.labels("locked").inc()
            wait = int((as_utc(user.locked_until) - utcnow()).total_seconds()) + 1
            raise ApiError(
                423,
                "account_locked",
                f"too many failed logins; try again in {wait} s or ask an admin to unlock",
                headers={"Retry-After": str(wait)},
            )
        if not await asyncio.to_thread(self._verify, user.password_hash, password):
            await self._record_failure(user.id, user.failed_logins + 1)
            self.metrics.auth_failures.labels("bad_password").inc()
            raise _unauthorized("invalid_credentials", "username or password is wrong")
        if user.failed_logins or user.locked_until:
            async with self.engine.begin() as conn:
                await conn.execute(
                    update(users).where(users.c.id == user.id).values(failed_logins=0, locked_until=None)
                )
        return await self._open_session(user.id, user.username, user.role)

    @staticmethod
    def _verify(password_hash: str, password: str) -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except VerificationError:
            return False

    async def _record_failure(self, user_id: int, failures: int) -> None:
        values: dict[str, Any] = {"failed_logins": failures}
        if failures >= self.settings.auth_max_failed_logins:
            values["locked_until"] = utcnow() + timedelta(minutes=self.settings.auth_lockout_minutes)
            log.warning("account %s locked after %d failed logins", user_id, failures)
        async with self.engine.begin() as conn:
            await conn.execute(update(users).where(users.c.id == user_id).values(**values))

    async def _open_session(self, user_id: int, username: str, role: str) -> dict[str, Any]:
        sid = uuid.uuid4().hex
        refresh_secret = secrets.token_urlsafe(32)
        now = utcnow()
        record = SessionRecord(
            sid,
            user_id,
            username,
            role,
            _hash_refresh(refresh_secret),
            now,
            now + timedelta(hours=self.settings.refresh_expiration_hours),
        )
        await self.store.create(record)
        return self._token_pair(record, refresh_secret)

    def _token_pair(self, record: SessionRecord, refresh_secret: str) -> dict[str, Any]:
        now = utcnow()
        lifetime = timedelta(hours=self.settings.jwt_expiration_hours)
        claims = {
            "iss": ISSUER,
            "sub": record.username,
            "uid": record.user_id,
            "role": record.role,
            "sid": record.sid,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + lifetime,
        }
        return {
            "accessToken": jwt.encode(claims, self._secret, algorithm="HS256"),
            "refreshToken": f"{record.sid}.{refresh_secret}",
            "tokenType": "Bearer",
            "expiresIn": int(lifetime.total_seconds()),
            "role": record.role,
        }

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        sid, _, secret = refresh_token.partition(".")
        record = await self.store.get(sid) if sid and secret else None
        if record is None or not hmac.compare_digest(record.refresh_hash, _hash_refresh(secret)):
            self.metrics.auth_failures.labels("bad_refresh").inc()
            raise _unauthorized("invalid_refresh_token", "refresh token is unknown, used or expired")
        new_secret = secrets.token_urlsafe(32)
        if not await self.store.rotate_refresh(record, _hash_refresh(new_secret)):
            raise _unauthorized("invalid_refresh_token", "refresh token was used already")
        return self._token_pair(record, new_secret)

    async def logout(self, principal: Principal) -> None:
        await self.store.revoke(principal.jti, principal.sid, principal.expires_at)

    async def authenticate(self, token: str) -> Principal:
        """Valid signature, not expired, not revoked on any replica, session still open."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": ["exp", "jti", "sid", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            self.metrics.auth_failures.labels("expired").inc()
            raise _unauthorized("token_expired", "access token expired; use /api/auth/refresh") from exc
        except jwt.InvalidTokenError as exc:
            self.metrics.auth_failures.labels("invalid_token").inc()
            raise _unauthorized("invalid_token", f"access token rejected: {exc}") from exc
        if await self.store.is_revoked(claims["jti"]):
            self.metrics.auth_failures.labels("revoked").inc()
            raise _unauthorized("token_revoked", "access token was revoked (logged out)")
        if await self.store.get(claims["sid"]) is None:
            self.metrics.auth_failures.labels("session_ended").inc()
            raise _unauthorized("session_ended", "the session of this token has ended; log in")
        return Principal(claims)
