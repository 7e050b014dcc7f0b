"""A lease in Redis: at most one holder cluster-wide, kept by renewing before it expires.

The holder writes a random token under the key with a time-to-live and renews it while it
works; a holder that dies simply stops renewing, and the next candidate takes the key once
it expires. Every check-and-write is one Lua script, so two candidates never both win.
"""

from __future__ import annotations

import logging
import secrets

import redis

#: Renews the key if this token holds it, else takes it if it is free; returns 1 when held.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

#: Deletes the key only if this token holds it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def lease_holder(client: redis.Redis, key: str) -> str | None:
    """Return the token holding the lease under ``key`` now, or None when it is free (expired or released).

    Raises:
        redis.RedisError: Redis could not be reached.
    """
    value = client.get(key)
    return value.decode() if isinstance(value, bytes) else None


class Lease:
    """One candidate for a named lease.

    Args:
        client: the Redis every candidate shares.
        key: the lease's key.
        ttl_ms: how long the lease lasts unless renewed; renew well within it.
        owner: what the key holds while this candidate has it, such as ``host:pid``; a random
            suffix is added so two candidates never share a token.
    """

    def __init__(self, client: redis.Redis, key: str, *, ttl_ms: int, owner: str) -> None:
        self.logger = logging.getLogger(__name__)
        self._client = client
        self.key = key
        self.ttl_ms = ttl_ms
        self.token = f"{owner}:{secrets.token_hex(4)}"
        self.held = False

    def acquire(self) -> bool:
        """Take the lease if it is free, or renew it if held; return whether this candidate holds it.

        Raises:
            redis.RedisError: Redis could not be reached (the lease is then taken as lost).
        """
        was_held = self.held
        self.held = False
        self.held = bool(self._client.eval(_ACQUIRE, 1, self.key, self.token, self.ttl_ms))
        if self.held and not was_held:
            self.logger.info("Took the lease %r as %r.", self.key, self.token)
        elif was_held and not self.held:
            self.logger.warning("Lost the lease %r to %r.", self.key, self.holder())
        return self.held

    def release(self) -> None:
        """Give the lease up if this candidate holds it; a Redis error is logged (the lease then expires)."""
        try:
            self._client.eval(_RELEASE, 1, self.key, self.token)
        except redis.RedisError as ex:
            self.logger.warning("Could not release the lease %r: %s", self.key, ex)
        self.held = False

    def holder(self) -> str | None:
        """The token holding the lease now, or None.

        Raises:
            redis.RedisError: Redis could not be reached.
        """
        return lease_holder(self._client, self.key)
