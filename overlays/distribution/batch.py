"""One cluster snapshot for a batch of syncs (``SharedSnapshot``).

The syncs dispatched together (one change's affected nodes, ``overlay update``, a
reconcile) render from one snapshot instead of loading the whole cluster once per
node: the snapshot's derived data (ARP entries per rule, the IPSec peer list, the pair
keys it decrypts on first use) is then built once for the batch, and a node's sync
costs what that node needs.

Why sharing is safe under concurrent writes. Every change commits its data together
with one more to the desired generation of each node it affects (``outbox``). The batch
reads every node's desired generation *before* it loads the snapshot, so the snapshot
holds every change up to those generations. A pass of a node that read the node's
desired generation G may use the snapshot only if the batch read G or more for that
node; otherwise (a change of the node committed since the load) the batch loads
again, generations first, and the pass uses the new snapshot, which holds G. A
snapshot older than the generation a pass deploys is never used, so a pass never
records "in sync" for a generation its files do not hold.

Writes made around the services (which raise no generation) are seen by the next
batch, not by one already running: like any such write, they request no sync.
"""

from __future__ import annotations

import logging
import threading

from nodes.models import Node
from overlays.selectors import load_snapshot
from overlays.snapshot import ClusterSnapshot

logger = logging.getLogger(__name__)


class SharedSnapshot:
    """The snapshot a batch of node syncs shares; thread-safe (``sync_many``'s jobs)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: ClusterSnapshot | None = None
        self._generations: dict[int, int] = {}
        self.loads = 0

    def for_node(self, node_id: int, generation: int) -> ClusterSnapshot:
        """A snapshot holding every change of the node up to ``generation`` (its desired
        generation, read before this call): the batch's, or a fresh one when a change of
        the node committed after the batch's was loaded."""
        with self._lock:
            if self._snapshot is None or self._generations.get(node_id, -1) < generation:
                if self._snapshot is not None:
                    logger.info("sync of node %s: a change committed after the batch's "
                                "snapshot; loading it again", node_id)
                # Generations first: the snapshot then holds at least these.
                self._generations = dict(Node.objects.values_list("pk", "desired_generation"))
                self._snapshot = load_snapshot()
                self.loads += 1
            return self._snapshot

    def forget(self) -> None:
        """Drop the snapshot (the next node loads one): its memory is not held longer."""
        with self._lock:
            self._snapshot = None
            self._generations = {}
