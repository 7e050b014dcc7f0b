"""What the review pages' sign-ins keep in Redis: sessions signed out, and failed sign-ins per address.

The session cookie is signed and expires on its own (``web.auth.SessionCookies``), so it needs
no store while it is valid. Two things do: a session signed out before its expiry must be
refused from then on, even if its cookie was copied (a shared machine), and guessing keys on
the login form must be slowed down. Both live in the cluster's Redis under the namespace,
each key expiring when it no longer matters.

Redis unreachable: sign-out marks and failure counts cannot be read or written; the pages then
act as without them (a signed, unexpired cookie is accepted, a sign-in is not throttled) and
the error is logged, rather than lock every user out during an outage.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable

import redis

logger = logging.getLogger(__name__)


class SignIns:
    """Sessions signed out early, and the failed sign-ins of each client address.

    Args:
        client: the cluster's Redis.
        namespace: prefix of the keys.
        max_failures: failed sign-ins an address may make within ``window_s``; the next is
            refused until the window ends (10 per 5 minutes by default, as OWASP's
            authentication cheat sheet suggests for throttling rather than lockout).
        window_s: the window, in seconds, counted from an address's first failure.
        clock: the current Unix time, in seconds.
    """

    def __init__(self, client: redis.Redis, *, namespace: str, max_failures: int = 10, window_s: int = 300,
                 clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._namespace = namespace
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock

    def _signed_out_key(self, session_id: str) -> str:
        digest = hashlib.sha256(session_id.encode()).hexdigest()[:32]
        return f"{self._namespace}:ui:signed-out:{digest}"

    def _failures_key(self, address: str) -> str:
        return f"{self._namespace}:ui:failed-sign-ins:{address}"

    def sign_out(self, session_id: str, *, expires_at: float) -> None:
        """Refuse the session ``session_id`` (its CSRF token) from now until it would expire (Unix s)."""
        ttl_s = math.ceil(expires_at - self._clock())
        if ttl_s <= 0:
            return
        try:
            self._client.set(self._signed_out_key(session_id), 1, ex=ttl_s)
        except redis.RedisError:
            logger.exception("Could not record a sign-out; the cookie is cleared but stays valid until it expires.")

    def is_signed_out(self, session_id: str) -> bool:
        """True when the session was signed out before its expiry."""
        try:
            return bool(self._client.exists(self._signed_out_key(session_id)))
        except redis.RedisError:
            logger.exception("Could not check whether a session was signed out; accepting its signed cookie.")
            return False

    def wait_s(self, address: str) -> int:
        """Return how many seconds ``address`` must wait before it may try to sign in again (0: now)."""
        key = self._failures_key(address)
        try:
            with self._client.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.ttl(key)
                failures, ttl_s = pipe.execute()
        except redis.RedisError:
            logger.exception("Could not read failed sign-ins; not throttling %s.", address)
            return 0
        return max(1, int(ttl_s)) if int(failures or 0) >= self.max_failures and ttl_s > 0 else 0

    def failed(self, address: str) -> None:
        """Count a failed sign-in from ``address``; the window starts at its first failure."""
        key = self._failures_key(address)
        try:
            with self._client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, self.window_s, nx=True)
                pipe.execute()
        except redis.RedisError:
            logger.exception("Could not count a failed sign-in from %s.", address)

    def succeeded(self, address: str) -> None:
        """Forget ``address``'s failures: it signed in."""
        try:
            self._client.delete(self._failures_key(address))
        except redis.RedisError:
            logger.exception("Could not reset the failed sign-ins of %s.", address)
