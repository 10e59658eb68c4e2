"""One sync per node at a time, and coalescing of sync requests.

Requests are merged into a per-node "dirty" record (scope tokens, reasons and
whether to verify); whoever holds the node's lock drains that record until it is
empty, so a burst of triggers becomes one or two passes. A request that finds
the lock taken only leaves its mark. A "queued" mark says a task for the node
is already on its way, so triggers do not queue more.

``coordination()`` returns the store for the current settings: Redis when
``REDIS_URL`` is set (shared by every worker and web process), else a
process-local one (eager mode in one process).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings
from redis.exceptions import LockError
from redis.lock import Lock

from overlays.filegroups import Scope

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncRequest:
    scope: Scope
    reason: str
    verify: bool


_SCOPE_ALL = "*"
_VERIFY = "!verify"


def _encode(scope: Scope, reason: str, verify: bool) -> dict[str, str]:
    fields = {f"s:{token}": "1" for token in (scope or ())}
    if scope is None:
        fields[f"s:{_SCOPE_ALL}"] = "1"
    if verify:
        fields[_VERIFY] = "1"
    if reason:
        fields[f"r:{reason[:200]}"] = "1"
    return fields


def _decode(names: Iterable[str]) -> SyncRequest | None:
    names = list(names)
    if not names:
        return None
    tokens = {n[2:] for n in names if n.startswith("s:")}
    reasons = sorted(n[2:] for n in names if n.startswith("r:"))
    reason = "; ".join(reasons)
    if len(reason) > 255:
        reason = reason[:240] + f"... ({len(reasons)} triggers)"
    scope = None if _SCOPE_ALL in tokens else frozenset(tokens)
    return SyncRequest(scope=scope, reason=reason, verify=_VERIFY in names)


class _LocalLock:
    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock

    def acquire(self) -> bool:
        return self._lock.acquire(blocking=False)

    def extend(self) -> None:
        """Process-local locks do not expire."""

    def release(self) -> None:
        self._lock.release()


class LocalCoordination:
    """Locks and dirty records in this process: for eager mode without Redis."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._locks: dict[int, threading.Lock] = {}
        self._dirty: dict[int, dict[str, str]] = {}
        self._queued: set[int] = set()

    def lock(self, node_id: int) -> _LocalLock:
        with self._mutex:
            return _LocalLock(self._locks.setdefault(node_id, threading.Lock()))

    def mark(self, node_id: int, scope: Scope, reason: str, verify: bool) -> None:
        with self._mutex:
            self._dirty.setdefault(node_id, {}).update(_encode(scope, reason, verify))

    def pop(self, node_id: int) -> SyncRequest | None:
        with self._mutex:
            return _decode(self._dirty.pop(node_id, {}))

    def pending(self, node_id: int) -> bool:
        with self._mutex:
            return bool(self._dirty.get(node_id))

    def set_queued(self, node_id: int) -> bool:
        with self._mutex:
            if node_id in self._queued:
                return False
            self._queued.add(node_id)
            return True

    def clear_queued(self, node_id: int) -> None:
        with self._mutex:
            self._queued.discard(node_id)


class _RedisLock:
    def __init__(self, lock: Lock) -> None:
        self._lock = lock

    def acquire(self) -> bool:
        return bool(self._lock.acquire(blocking=False))

    def extend(self) -> None:
        """Restart the lock's timeout before each pass: a long drain keeps its lock."""
        self._lock.reacquire()

    def release(self) -> None:
        try:
            self._lock.release()
        except LockError:
            logger.warning("sync lock %s had expired before release (OVERLAY_SYNC_LOCK_TIMEOUT "
                           "too short?)", self._lock.name)


class RedisCoordination:
    """Locks and dirty records in Redis, shared by every worker and web process."""

    def __init__(self, url: str, prefix: str, lock_timeout: int) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self.prefix = prefix
        self.lock_timeout = lock_timeout

    def _key(self, kind: str, node_id: int) -> str:
        return f"{self.prefix}:{kind}:{node_id}"

    def lock(self, node_id: int) -> _RedisLock:
        return _RedisLock(self.client.lock(self._key("lock", node_id),
                                           timeout=self.lock_timeout, blocking=False))

    def mark(self, node_id: int, scope: Scope, reason: str, verify: bool) -> None:
        key = self._key("dirty", node_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(key, mapping=_encode(scope, reason, verify))
        pipe.expire(key, 7 * 24 * 3600)
        pipe.execute()

    def pop(self, node_id: int) -> SyncRequest | None:
        key = self._key("dirty", node_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hkeys(key)
        pipe.delete(key)
        names, _ = pipe.execute()
        return _decode(n.decode() if isinstance(n, bytes) else n for n in names)

    def pending(self, node_id: int) -> bool:
        return bool(self.client.exists(self._key("dirty", node_id)))

    def set_queued(self, node_id: int) -> bool:
        return bool(self.client.set(self._key("queued", node_id), "1", nx=True,
                                    ex=self.lock_timeout))

    def clear_queued(self, node_id: int) -> None:
        self.client.delete(self._key("queued", node_id))


@cache
def _coordination(redis_url: str, prefix: str, lock_timeout: int
                  ) -> LocalCoordination | RedisCoordination:
    if redis_url:
        return RedisCoordination(redis_url, prefix, lock_timeout)
    return LocalCoordination()


def coordination() -> LocalCoordination | RedisCoordination:
    """The lock and dirty-record store for the current settings."""
    return _coordination(
        getattr(settings, "REDIS_URL", ""),
        settings.OVERLAY_SYNC_KEY_PREFIX,
        settings.OVERLAY_SYNC_LOCK_TIMEOUT,
    )
