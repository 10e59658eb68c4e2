"""Queueing syncs: ``request_sync`` and the Celery tasks that run them.

The only place that enqueues a sync. A request is recorded in the coordination
store first (so it is never lost, and merges with requests already waiting),
then a ``sync_node`` task is queued unless one is queued already; bursts of
requests coalesce into one task.

Tasks take node ids, are idempotent (a sync with nothing to do records a
"no-change" deployment and contacts nobody) and log what they decided, never
file contents. Their names are explicit and part of the message format between
web processes and workers: they stay when code moves.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.conf import settings

from overlays.distribution.coordination import coordination
from overlays.distribution.run import retry_delay, run_sync
from overlays.filegroups import Scope, scope_from, scope_tokens

logger = logging.getLogger(__name__)

SYNC_NODE = "overlays.sync_node"
SYNC_NODES = "overlays.sync_nodes"


def request_sync(node_id: int, *, scope: Scope = None, reason: str = "",
                 verify: bool = False, always_queue: bool = False) -> bool:
    """Record a sync request and queue a task unless one is queued; True when queued.

    ``always_queue``: queue a task even when one is queued already (an operator's
    explicit request); the extra task finds the work done or merges into it.
    """
    store = coordination()
    store.mark(node_id, scope, reason, verify)
    if not store.set_queued(node_id) and not always_queue:
        logger.info("sync of node %s already queued; request merged (%s)", node_id, reason)
        return False
    delay = settings.OVERLAY_SYNC_DELAY
    sync_node.apply_async(
        args=(node_id,),
        kwargs={"reason": reason, "scope": scope_tokens(scope), "verify": verify},
        countdown=delay or None,
    )
    return True


@shared_task(bind=True, acks_late=True, name=SYNC_NODE)
def sync_node(self: Task, node_id: int, reason: str = "", scope: list[str] | None = None,
              verify: bool = False) -> dict:
    """Bring one node in line with its desired files (or the ``scope`` groups of them).

    Transient SSH failures are retried with exponential backoff, at most
    ``OVERLAY_SYNC_MAX_RETRIES`` times (not when run eagerly); host-key and
    authentication failures are never retried (the node is marked failed with
    the reason).
    """
    max_retries = int(settings.OVERLAY_SYNC_MAX_RETRIES)
    # Run eagerly (no broker), a retry would hold up the caller: the first failure
    # is final, and the node is caught up by the next refresh or `overlay update`.
    final = bool(self.request.is_eager) or self.request.retries >= max_retries
    outcome = run_sync(
        node_id,
        scope=scope_from(scope),
        reason=reason,
        verify=verify,
        final_attempt=final,
    )
    if outcome.status == "retry":
        countdown = retry_delay(self.request.retries)
        logger.info("sync of node %s: transient failure, retry %d of %d in %.1f s", node_id,
                    self.request.retries + 1, max_retries, countdown)
        raise self.retry(countdown=countdown, max_retries=max_retries)
    return outcome.summary()


@shared_task(name=SYNC_NODES)
def sync_nodes(node_ids: list[int], reason: str = "", scope: list[str] | None = None,
               verify: bool = False) -> list[int]:
    """Queue a sync of each node (coalesced with syncs already queued or running)."""
    queued = []
    for node_id in node_ids:
        if request_sync(node_id, scope=scope_from(scope), reason=reason, verify=verify):
            queued.append(node_id)
    return queued
