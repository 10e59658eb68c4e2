"""The outbox: the syncs nodes are owed, kept in the database (``nodes.PendingSync``).

A change that affects a node's files writes, in its own transaction (``record``):

- one more to the node's ``desired_generation``, and ``pending`` as its sync status
  when it was in sync: from that commit on nobody reads "in sync" for it;
- the node's ``PendingSync`` row, created or merged with the one waiting (file groups,
  reasons, verify).

The row is the request; a Celery task is only its messenger. ``queue`` queues a task
after commit and marks the row dispatched; the task clears that mark when it starts
(``started``; without a broker the task runs at once and nothing is marked), and a sync
removes the row only when it completed and no request was merged in meanwhile
(``consume``). So a broker that is down, a message lost with a
worker, or a worker killed in the middle of a sync leave the row in place, and the
periodic reconcile queues it again.

A sync records in ``synced_generation`` the generation it deployed, and sets ``in_sync``
only with a conditional update that finds no newer generation (``run.record_deployment``).

Imports the node models and ``overlays.filegroups`` only.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from nodes.models import Node, PendingSync, SyncStatus
from overlays.filegroups import Scope, describe_scope, merge_scopes, scope_from, scope_tokens

logger = logging.getLogger(__name__)

# How many triggers a row keeps word for word; the rest are counted.
MAX_REASONS = 20
REASON_MAX = 200


@dataclass(frozen=True)
class Request:
    """What to sync on one node: file groups (None: every file), why, and how."""

    scope: Scope = None
    reason: str = ""
    verify: bool = False

    def merged(self, other: Request | None) -> Request:
        if other is None:
            return self
        return Request(scope=merge_scopes(self.scope, other.scope),
                       reason=join_reasons([*split_reasons(self.reason),
                                            *split_reasons(other.reason)]),
                       verify=self.verify or other.verify)


@dataclass(frozen=True)
class Claim:
    """A node's pending request as a sync took it up (``claim``), with the node's row as
    it was read in the same statement."""

    request: Request
    base_generation: int  # every change up to here was deployed before this request
    generation: int  # the request covers every change up to here (read with the row)
    revision: int
    node: Node = field(compare=False, repr=False)


def split_reasons(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def join_reasons(reasons: Iterable[str]) -> str:
    """One line per distinct trigger, at most ``MAX_REASONS`` of them."""
    unique = list(dict.fromkeys(r[:REASON_MAX] for r in reasons if r))
    if len(unique) > MAX_REASONS:
        more = len(unique) - MAX_REASONS + 1
        unique = [*unique[:MAX_REASONS - 1], f"and {more} more changes"]
    return "\n".join(unique)


def one_line(text: str, limit: int = 255) -> str:
    """A request's reasons as a deployment's one-line trigger."""
    reasons = split_reasons(text)
    line = "; ".join(reasons)
    if len(line) <= limit:
        return line
    return f"{reasons[0][:limit - 40]}; and {len(reasons) - 1} more changes"


def record(requests: Mapping[int, Request], *, change: bool) -> None:
    """Write these requests to the outbox in the current transaction (a savepoint).

    ``change``: they follow from a change of the nodes' desired files, so each node's
    desired generation goes up by one and an in-sync node becomes pending. An operator's
    request to sync (``change`` False) leaves both as they are. Node rows are locked in
    id order, so concurrent changes of overlapping nodes queue up instead of deadlocking.
    """
    if not requests or _rolling_back():
        return
    ids = sorted(requests)
    now = timezone.now()
    with transaction.atomic():
        locked = Node.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk")
        generations = dict(locked.values_list("pk", "desired_generation"))
        if change:
            _advance(generations, requests, now)
        waiting = {row.node_id: row for row in
                   PendingSync.objects.select_for_update().filter(node_id__in=generations)}
        created, merged = [], []
        for node_id in sorted(generations):
            request = requests[node_id]
            row = waiting.get(node_id)
            if row is None:
                base = generations[node_id] - (1 if change else 0)
                created.append(PendingSync(
                    node_id=node_id, scope=scope_tokens(request.scope),
                    reasons=join_reasons([request.reason]), verify=request.verify,
                    base_generation=base, requested_at=now, updated_at=now))
                continue
            row.scope = scope_tokens(merge_scopes(scope_from(row.scope), request.scope))
            row.reasons = join_reasons([*split_reasons(row.reasons), request.reason])
            row.verify = row.verify or request.verify
            row.revision += 1
            row.updated_at = now
            merged.append(row)
        PendingSync.objects.bulk_create(created)
        PendingSync.objects.bulk_update(merged, ["scope", "reasons", "verify", "revision",
                                                 "updated_at"])


def _rolling_back() -> bool:
    """The current transaction will be rolled back (a dry run): its changes need nothing."""
    try:
        return transaction.get_rollback()
    except transaction.TransactionManagementError:  # autocommit: nothing to roll back
        return False


def _advance(generations: dict[int, int], requests: Mapping[int, Request],
             now: datetime) -> None:
    """One more desired generation for each node; in-sync nodes become pending."""
    ids = list(generations)
    Node.objects.filter(pk__in=ids).update(desired_generation=F("desired_generation") + 1)
    for node_id in ids:
        generations[node_id] += 1
    first = requests[ids[0]].reason if ids else ""
    Node.objects.filter(pk__in=ids, sync_status=SyncStatus.IN_SYNC).update(
        sync_status=SyncStatus.PENDING,
        sync_message=f"changes to push ({first[:200]})" if first else "changes to push",
        updated_at=now)


def stage(node_ids: Iterable[int], *, reason: str) -> None:
    """A change with automatic sync off: the nodes are no longer in sync, and no sync is
    requested (``overlay update`` pushes it). Their next sync checks every file."""
    ids = sorted(set(node_ids))
    if not ids or _rolling_back():
        return
    with transaction.atomic():
        list(Node.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk")
             .values_list("pk", flat=True))
        Node.objects.filter(pk__in=ids).update(desired_generation=F("desired_generation") + 1)
        Node.objects.filter(pk__in=ids, sync_status=SyncStatus.IN_SYNC).update(
            sync_status=SyncStatus.PENDING,
            sync_message=f"changes staged, automatic sync is off ({reason[:200]}); "
                         "run 'overlay update'")


def claim(node_id: int) -> Claim | None:
    """The node's pending request, left in place until ``consume``; None when there is none."""
    return claim_with_node(node_id)[1]


