"""One sync per node at a time: a lock with its holder's name and a short lease.

A sync holds its node's lock while it runs. With Redis (``REDIS_URL``, shared by every
worker and web process) the lock is a key whose value names the holder (host, process,
thread) and which expires after ``OVERLAY_SYNC_LOCK_LEASE`` seconds unless the holder
renews it: ``kept()`` starts a thread that renews it every third of the lease while the
sync runs. A worker that dies (``kill -9``, a lost machine) stops renewing, so its lock
is free again within one lease, not minutes later. A holder whose key vanished (Redis
restarted empty) takes it again at the next renewal unless someone else already did.

Without Redis the locks are process-local (eager mode in one process) and do not expire.

What to sync is not kept here: it is in the database (``outbox``), written in the
transaction of the change that needs it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from functools import cache

import redis
from django.conf import settings
from redis.exceptions import LockError, LockNotOwnedError, RedisError

logger = logging.getLogger(__name__)


def holder_identity() -> str:
    """Who holds a lock: host, process and thread, plus a nonce that makes it unique."""
    thread = threading.current_thread().name
    return f"{socket.gethostname()}:{os.getpid()}:{thread}:{uuid.uuid4().hex[:8]}"


class LocalLock:
    """A node's lock within this process."""

    def __init__(self, lock: threading.Lock, holders: dict[int, str], node_id: int) -> None:
        self._lock = lock
        self._holders = holders
        self._node_id = node_id
        self.identity = holder_identity()

    def acquire(self, *, wait: float = 0.0) -> bool:
        """Take the lock; wait up to ``wait`` seconds for it when it is taken."""
        taken = self._lock.acquire(timeout=wait) if wait > 0 else self._lock.acquire(
            blocking=False)
        if taken:
            self._holders[self._node_id] = self.identity
        return taken

    @contextlib.contextmanager
    def kept(self) -> Iterator[None]:
        """Process-local locks do not expire: nothing to renew."""
        yield

    def release(self) -> None:
        self._holders.pop(self._node_id, None)
        self._lock.release()

    def holder(self) -> str | None:
        return self._holders.get(self._node_id)

    def remaining(self) -> float:
        return 0.0


class LocalCoordination:
    """Locks of this process: for eager mode without Redis."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._locks: dict[int, threading.Lock] = {}
        self._holders: dict[int, str] = {}

    def lock(self, node_id: int) -> LocalLock:
        with self._mutex:
            return LocalLock(self._locks.setdefault(node_id, threading.Lock()), self._holders,
                             node_id)


class LeaseLock:
    """A node's lock in Redis: the value names the holder; it expires unless renewed."""

    def __init__(self, client: redis.Redis, name: str, lease: float) -> None:
        self.client = client
        self.name = name
        self.lease = lease
        self.identity = holder_identity()
        # thread_local=False: the renewing thread uses the same token as the holder.
        self._lock = client.lock(name, timeout=lease, blocking=False, thread_local=False)
        self.lost = False

    def acquire(self, *, wait: float = 0.0) -> bool:
        """Take the lock; wait up to ``wait`` seconds for it (a dead holder's lease runs out)."""
        deadline = time.monotonic() + wait
        while True:
            if self._lock.acquire(blocking=False, token=self.identity):
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(0.2, left))

    def renew(self) -> bool:
        """Restart the lease; take the lock again if its key vanished.

        False: someone else holds it now.
        """
        try:
            self._lock.reacquire()
            return True
        except LockNotOwnedError:
            if self._lock.acquire(blocking=False, token=self.identity):
                logger.warning("sync lock %s had vanished (Redis restarted?); taken again",
                               self.name)
                return True
            logger.error("sync lock %s is now held by %s: two syncs of the node may overlap",
                         self.name, self.holder())
            return False

    @contextlib.contextmanager
    def kept(self) -> Iterator[None]:
        """Renew the lease every third of it while the block runs."""
        stop = threading.Event()

        def renew_until_stopped() -> None:
            while not stop.wait(self.lease / 3):
                try:
                    if not self.renew():
                        self.lost = True
                except RedisError as exc:  # Redis away: keep trying, the lease may outlive it
                    logger.warning("cannot renew sync lock %s: %s", self.name, exc)

        thread = threading.Thread(target=renew_until_stopped, daemon=True,
                                  name=f"lease {self.name}")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)

    def release(self) -> None:
        try:
            self._lock.release()
        except LockError:
            logger.warning("sync lock %s had expired or changed hands before release",
                           self.name)
        except RedisError as exc:
            logger.warning("cannot release sync lock %s (%s); it expires within %g s",
                           self.name, exc, self.lease)

    def holder(self) -> str | None:
        value = self.client.get(self.name)
        return value.decode() if isinstance(value, bytes) else value

    def remaining(self) -> float:
        """Seconds until the lock expires unless its holder renews it (0: free)."""
        ttl = self.client.pttl(self.name)
        return max(ttl, 0) / 1000.0


class RedisCoordination:
    """Locks in Redis, shared by every worker and web process."""

    def __init__(self, url: str, prefix: str, lease: float) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self.prefix = prefix
        self.lease = lease

    def lock(self, node_id: int) -> LeaseLock:
        return LeaseLock(self.client, f"{self.prefix}:lock:{node_id}", self.lease)


@cache
def _coordination(redis_url: str, prefix: str, lease: float
                  ) -> LocalCoordination | RedisCoordination:
    if redis_url:
        return RedisCoordination(redis_url, prefix, lease)
    return LocalCoordination()


def coordination() -> LocalCoordination | RedisCoordination:
    """The lock store for the current settings."""
    return _coordination(
        getattr(settings, "REDIS_URL", ""),
        settings.OVERLAY_SYNC_KEY_PREFIX,
        float(settings.OVERLAY_SYNC_LOCK_LEASE),
    )
