"""What a refresh read from a node, recorded on its record (``overlays.tasks`` calls these)."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from nodes.facts import ADMIN_VNIC, NodeFacts
from nodes.models import Node, NodeStatus, SyncStatus
from overlays import changes
from overlays.models import AdminOverlay, AdminOverlayAddress
from overlays.services.admin_overlay import admin_overlay_assign
from overlays.services.writes import check_node_reachable, save


@dataclass
class RecordedFacts:
    """What ``record_node_facts`` changed on the node's record, and what it did not adopt."""

    changed: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)


@transaction.atomic
@changes.batch()
def record_node_facts(node: Node, facts: NodeFacts) -> RecordedFacts:
    """Record what a refresh read from the node; the node is online again.

    A changed PDC, admin or external IP schedules syncs of the nodes whose files
    depend on it (and reconciles the pair keys). The node's ``adminoverlay_0`` is
    adopted when the record has none; a different one is only reported, since the
    next sync of /usbkey/config applies the record.
    """
    recorded = RecordedFacts()
    info = facts.sysinfo
    if info.hostname and info.hostname != node.hostname:
        recorded.warnings.append(f"the node calls itself {info.hostname!r}; the record is kept "
                                 f"as {node.hostname!r} (rename it deliberately)")
    updates: dict[str, Any] = {
        "nic_tags": facts.nic_tags,
        "default_route_nic": facts.default_route_nic,
        "loaded_overlay_rules": facts.loaded_overlay_rules,
    }
    if info.pdc:
        updates["pdc"] = info.pdc
    else:
        recorded.warnings.append("sysinfo has no 'Datacenter Name'; PDC kept")
    if info.admin_ip:
        updates["admin_ip"] = info.admin_ip
    else:
        recorded.warnings.append("no admin IP found in sysinfo; kept")
    updates["external_ip"] = info.external_ip
    if info.uuid:
        updates["uuid"] = uuid.UUID(info.uuid)
    for name, value in updates.items():
        if getattr(node, name) != value:
            recorded.changed.append(name)
            setattr(node, name, value)
    node.refreshed_at = timezone.now()
    if node.status == NodeStatus.UNREACHABLE:
        node.status = NodeStatus.ONLINE
        recorded.changed.append("status")
    try:
        check_node_reachable(node)
    except ValidationError as exc:  # what the node says is so; an operator must know
        recorded.warnings += [f"{field}: {' '.join(messages)}"
                              for field, messages in exc.message_dict.items()]
    save(node, reach_checked=False)

    overlay = AdminOverlay.objects.first()
    own = next((v for v in info.vnics if v.name == ADMIN_VNIC), None)
    if overlay is not None and own is not None and own.ip and own.mac:
        address = AdminOverlayAddress.objects.filter(node=node).first()
        if address is None:
            try:
                admin_overlay_assign(node, ip=own.ip, mac=own.mac)
                recorded.changed.append("adminoverlay_0")
            except ValidationError as exc:
                recorded.warnings.append(f"adminoverlay_0 reported by the node ({own.ip}, "
                                         f"{own.mac}) not adopted: {' '.join(exc.messages)}")
        elif (address.ip, address.mac) != (own.ip, own.mac):
            recorded.warnings.append(
                f"adminoverlay_0 on the node is {own.ip} {own.mac}, the record says "
                f"{address.ip} {address.mac}; the next sync of /usbkey/config applies the "
                "record")
    return recorded


def record_node_unreachable(node: Node, message: str, *, refused: bool) -> None:
    """A refresh could not read the node: mark it unreachable (unless in maintenance).

    ``refused`` (host key or authentication): its syncs fail too, so the node is
    marked failed with the reason. Only these columns are written: nothing else
    of the node changes, so no sync is scheduled.
    """
    fields: dict[str, Any] = {"refreshed_at": timezone.now()}
    if node.status != NodeStatus.MAINTENANCE:
        fields["status"] = NodeStatus.UNREACHABLE
    if refused:
        fields.update(sync_status=SyncStatus.FAILED, sync_message=message[:2000])
    Node.objects.filter(pk=node.pk).update(**fields)
