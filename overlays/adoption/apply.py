"""Adopting a running cluster: read every node, build the state file, import it all or nothing.

The import goes through the state-file importer (and so through the services), then the
pair keys both ends already hold are stored by ``services.adopt_pair_keys``, in ONE
transaction: a conflict or an import problem changes nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from nodes.models import Node
from overlays import services
from overlays.adoption.build import Adoption, Finding, build_adoption
from overlays.adoption.reader import NodeReading, read_node
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


def read_cluster(hostnames: list[str] | None = None) -> list[NodeReading]:
    """Read the named known nodes (all known nodes when none are named)."""
    nodes = Node.objects.order_by("hostname")
    if hostnames:
        nodes = nodes.filter(hostname__in=hostnames)
        unknown = sorted(set(hostnames) - set(nodes.values_list("hostname", flat=True)))
        if unknown:
            raise ValueError(f"unknown node(s): {', '.join(unknown)}; add them first "
                             "(a state file with their nodes section, or the admin).")
    return [read_node(node) for node in nodes]


def plan_adoption(readings: list[NodeReading]) -> Adoption:
    """The state file and report for ``readings``, given what the database knows now."""
    current = export_state()
    known_networks = {(n["overlay_rule"], n["vxlan_id"], n["vlan_id"]): n
                      for n in current["networks"]}
    return build_adoption(
        readings, all_hostnames=set(Node.objects.values_list("hostname", flat=True)),
        node_entries={n["hostname"]: n for n in current["nodes"]},
        known_networks=known_networks)


def apply_adoption(adoption: Adoption, *, user: str = "") -> AdoptionResult:
    """Import the adoption's state file and its pair keys at once; raise AdoptionRefused."""
    if adoption.conflicts:
        raise AdoptionRefused(adoption)
    try:
        with transaction.atomic():
            report = import_state(adoption.state)
            kept = services.adopt_pair_keys(adoption.pair_keys)
    except StateFileError as exc:
        adoption.conflicts.extend(Finding("-", "state file", path, message)
                                  for path, message in exc.problems)
        raise AdoptionRefused(adoption) from None
    logger.info("adoption by %s: %d change(s), %d pair key(s) adopted",
                user or "unknown", len(report.changes), kept)
    return AdoptionResult(adoption=adoption, applied=True, changes=report.changes,
                          keys_adopted=kept)


def result_document(adoption: Adoption) -> dict[str, Any]:
    """The ``--json`` output: the state file and the report."""
    return {"state": adoption.state, **adoption.report()}
