"""Celery tasks that push files to nodes; the work is in ``overlays.sync``.

Tasks take node ids, are idempotent (a sync with nothing to do records a
"no-change" deployment and contacts nobody) and log what they decided, never
file contents.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from overlays import sync

logger = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True)
def sync_node(self, node_id: int, reason: str = "", scope: list[str] | None = None,  # noqa: ANN001
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
    outcome = sync.run_sync(
        node_id,
        scope=sync.scope_from(scope),
        reason=reason,
        verify=verify,
        final_attempt=final,
    )
    if outcome.status == "retry":
        countdown = sync.retry_delay(self.request.retries)
        logger.info("sync of node %s: transient failure, retry %d of %d in %.1f s", node_id,
                    self.request.retries + 1, max_retries, countdown)
        raise self.retry(countdown=countdown, max_retries=max_retries)
    return outcome.summary()


@shared_task
def sync_nodes(node_ids: list[int], reason: str = "", scope: list[str] | None = None,
               verify: bool = False) -> list[int]:
    """Queue a sync of each node (coalesced with syncs already queued or running)."""
    from overlays.changes import request_sync

    queued = []
    for node_id in node_ids:
        if request_sync(node_id, scope=sync.scope_from(scope), reason=reason, verify=verify):
            queued.append(node_id)
    return queued
