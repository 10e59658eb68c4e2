"""Which nodes are owed a sync that no task is coming for: the periodic reconcile.

Runs every ``OVERLAY_RECONCILE_INTERVAL`` seconds under ``celery beat`` and once when a
worker starts (``overlays.distribution.queue.reconcile``). For every online node,
whatever its sync status, it finds:

- a pending request (outbox row) with no task queued for it within one interval: its
  message was lost (broker down, worker killed, Redis restarted empty);
- with automatic sync on, a node whose synced generation is behind its desired one
  with no request left (a worker killed in the middle of the sync), or whose desired
  files differ from what was last deployed (rendered from one snapshot and compared
  by hash, without contacting any node).

Nodes that are not online wait for a refresh to find them online; nodes held after a
rollback (``Node.rollback_hold``) wait for an operator's ``overlay update --force``. Reads
only; the caller (``queue``) records the requests and queues the tasks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import F

from nodes.models import DeployedFile, Node, NodeStatus, PendingSync, RollbackHold
from overlays.distribution.plan import plan_node
from overlays.selectors import load_snapshot, node_paths

logger = logging.getLogger(__name__)


@dataclass
class Findings:
    """What the reconcile found, by node id."""

    undispatched: list[int] = field(default_factory=list)  # requests with no task coming
    behind: list[int] = field(default_factory=list)  # synced generation < desired, no request
    differing: list[int] = field(default_factory=list)  # desired files != deployed, no request
    unrenderable: dict[int, str] = field(default_factory=dict)

    @property
    def to_request(self) -> list[int]:
        """Nodes that need a new request (a full sync)."""
        return sorted({*self.behind, *self.differing})


def find(*, queued_before: datetime | None, compare_files: bool) -> Findings:
    """Online nodes owed a sync that no queued task will carry out.

    ``queued_before``: a request whose task was queued before then counts as lost (None:
    every request, as when a worker starts and the queue may have died with Redis).
    ``compare_files``: also look for nodes behind their desired generation or whose
    desired files differ from those deployed (automatic sync on).
    """
    # A node held after a rollback waits for an operator, not for the reconcile.
    online = Node.objects.filter(status=NodeStatus.ONLINE).exclude(
        rollback_hold=RollbackHold.HELD)
    rows = PendingSync.objects.filter(node__status=NodeStatus.ONLINE).exclude(
        node__rollback_hold=RollbackHold.HELD)
    if queued_before is not None:
        rows = rows.filter(dispatched_at=None) | rows.filter(dispatched_at__lt=queued_before)
    findings = Findings(undispatched=sorted(rows.values_list("node_id", flat=True)))
    if not compare_files:
        return findings
    requested = set(PendingSync.objects.values_list("node_id", flat=True))
    findings.behind = sorted(
        set(online.filter(synced_generation__lt=F("desired_generation"))
            .values_list("pk", flat=True)) - requested)
    candidates = set(online.values_list("pk", flat=True)) - requested - set(findings.behind)
    if not candidates:
        return findings
    deployed: dict[int, dict[str, str]] = {}
    for node_id, path, digest in DeployedFile.objects.filter(node_id__in=candidates) \
            .values_list("node_id", "path", "sha256"):
        deployed.setdefault(node_id, {})[path] = digest
    snapshot = load_snapshot()
    paths = node_paths()
    for node_id in sorted(candidates):
        view = snapshot.nodes_by_id.get(node_id)
        if view is None:
            continue
        try:
            plan = plan_node(snapshot, view, scope=None, deployed=deployed.get(node_id, {}),
                             paths=paths)
        except ValueError as exc:
            findings.unrenderable[node_id] = str(exc)
            continue
        if not plan.up_to_date:
            findings.differing.append(node_id)
    return findings
