"""Feedback after a change: which nodes it was queued for, and how far their syncs got.

Every entry point that changes something tells its user which nodes the change touches
(``overlays.changes`` decides that) and their progress to in sync or failed: the API's vNIC
and network responses (``sync``), the operator pages and the vDC admin pages' success
messages. ``capture_sync_requests()`` wraps a write and records the nodes its batch
requested; ``sync_states()`` reads those nodes' states in one query; ``queued_sentence()``
says it in words::

    with capture_sync_requests() as queued:
        network = services.save_network(network, user=request.user)
    messages.success(request, f"Network {network.name} saved. {queued_sentence(queued)}")

UI layer: imports the change batching and the models, never a view.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import transaction

from nodes.models import Node, SyncStatus
from overlays import changes

# Overall state of a set of nodes, worst first.
FAILED, PENDING, IN_SYNC, NONE = "failed", "pending", "in_sync", "none"


@dataclass
class Queued:
    """The nodes a write requested syncs of (``staged``: automatic sync is off)."""

    node_ids: set[int] = field(default_factory=set)
    staged: bool = False


@contextmanager
def capture_sync_requests() -> Iterator[Queued]:
    """Run a write inside one transaction and one change batch; collect the nodes it queued.

    The batch is written inside the transaction, so the requests stay committed with the
    change (the outbox); nested inside an outer batch, they join that one.
    """
    queued = Queued()
    with transaction.atomic(), changes.batch() as batch:
        yield queued
        queued.node_ids = set(batch.requests) | set(batch.staged)
        queued.staged = bool(batch.staged) and not batch.requests


@dataclass(frozen=True)
class NodeState:
    node_id: int
    hostname: str
    sync_status: str
    sync_label: str
    message: str  # empty unless the caller may read sync messages

    def as_dict(self, *, queued: bool) -> dict[str, object]:
        data: dict[str, object] = {"node": self.hostname, "sync_status": self.sync_status,
                                   "queued": queued}
        if self.message:
            data["message"] = self.message
        return data


def sync_states(node_ids: Iterable[int], *, with_messages: bool = False) -> list[NodeState]:
    """The nodes' sync states by host name, in one query (none for no ids).

    ``with_messages``: include why a sync failed (superusers and auditors only: a failure
    may quote what a node said).
    """
    ids = sorted(set(node_ids))
    if not ids:
        return []
    labels = dict(SyncStatus.choices)
    rows = (Node.objects.filter(pk__in=ids).order_by("hostname")
            .values_list("pk", "hostname", "sync_status", "sync_message"))
    return [NodeState(pk, hostname, status, labels.get(status, status),
                      message if with_messages and status != SyncStatus.IN_SYNC else "")
            for pk, hostname, status, message in rows]


def all_sync_states(*, with_messages: bool = False) -> dict[int, NodeState]:
    """Every node's sync state by id, in one query: for responses listing many objects."""
    labels = dict(SyncStatus.choices)
    rows = Node.objects.order_by("hostname").values_list("pk", "hostname", "sync_status",
                                                         "sync_message")
    return {pk: NodeState(pk, hostname, status, labels.get(status, status),
                          message if with_messages and status != SyncStatus.IN_SYNC else "")
            for pk, hostname, status, message in rows}


def overall(states: Iterable[NodeState]) -> str:
    """failed if any node failed, pending while any is not in sync yet, else in_sync."""
    statuses = {s.sync_status for s in states}
    if not statuses:
        return NONE
    if SyncStatus.FAILED in statuses:
        return FAILED
    if statuses - {SyncStatus.IN_SYNC}:
        return PENDING
    return IN_SYNC


def _names(states: list[NodeState]) -> str:
    names = [s.hostname for s in states]
    if len(names) > 8:
        return f"{', '.join(names[:8])} and {len(names) - 8} more"
    return ", ".join(names)


def queued_sentence(queued: Queued) -> str:
    """What the change set in motion, in one or two sentences naming the nodes."""
    states = sync_states(queued.node_ids)
    if not states:
        return "No node's files change."
    count = f"{len(states)} node{'s' if len(states) != 1 else ''}"
    if queued.staged:
        return (f"{count} marked pending until `overlay update` (automatic sync is off): "
                f"{_names(states)}.")
    failed = [s for s in states if s.sync_status == SyncStatus.FAILED]
    done = [s for s in states if s.sync_status == SyncStatus.IN_SYNC]
    text = f"Sync queued for {count}: {_names(states)}."
    if failed:
        text += f" Failed so far: {_names(failed)}."
    elif len(done) == len(states):
        text = f"Synced {count}: {_names(states)}."
    return text
