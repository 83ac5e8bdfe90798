"""Sign-in for the reviewer web UI: an API key is exchanged for a server-side session.

The browser holds only a random token (an HttpOnly cookie); the database keeps its SHA-256,
the key it was opened with, a CSRF token and the expiry. A session ends when it expires
(``review_session_minutes`` after sign-in), when the reviewer signs out, or as soon as its key
is revoked or loses the scopes that allowed sign-in.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from amparo.clock import Clock, utc_now
from amparo.errors import NotFoundError, PermissionDeniedError
from amparo.keys import KeyService
from amparo.review.model import SignIn
from amparo.store.keys import KeyStore
from amparo.store.review import SignInRepository

if TYPE_CHECKING:
    from amparo.config import Settings
    from amparo.store import Store

SIGN_IN_SCOPES = ("reviewer", "curator", "admin")
"""Keys with one of these scopes may sign in (curators only see the entries page)."""
PAUSE = timedelta(minutes=15)
"""A gap this long between requests counts as a break (restarts the reminder clock)."""


@dataclass(frozen=True)
class WebSession:
    """A signed-in reviewer, as each request sees them."""

    key_id: int
    key_name: str
    scopes: frozenset[str]
    csrf: str
    expires_at: datetime
    reviewing_since: datetime
    """Start of the current stretch without a pause of ``PAUSE`` or more."""
    break_due: bool
    """The stretch is longer than ``review_break_minutes``: suggest a break."""

    @property
    def actor(self) -> str:
        """How the audit log names this reviewer (as for API calls with the key)."""
        return f"key:{self.key_name}"

    @property
    def may_review(self) -> bool:
        return bool(self.scopes & {"reviewer", "admin"})

    @property
    def may_curate(self) -> bool:
        return bool(self.scopes & {"curator", "admin"})


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ReviewSessions:
    """Sign-in, sign-out and the session of each request; ``clock`` is the wall time that
    expiry and break reminders go by."""

    def __init__(
        self, settings: Settings, store: Store, keys: KeyService, *, clock: Clock = utc_now
    ) -> None:
        self.settings = settings
        self.store = store
        self.keys = keys
        self.clock = clock
        self.sign_ins = SignInRepository(store.db)

    def sign_in(
        self, secret: str | None, *, scopes: tuple[str, ...] = SIGN_IN_SCOPES
    ) -> tuple[str, WebSession]:
        """Check an API key and open a session; returns ``(token for the cookie, session)``.
        ``scopes``: the key needs one of them (the curator console asks for curator or
        admin; any of them must be one of ``SIGN_IN_SCOPES``).

        Raises ``AuthenticationError`` for an unknown or revoked key and
        ``PermissionDeniedError`` for a key without a scope that may sign in."""
        key = self.keys.authenticate(secret)
        if not key.allows(*(s for s in scopes if s in SIGN_IN_SCOPES)):
            raise PermissionDeniedError(
                f"key {key.name!r} may not sign in here",
                hint="sign in with a key that has the "
                + " or ".join(s for s in scopes if s != "admin")
                + " (or admin) scope",
            )
        now = self.clock()
        token = secrets.token_urlsafe(32)
        stored = SignIn(
            token_hash=_digest(token),
            key_id=key.id,
            key_name=key.name,
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + timedelta(minutes=self.settings.review_session_minutes),
            last_active_at=now,
            streak_started_at=now,
        )
        with self.store.transaction(refresh=False) as tx:
            self.sign_ins.create(stored)
            tx.audit(key.actor, "review.sign_in", f"key:{key.name}")
        return token, self._view(stored, key.scopes, now)

    def resolve(self, token: str | None) -> WebSession | None:
        """The session a cookie names, if it is still valid; notes the activity."""
        if not token or len(token) > 200:
            return None
        stored = self.sign_ins.get(_digest(token))
        now = self.clock()
        if stored is None:
            return None
        if stored.expires_at <= now:
            self.sign_ins.delete(stored.token_hash)
            return None
        try:
            key = KeyStore(self.store).get(stored.key_name)
        except NotFoundError:
            key = None
        scopes = frozenset(key.scopes) if key is not None else frozenset()
        if (
            key is None
            or key.revoked
            or key.id != stored.key_id
            or not scopes & set(SIGN_IN_SCOPES)
        ):
            self.sign_ins.delete(stored.token_hash)
            return None
        streak = stored.streak_started_at
        if now - stored.last_active_at >= PAUSE:
            streak = now
        self.sign_ins.touch(stored.token_hash, active=now, streak_started=streak)
        return self._view(
            replace(stored, last_active_at=now, streak_started_at=streak), scopes, now
        )

    def sign_out(self, token: str | None) -> None:
        if not token:
            return
        stored = self.sign_ins.get(_digest(token))
        if stored is not None:
            with self.store.transaction(refresh=False) as tx:
                self.sign_ins.delete(stored.token_hash)
                tx.audit(f"key:{stored.key_name}", "review.sign_out", f"key:{stored.key_name}")

    def _view(self, stored: SignIn, scopes: frozenset[str], now: datetime) -> WebSession:
        limit = timedelta(minutes=self.settings.review_break_minutes)
        return WebSession(
            key_id=stored.key_id,
            key_name=stored.key_name,
            scopes=scopes,
            csrf=stored.csrf,
            expires_at=stored.expires_at,
            reviewing_since=stored.streak_started_at,
            break_due=now - stored.streak_started_at >= limit,
        )