def claim_with_node(node_id: int) -> tuple[Node | None, Claim | None]:
    """The node's row and its pending request (None when there is none), the request left
    in place until ``consume``. A pass without a request uses the row as well.

    The node and its request are read in one statement, so from one snapshot: a change
    commits its desired generation and its request together, so the request covers every
    change up to that generation (or a completed sync took them up before) and no other.
    """
    node = Node.objects.select_related("pending_sync").filter(pk=node_id).first()
    try:
        row = node.pending_sync if node is not None else None
    except PendingSync.DoesNotExist:
        row = None
    if row is None:
        return node, None
    return node, Claim(request=Request(scope=scope_from(row.scope), reason=row.reasons,
                                       verify=row.verify),
                       base_generation=row.base_generation, generation=node.desired_generation,
                       revision=row.revision, node=node)


def consume(node_id: int, claimed: Claim) -> bool:
    """A sync of this request completed: remove it unless more was merged in meanwhile."""
    deleted, _ = PendingSync.objects.filter(node_id=node_id,
                                            revision=claimed.revision).delete()
    return bool(deleted)


def pending(node_id: int) -> bool:
    return PendingSync.objects.filter(node_id=node_id).exists()


def requested(node_ids: Iterable[int]) -> list[int]:
    """Those of these nodes that have a pending request."""
    return sorted(PendingSync.objects.filter(node_id__in=list(node_ids))
                  .values_list("node_id", flat=True))


def started(node_id: int) -> None:
    """A task for the node started: its request is no longer waiting for one."""
    PendingSync.objects.filter(node_id=node_id).exclude(dispatched_at=None).update(
        dispatched_at=None)


def mark_dispatched(node_ids: Iterable[int]) -> None:
    ids = list(node_ids)
    if ids:
        PendingSync.objects.filter(node_id__in=ids).update(dispatched_at=timezone.now())


def clear_dispatched(node_ids: Iterable[int]) -> None:
    ids = list(node_ids)
    if ids:
        PendingSync.objects.filter(node_id__in=ids).update(dispatched_at=None)


def undispatched(node_ids: Iterable[int] | None = None, *,
                 queued_before: datetime | None = None) -> list[int]:
    """Nodes with a request and no task queued for it since ``queued_before`` (None: ever)."""
    rows = PendingSync.objects.all()
    if node_ids is not None:
        rows = rows.filter(node_id__in=list(node_ids))
    waiting = Q(dispatched_at=None)
    if queued_before is not None:
        waiting |= Q(dispatched_at__lt=queued_before)
    return list(rows.filter(waiting).order_by("node_id").values_list("node_id", flat=True))


def describe(node_id: int) -> str:
    """The node's pending request in one line (logs, commands)."""
    row = PendingSync.objects.filter(node_id=node_id).first()
    if row is None:
        return "nothing pending"
    return f"{describe_scope(scope_from(row.scope))}: {one_line(row.reasons, 120)}"
