"""Identity: users with argon2 passwords and roles, JWT access tokens with a jti, refresh, logout.

Authorisation follows the account as stored, not the token: every request checks the account's
current role, that it is enabled, its security stamp and that the session has not ended, through
the replica's local view (app/authview.py). Refresh re-reads the account from SQL.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import secrets
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError
from cachetools import LRUCache
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.authview import AuthView, UserState, load_user
from app.config import Settings
from app.errors import ApiError
from app.metrics import Metrics
from app.modules import Module
from app.sessions import SessionRecord, SessionsModule, SessionStore
from app.storage.module import StorageModule
from app.storage.schema import sessions, users
from app.throttle import LoginThrottle
from app.timeutil import utcnow
from app.usernames import username_key

log = logging.getLogger("codex.identity")
ROLES = ("viewer", "editor", "admin")
VERIFIED_TOKENS = 10_000  # tokens whose signature check is remembered
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
    """The authenticated caller of one request, with the account's role as stored now."""

    def __init__(self, claims: dict[str, Any], user: UserState) -> None:
        self.username: str = user.username
        self.user_id: int = user.id
        self.role: str = user.role
        self.sid: str = claims["sid"]
        self.jti: str = claims["jti"]
        self.expires_at = datetime.fromtimestamp(claims["exp"], tz=utcnow().tzinfo)


