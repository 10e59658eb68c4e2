"""Queueing syncs: the requests in the outbox, and the Celery tasks that carry them out.

The only place that enqueues a sync. A request is first written to the database
(``outbox.record``, in the caller's transaction when there is one); after commit a
``sync_node`` task is queued for it unless one is queued already (``dispatch``). The
task names only the node: it carries out whatever the node's request holds by then, so
bursts of changes coalesce into few syncs. Nodes dispatched together travel in tasks of
up to ``OVERLAY_SYNC_BATCH_SIZE`` nodes (the first node, and the others as ``batch``),
which render them from one snapshot (``batch.SharedSnapshot``); without a broker they
form one batch. If the broker is down the request stays in
the database, the caller's change stands, and the reconcile queues it later.

Tasks take node ids, are idempotent (a sync with nothing to do records a "no-change"
deployment and contacts nobody), are acknowledged only after they ran and given back to
the queue when the worker process running them dies (``acks_late``,
``reject_on_worker_lost``), and log what they decided, never file contents. Their names
are explicit and part of the message format between web processes and workers: they stay
when code moves.

``reconcile`` (every ``OVERLAY_RECONCILE_INTERVAL`` seconds under ``celery beat``, and when
a worker starts) queues what no task is coming for: see ``reconcile.find``.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterable, Mapping
from datetime import timedelta

from celery import Task, shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from overlays.distribution import outbox
from overlays.distribution import reconcile as reconciling
from overlays.distribution.batch import SharedSnapshot
from overlays.distribution.outbox import Request
from overlays.distribution.run import retry_delay, run_sync
from overlays.filegroups import Scope, scope_from

logger = logging.getLogger(__name__)

SYNC_NODE = "overlays.sync_node"
SYNC_NODES = "overlays.sync_nodes"
RECONCILE = "overlays.reconcile"

# What a broker (or the Redis result backend) that cannot be reached raises on publish.
BROKER_ERRORS = (KombuError, RedisError, OSError)


def request_sync(node_id: int, *, scope: Scope = None, reason: str = "",
                 verify: bool = False, always_queue: bool = False) -> bool:
    """An operator's request to sync a node: record it, and queue a task after commit.

    True when a task was queued (or is, once the current transaction commits) and not
    already queued. ``always_queue``: queue a task even when one is queued already (an
    explicit request); the extra task finds the work done or merges into it. Without a
    broker the sync runs here at once: it reads the request on this connection, committed
    or not.
    """
    outbox.record({node_id: Request(scope=scope, reason=reason, verify=verify)}, change=False)
    if sync_node.app.conf.task_always_eager:
        return dispatch([node_id], force=always_queue) != []
    return after_commit([node_id], force=always_queue) != []


def request_syncs(node_ids: Iterable[int], *, scope: Scope = None, reason: str = "",
                  verify: bool = False, always_queue: bool = False) -> list[int] | None:
    """``request_sync`` for several nodes at once, dispatched together so that they share
    a snapshot (``batches``). The nodes queued, or None when queued at the commit."""
    ids = sorted(set(node_ids))
    if not ids:
        return []
    outbox.record({node_id: Request(scope=scope, reason=reason, verify=verify)
                   for node_id in ids}, change=False)
    if sync_node.app.conf.task_always_eager:
        return dispatch(ids, force=always_queue)
    return after_commit(ids, force=always_queue)


def request_changes(requests: Mapping[int, Request]) -> None:
    """Syncs that a change needs: written with the change, in its transaction, and
    queued once it commits (``outbox.record``)."""
    outbox.record(requests, change=True)
    after_commit(sorted(requests))


def after_commit(node_ids: list[int], *, force: bool = False) -> list[int] | None:
    """Queue the nodes' tasks once the current transaction commits (now, outside one).

    Returns the nodes queued when that happened now, None when deferred to the commit.
    """
    done: list[list[int]] = []

    def dispatch_committed() -> None:
        done.append(dispatch(node_ids, force=force))

    # robust: whatever goes wrong after the commit is logged and never fails the caller,
    # whose change is committed with its requests.
    transaction.on_commit(dispatch_committed, robust=True)
    return done[0] if done else None


def dispatch(node_ids: Iterable[int], *, force: bool = False) -> list[int]:
    """Queue a ``sync_node`` task for each node whose request has none queued; never raises
    for a broker that is down (the requests stay in the outbox for the reconcile).

    ``force``: also for requests whose task is queued already. Returns the nodes queued.
    """
    ids = sorted(set(node_ids))
    if not ids:
        return []
    queued_ttl = timedelta(seconds=float(settings.OVERLAY_SYNC_QUEUED_TTL))
    if force:
        due = outbox.requested(ids)
    else:
        due = outbox.undispatched(ids, queued_before=timezone.now() - queued_ttl)
    if not due:
        logger.info("sync of node(s) %s already queued; requests merged",
                    ", ".join(map(str, ids)))
        return []
    eager = sync_node.app.conf.task_always_eager
    if not eager:  # without a broker the tasks run here and now: none to wait for
        outbox.mark_dispatched(due)  # first: the task clears its mark when it starts
    delay = settings.OVERLAY_SYNC_DELAY
    queued: list[int] = []
    try:
        for head, *rest in batches(due):
            sync_node.apply_async(args=(head,), kwargs={"batch": rest} if rest else {},
                                  countdown=delay or None)
            queued.extend([head, *rest])
    except BROKER_ERRORS as exc:
        left = [i for i in due if i not in queued]
        outbox.clear_dispatched(left)
        logger.warning("cannot queue the sync of %d node(s) (%s: %s); their requests stay "
                       "pending and the reconcile queues them when the broker is back",
                       len(left), type(exc).__name__, exc)
    return queued


def batches(node_ids: list[int]) -> list[list[int]]:
    """The tasks these nodes travel in: all in one without a broker (they run here, one
    after the other), else groups of ``OVERLAY_SYNC_BATCH_SIZE`` for the workers to share."""
    if sync_node.app.conf.task_always_eager:
        return [node_ids] if node_ids else []
    size = max(1, int(settings.OVERLAY_SYNC_BATCH_SIZE))
    return [node_ids[i:i + size] for i in range(0, len(node_ids), size)]


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, name=SYNC_NODE)
def sync_node(self: Task, node_id: int, reason: str = "", scope: list[str] | None = None,
              verify: bool = False, batch: list[int] | None = None) -> dict:
    """Carry out the node's pending request (plus this one when ``reason`` is given), then
    those of the ``batch`` nodes, all rendered from one snapshot.

    Transient SSH failures are retried with exponential backoff, at most
    ``OVERLAY_SYNC_MAX_RETRIES`` times (not when run eagerly), in a task of that node
    alone; host-key and authentication failures are never retried (the node is marked
    failed with the reason). When another sync of the node holds its lock, the request is
    left to that sync and a task is queued again for when the holder's lease would run
    out, in case the holder died.
    """
    if not batch:
        return _sync_one(self, node_id, reason=reason, scope=scope, verify=verify)
    shared = SharedSnapshot()
    results = {node_id: _sync_one(self, node_id, reason=reason, scope=scope, verify=verify,
                                  shared=shared)}
    for other in batch:
        results[other] = _sync_one(self, other, shared=shared)
    return {"status": "batch", "nodes": results}


def _sync_one(task: Task, node_id: int, *, reason: str = "", scope: list[str] | None = None,
              verify: bool = False, shared: SharedSnapshot | None = None) -> dict:
    """One node of a ``sync_node`` task; with ``shared``, one of a batch (a retry is then
    queued for the node alone instead of retrying the whole task)."""
    max_retries = int(settings.OVERLAY_SYNC_MAX_RETRIES)
    eager = bool(task.request.is_eager)
    if not eager:  # an eager task was never marked as queued (``dispatch``)
        outbox.started(node_id)
    # Run eagerly (no broker), a retry would hold up the caller: the first failure
    # is final, and the node is caught up by the next refresh or `overlay update`.
    final = eager or task.request.retries >= max_retries
    try:
        outcome = run_sync(node_id, scope=scope_from(scope), reason=reason, verify=verify,
                           final_attempt=final, record=bool(reason or verify or scope),
                           shared=shared)
    except RedisError as exc:  # the locks are in Redis, and it is away
        logger.warning("sync of node %s: cannot take its lock (%s); the request stays "
                       "pending and the reconcile queues it again", node_id, exc)
        return {"status": "no lock", "results": [], "deployments": []}
    if outcome.status == "retry":
        countdown = retry_delay(task.request.retries)
        logger.info("sync of node %s: transient failure, retry %d of %d in %.1f s", node_id,
                    task.request.retries + 1, max_retries, countdown)
        outbox.mark_dispatched([node_id])
        retry = task.retry(args=(node_id,), kwargs={}, countdown=countdown,
                           max_retries=max_retries, throw=shared is None)
        if shared is None:
            raise retry
        return outcome.summary()
    if outcome.status == "coalesced" and not eager and outbox.pending(node_id):
        countdown = min(outcome.lock_remaining, float(settings.OVERLAY_SYNC_LOCK_LEASE)) + 0.5
        logger.info("sync of node %s: left to %s; checking again in %.1f s in case it died",
                    node_id, outcome.holder, countdown)
        outbox.mark_dispatched([node_id])
        try:
            sync_node.apply_async(args=(node_id,), countdown=countdown)
        except BROKER_ERRORS as exc:
            outbox.clear_dispatched([node_id])
            logger.warning("cannot queue the follow-up of node %s (%s); the reconcile will",
                           node_id, exc)
    return outcome.summary()


@shared_task(acks_late=True, reject_on_worker_lost=True, name=SYNC_NODES)
def sync_nodes(node_ids: list[int], reason: str = "", scope: list[str] | None = None,
               verify: bool = False) -> list[int]:
    """Request a sync of each node (coalesced with syncs already queued or running)."""
    return request_syncs(node_ids, scope=scope_from(scope), reason=reason,
                         verify=verify) or []


@shared_task(acks_late=True, reject_on_worker_lost=True, name=RECONCILE)
def reconcile(startup: bool = False) -> dict:
    """Queue every online node owed a sync that no task is coming for (``reconcile.find``).

    ``startup``: run when a worker starts; requests queued before count as lost too (the
    queue may have died with its worker or with Redis).
    """
    interval = float(settings.OVERLAY_RECONCILE_INTERVAL or 60.0)
    queued_before = None if startup else timezone.now() - timedelta(seconds=interval)
    findings = reconciling.find(queued_before=queued_before,
                                compare_files=bool(settings.OVERLAY_AUTO_SYNC))
    for node_id in findings.behind:
        logger.warning("reconcile: node %s is behind its desired generation with nothing "
                       "pending (a sync was cut off); requesting a full sync", node_id)
    for node_id in findings.differing:
        logger.warning("reconcile: node %s's desired files differ from those deployed; "
                       "requesting a full sync", node_id)
    for node_id, error in findings.unrenderable.items():
        logger.error("reconcile: node %s cannot be rendered: %s", node_id, error)
    if findings.to_request:
        outbox.record({node_id: Request(reason=f"reconcile ({socket.gethostname()}): "
                                               "not in sync")
                       for node_id in findings.to_request}, change=False)
    candidates = sorted({*findings.undispatched, *findings.to_request})
    queued = dispatch(candidates, force=True) if candidates else []
    if candidates:
        logger.info("reconcile: %d node(s) owed a sync, %d queued: %s", len(candidates),
                    len(queued), ", ".join(map(str, queued)))
    return {"undispatched": findings.undispatched, "behind": findings.behind,
            "differing": findings.differing, "queued": queued}
