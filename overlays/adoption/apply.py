"""Adopting a running cluster: read every node, build the state file, import it all or nothing.

The import goes through the state-file importer (and so through the services), then the
pair keys both ends already hold are stored by ``services.adopt_pair_keys``, in ONE
transaction: a conflict or an import problem changes nothing.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from nodes.models import Node
from overlays import services
from overlays.adoption.build import Adoption, Finding, build_adoption
from overlays.adoption.reader import NodeReading, read_node
from overlays.models import AdoptionRecord, VirtualNetwork
from overlays.models.management import management_sources
from overlays.statefile import StateFileError, export_state, import_state

logger = logging.getLogger(__name__)


class AdoptionRefused(Exception):
    """The adoption has conflicts (or the import refused it); nothing was changed."""

    def __init__(self, adoption: Adoption) -> None:
        super().__init__(f"{len(adoption.conflicts)} conflict(s); nothing was changed")
        self.adoption = adoption


@dataclass
class AdoptionResult:
    adoption: Adoption
    applied: bool
    changes: list[str] = field(default_factory=list)
    keys_adopted: int = 0
    record: AdoptionRecord | None = None


class AdoptionChanged(Exception):
    """The nodes say something else than the dry run the operator confirmed showed."""


# Nodes read at once: each read is a few SSH round trips, mostly waiting.
READ_WORKERS = 8


def read_cluster(hostnames: list[str] | None = None) -> list[NodeReading]:
    """Read the named known nodes (all known nodes when none are named), several at once.

    Raises ``ValueError`` for a host name that is not a known node, and the first
    ``TransportError`` (in host-name order) when a node cannot be read.
    """
    nodes = Node.objects.order_by("hostname")
    if hostnames:
        nodes = nodes.filter(hostname__in=hostnames)
        unknown = sorted(set(hostnames) - set(nodes.values_list("hostname", flat=True)))
        if unknown:
            raise ValueError(f"unknown node(s): {', '.join(unknown)}; add them first "
                             "(a state file with their nodes section, or the admin).")
    nodes = list(nodes)
    if len(nodes) <= 1:
        return [read_node(node) for node in nodes]
    with ThreadPoolExecutor(max_workers=min(READ_WORKERS, len(nodes))) as pool:
        futures = [pool.submit(read_node, node) for node in nodes]
        return [future.result() for future in futures]


def plan_adoption(readings: list[NodeReading]) -> Adoption:
    """The state file and report for ``readings``, given what the database knows now."""
    current = export_state()
    known_networks = {(n["overlay_rule"], n["vxlan_id"], n["vlan_id"]): n
                      for n in current["networks"]}
    return build_adoption(
        readings, all_hostnames=set(Node.objects.values_list("hostname", flat=True)),
        node_entries={n["hostname"]: n for n in current["nodes"]},
        known_networks=known_networks,
        known={**current, "management_sources": list(management_sources())})


def apply_adoption(adoption: Adoption, *, user: Any = None, actor: str = "",
                   entry_point: str = "cli", expect: str | None = None) -> AdoptionResult:
    """Import the adoption's state file and its pair keys at once, and record it.

    ``user`` (an account, or None) and ``actor`` (their name, or the OS user) and
    ``entry_point`` (``cli``, ``api``, ``pages``) go to the ``AdoptionRecord`` written
    in the same transaction. ``expect``: the fingerprint of the dry run the operator
    confirmed; another one raises ``AdoptionChanged``. Raises ``AdoptionRefused`` on
    conflicts or import problems; either way nothing is changed.
    """
    if adoption.conflicts:
        raise AdoptionRefused(adoption)
    if expect is not None and expect != adoption.fingerprint():
        raise AdoptionChanged("The nodes now hold something else than the dry run showed; "
                              "nothing was changed. Look again, then confirm.")
    actor = actor or getattr(user, "username", "") or ""
    try:
        with transaction.atomic():
            report = import_state(adoption.state)
            kept = services.adopt_pair_keys(adoption.pair_keys)
            record = services.record_adoption(
                user=user, actor=actor, entry_point=entry_point, hosts=adoption.hosts,
                summary=adoption.summary(), changes=report.changes)
    except StateFileError as exc:
        adoption.conflicts.extend(Finding("-", "state file", path, message)
                                  for path, message in exc.problems)
        raise AdoptionRefused(adoption) from None
    logger.info("adoption of %s by %s (%s): %d change(s), %d pair key(s) adopted",
                ", ".join(adoption.hosts), actor or "unknown", entry_point,
                len(report.changes), kept)
    return AdoptionResult(adoption=adoption, applied=True, changes=report.changes,
                          keys_adopted=kept, record=record)


def result_document(adoption: Adoption) -> dict[str, Any]:
    """The ``--json`` output: the state file, the report and the dry run's fingerprint."""
    return {"state": adoption.state, **adoption.report(), "fingerprint": adoption.fingerprint()}


def adopted_networks() -> QuerySet[VirtualNetwork]:
    """Networks without a vDC (what an adoption creates), by name."""
    return VirtualNetwork.objects.filter(vdc__isnull=True).select_related("overlay_rule")