def _new_stamp() -> str:
    return secrets.token_hex(16)


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
        self._view: AuthView | None = None
        self._throttle: LoginThrottle | None = None
        self._verified: LRUCache[str, dict[str, Any]] = LRUCache(maxsize=VERIFIED_TOKENS)

    @property
    def engine(self) -> AsyncEngine:
        return self.storage.engine

    @property
    def store(self) -> SessionStore:
        return self.sessions.store

    @property
    def view(self) -> AuthView:
        if self._view is None:
            raise RuntimeError("identity is not started")
        return self._view

    @property
    def throttle(self) -> LoginThrottle:
        if self._throttle is None:
            raise RuntimeError("identity is not started")
        return self._throttle

    @property
    def token_lifetime(self) -> timedelta:
        return timedelta(hours=self.settings.jwt_expiration_hours)

    async def start(self) -> None:
        self._throttle = LoginThrottle(self.engine, self.settings.auth_lockout_minutes * 60)
        redis_url = self.settings.redis_connection_string if self.settings.sessions_use_redis else None
        self._view = AuthView(self.engine, self.store, redis_url, self.settings.auth_view_max_staleness_seconds)
        if self.settings.admin_password:
            await self._ensure_admin(self.settings.admin_username, self.settings.admin_password)
        if self.settings.gate_password:  # the gate's least-privilege account: an editor, never an admin
            await self._ensure_account(
                self.settings.gate_username, self.settings.gate_password, "editor", "GATE_PASSWORD"
            )
        await self._view.start()  # after anything that can fail: a failed start leaves no task behind
        self.every(self.settings.auth_view_max_staleness_seconds / 3, self._view.resync, "view-resync")
        self.every(600, self.throttle.cleanup, "throttle-cleanup")

    async def stop(self) -> None:
        if self._view is not None:
            await self._view.stop()

    def health(self) -> dict[str, Any]:
        return {"authView": self._view.health() if self._view else None}

    async def _ensure_admin(self, username: str, password: str) -> None:
        """ADMIN_PASSWORD recovers the bootstrap admin: created, or made an enabled, unthrottled admin
        with that password again."""
        await self._ensure_account(username, password, "admin", "ADMIN_PASSWORD")

    async def _ensure_account(self, username: str, password: str, role: str, source: str) -> None:
        """An account a deployment provisions (the bootstrap admin, the gate's editor): created, or made
        enabled and unthrottled with exactly that role and password again."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.username_key == username_key(username)))).first()
        if row is None:
            try:
                await self.register(username, password, role=role)
                log.info("%s %r created from %s", role, username, source)
            except ApiError:
                pass  # another replica created it first
            return
        values: dict[str, Any] = {"role": role, "disabled": False, "failed_logins": 0, "locked_until": None}
        if not await asyncio.to_thread(self._verify, row.password_hash, password):
            values["password_hash"] = await asyncio.to_thread(_hasher.hash, password)
        async with self.engine.begin() as conn:
            await conn.execute(update(users).where(users.c.id == row.id).values(**values))
            if row.role == "admin" and role != "admin":
                await _keep_an_admin(conn)
        await self.throttle.forget_account(username)
        # Only a demotion takes access away: anything else is not waited out (a start with Redis down).
        await self.view.user_changed(row.id, takes_access=not role_at_least(role, row.role))
        if row.role != role or row.disabled:
            log.warning("%r re-enabled as %s from %s", username, role, source)

    # -- users ---------------------------------------------------------------------------
    async def register(self, username: str, password: str, role: str = "viewer") -> dict[str, Any]:
        password_hash = await asyncio.to_thread(_hasher.hash, password)
        try:
            async with self.engine.begin() as conn:
                result = await conn.execute(
                    insert(users)
                    .values(
                        username=username,
                        username_key=username_key(username),
                        password_hash=password_hash,
                        role=role,
                        failed_logins=0,
                        created_at=utcnow(),
                        disabled=False,
                        security_stamp=_new_stamp(),
                    )
                    .returning(users.c.id)
                )
                user_id = result.scalar_one()
        except IntegrityError as exc:
            raise ApiError(
                409,
                "username_taken",
                f"username {username!r} is taken (names are compared ignoring case and Unicode form)",
                field="username",
            ) from exc
        await self.view.user_changed(user_id, takes_access=False)  # a cached "deleted" for a reused id must go
        return {"id": user_id, "username": username, "role": role}

    async def _change_account(self, username: str, values: dict[str, Any] | None) -> int:
        """Update (or delete, values=None) one account, refusing to leave no enabled admin.

        The enabled admins are locked first (PostgreSQL), so two admins demoting each other at once
        cannot both succeed; SQLite serialises writers anyway.
        """
        async with self.engine.begin() as conn:
            await conn.execute(select(users.c.id).where(*_enabled_admin()).with_for_update())
            user_id = await conn.scalar(select(users.c.id).where(users.c.username_key == username_key(username)))
            if user_id is None:
                raise ApiError(404, "user_not_found", f"user {username!r} not found", field="username")
            if values is None:
                await conn.execute(delete(users).where(users.c.id == user_id))
                await conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
            else:
                await conn.execute(update(users).where(users.c.id == user_id).values(**values))
            await _keep_an_admin(conn)
        await self.view.user_changed(user_id)
        return int(user_id)

    async def set_role(self, username: str, role: str) -> dict[str, Any]:
        await self._change_account(username, {"role": role})
        return {"username": username, "role": role}

    async def set_disabled(self, username: str, disabled: bool) -> dict[str, Any]:
        """Disabling also changes the security stamp: the account's tokens and sessions end for good."""
        values: dict[str, Any] = {"disabled": disabled}
        if disabled:
            values["security_stamp"] = _new_stamp()
        await self._change_account(username, values)
        return {"username": username, "disabled": disabled}

    async def delete_user(self, username: str) -> None:
        await self._change_account(username, None)
        await self.throttle.forget_account(username)

    async def unlock(self, username: str) -> None:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(users)
                .where(users.c.username_key == username_key(username))
                .values(failed_logins=0, locked_until=None)
            )
        if result.rowcount == 0:
            raise ApiError(404, "user_not_found", f"user {username!r} not found", field="username")
        await self.throttle.forget_account(username)

    async def list_users(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(users).order_by(users.c.id))
            return [
                {
                    "id": r.id,
                    "username": r.username,
                    "role": r.role,
                    "disabled": bool(r.disabled),
                    "failedLogins": r.failed_logins,
                }
                for r in rows
            ]

    # -- login, refresh, logout ----------------------------------------------------------
    async def login(self, username: str, password: str, client: str) -> dict[str, Any]:
        async with self.engine.connect() as conn:
            user = (await conn.execute(select(users).where(users.c.username_key == username_key(username)))).first()
        under_attack = user is not None and user.failed_logins >= self.settings.auth_account_ceiling
        free = 1 if under_attack else self.settings.auth_max_failed_logins
        async with self.throttle.checking(username, client, free) as wait:
            if wait is not None:
                self.metrics.auth_failures.labels("throttled").inc()
                raise ApiError(
                    429,
                    "login_throttled",
                    f"too many failed logins for this account from your address; try again in {wait} s",
                    headers={"Retry-After": str(wait)},
                )
            # The connection that counts a failure is taken before the password is checked: taken after,
            # a pool kept full by a flood would turn the count into a 503, and the attacker would learn
            # "wrong password" from a guess that was never counted.
            async with self.engine.connect() as conn:
                if user is None:
                    await asyncio.to_thread(self._verify, _dummy_hash(), password)
                    await self.throttle.failed(username, client, free, conn)
                    await conn.commit()
                    self.metrics.auth_failures.labels("unknown_user").inc()
                    raise _unauthorized("invalid_credentials", "username or password is wrong")
                if not await asyncio.to_thread(self._verify, user.password_hash, password):
                    await self._count_failure(user.id, conn)
                    await self.throttle.failed(username, client, free, conn)
                    await conn.commit()
                    self.metrics.auth_failures.labels("bad_password").inc()
                    raise _unauthorized("invalid_credentials", "username or password is wrong")
        await self.throttle.succeeded(username, client)
        if user.disabled:
            self.metrics.auth_failures.labels("disabled").inc()
            raise ApiError(403, "account_disabled", "this account is disabled; ask an admin")
        if user.failed_logins:
            async with self.engine.begin() as conn:
                await conn.execute(update(users).where(users.c.id == user.id).values(failed_logins=0))
        return await self._open_session(UserState(user.id, user.username, user.role, False, user.security_stamp))

    @staticmethod
    def _verify(password_hash: str, password: str) -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except VerificationError:
            return False

    async def _count_failure(self, user_id: int, conn: AsyncConnection) -> None:
        """Count a failure in one statement, so parallel failures cannot overwrite each other."""
        failures = await conn.scalar(
            update(users)
            .where(users.c.id == user_id)
            .values(failed_logins=users.c.failed_logins + 1)
            .returning(users.c.failed_logins)
        )
        if failures == self.settings.auth_account_ceiling:
            log.warning("account %s reached %d failed logins: new addresses get one free attempt", user_id, failures)

    async def _open_session(self, user: UserState) -> dict[str, Any]:
        sid = uuid.uuid4().hex
        refresh_secret = secrets.token_urlsafe(32)
        now = utcnow()
        record = SessionRecord(
            sid,
            user.id,
            user.username,
            user.role,
            _hash_refresh(refresh_secret),
            now,
            now + timedelta(hours=self.settings.refresh_expiration_hours),
            user.stamp,
        )
        await self.store.create(record)
        return self._token_pair(record, refresh_secret, user)

    def _token_pair(self, record: SessionRecord, refresh_secret: str, user: UserState) -> dict[str, Any]:
        now = utcnow()
        expires = min(now + self.token_lifetime, record.expires_at)  # no token outlives its session
        claims = {
            "iss": ISSUER,
            "sub": user.username,
            "uid": user.id,
            "role": user.role,
            "sid": record.sid,
            "stm": user.stamp,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": expires,
        }
        return {
            "accessToken": jwt.encode(claims, self._secret, algorithm="HS256"),
            "refreshToken": f"{record.sid}.{refresh_secret}",
            "tokenType": "Bearer",
            "expiresIn": int((expires - now).total_seconds()),
            "role": user.role,
        }

    async def refresh(self, refresh_token: str) -> dict[str, Any]:
        sid, _, secret = refresh_token.partition(".")
        record = await self.store.get(sid) if sid and secret else None
        if record is None:
            self.metrics.auth_failures.labels("bad_refresh").inc()
            raise _unauthorized("invalid_refresh_token", "refresh token is unknown, used or expired")
        new_secret = secrets.token_urlsafe(32)
        if not hmac.compare_digest(record.refresh_hash, _hash_refresh(secret)) or not await self.store.rotate_refresh(
            record, _hash_refresh(new_secret)
        ):
            # A refresh token of this session presented a second time: it was stolen, or the
            # thief already used it. End the session for both (OAuth 2.0 security BCP, 4.14).
            await self._end_session(sid)
            self.metrics.auth_failures.labels("refresh_reused").inc()
            raise _unauthorized("refresh_token_reused", "refresh token was used already; the session is ended")
        user = await load_user(self.engine, record.user_id)
        if user is None or user.disabled or user.stamp != record.stamp:
            await self._end_session(sid)
            self.metrics.auth_failures.labels("account_changed").inc()
            raise _unauthorized("session_ended", "the account was disabled or deleted; the session is ended")
        return self._token_pair(record, new_secret, user)

    async def _end_session(self, sid: str) -> None:
        until = utcnow() + self.token_lifetime  # every token of the session expires by then
        await self.store.end_session(sid, until)
        await self.view.session_ended_now(sid, until.timestamp())

    async def logout(self, principal: Principal) -> None:
        until = utcnow() + self.token_lifetime
        await self.store.revoke(principal.jti, principal.sid, until)
        await self.view.session_ended_now(principal.sid, until.timestamp())

    def _claims(self, token: str) -> dict[str, Any]:
        """Verified claims of a token. Verification is remembered per token string (a bounded LRU) and
        reused only while the token is unexpired; the account and session checks still run every time."""
        claims = self._verified.get(token)
        if claims is not None and claims["exp"] > time.time():
            return claims
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": ["exp", "jti", "sid", "sub", "uid"]},
            )
        except jwt.ExpiredSignatureError as exc:
            self._verified.pop(token, None)
            self.metrics.auth_failures.labels("expired").inc()
            raise _unauthorized("token_expired", "access token expired; use /api/auth/refresh") from exc
        except jwt.InvalidTokenError as exc:
            self.metrics.auth_failures.labels("invalid_token").inc()
            raise _unauthorized("invalid_token", f"access token rejected: {exc}") from exc
        self._verified[token] = claims
        return claims

    async def authenticate(self, token: str) -> Principal:
        """Valid signature, not expired, account present, enabled and unchanged, session not ended."""
        claims = self._claims(token)
        user = await self.view.user(int(claims["uid"]))
        if not _may_act(user, claims):
            self.metrics.auth_failures.labels("account_changed").inc()
            raise _unauthorized("account_unavailable", "the account was disabled or deleted; log in again")
        if await self.view.session_ended(claims["sid"], claims["jti"]):
            self.metrics.auth_failures.labels("session_ended").inc()
            raise _unauthorized("session_ended", "the session of this token has ended (logged out); log in")
        assert user is not None  # _may_act
        return Principal(claims, user)

    def known_principal(self, token: str) -> Principal | None:
        """authenticate() answered from memory alone: a token verified before and unexpired, whose
        account and session the trusted view holds and allows. None means: call authenticate(),
        which decides, counts and explains (so nothing here may refuse, count or raise)."""
        claims = self._verified.get(token)
        if claims is None or claims["exp"] <= time.time():
            return None
        user = self.view.known(int(claims["uid"]), claims["sid"])
        return Principal(claims, user) if user is not None and _may_act(user, claims) else None


def _may_act(user: UserState | None, claims: dict[str, Any]) -> bool:
    """The account exists, is enabled, and is the one the token was issued to (same security stamp)."""
    return user is not None and not user.disabled and user.stamp == claims.get("stm")


def _enabled_admin() -> tuple[Any, ...]:
    return (users.c.role == "admin", users.c.disabled.is_(False))


async def _keep_an_admin(conn: AsyncConnection) -> None:
    """Inside the changing transaction: raising here rolls the change back."""
    admins = await conn.scalar(select(func.count()).select_from(users).where(*_enabled_admin()))
    if not admins:
        raise ApiError(
            409,
            "last_admin",
            "this would leave no enabled admin; make another admin first",
            field="username",
        )
