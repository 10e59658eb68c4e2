"""After an adoption: the record of who adopted what, and giving adopted networks to vDCs.

An adoption creates every network it finds without a vDC (``<rule>-<vxlan>-<vlan>``). A
superuser then gives each to a vDC, and may rename it, here: the vDC's allowed ids apply
whatever its ``_RESTRICT`` switches say (the network becomes the tenant's, so it must lie
where the tenant may work), and its network limit applies as it does to every network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from overlays.models import AdoptionRecord, VirtualNetwork
from overlays.services.errors import renamed_errors
from overlays.services.locking import lock_for_write
from overlays.services.writes import save
from vdc.models import Vdc

SUPERUSERS_ONLY = "Only superusers give adopted networks to a vDC or rename them."


def record_adoption(*, user: Any, actor: str, entry_point: str, hosts: Iterable[str],
                    summary: Mapping[str, Any], changes: Iterable[str]) -> AdoptionRecord:
    """Store who adopted which hosts; call it in the adoption's own transaction."""
    account = user if getattr(user, "pk", None) else None
    record = AdoptionRecord(user=account, actor=actor[:150], entry_point=entry_point,
                            hosts=sorted(hosts), summary=dict(summary), changes=list(changes))
    record.full_clean()
    record.save()
    return record


@transaction.atomic
def give_adopted_network(network: VirtualNetwork, *, user: object, vdc: Vdc | None = None,
                         name: str | None = None) -> VirtualNetwork:
    """Give a network without a vDC to ``vdc`` and/or rename it, as a superuser.

    Errors are keyed ``vdc`` (the vDC's ranges or network limit refuse it, or the network
    already has a vDC) and ``name`` (taken or malformed); nothing changes on an error.
    The nodes' files do not name networks, so this syncs nothing.
    """
    if not getattr(user, "is_superuser", False):
        raise PermissionDenied(SUPERUSERS_ONLY)
    lock_for_write(network)
    current = VirtualNetwork.objects.filter(pk=network.pk).values_list("vdc__name", flat=True)
    owner = current.first() if network.pk else None
    if owner:
        raise ValidationError({"vdc": f"Network {network.name} already belongs to vDC {owner}; "
                                      "only networks without a vDC are given here."})
    if vdc is not None:
        vdc = Vdc.objects.select_for_update().get(pk=vdc.pk)
        _check_ranges(network, vdc)
        network.vdc = vdc
    if name is not None:
        network.name = name
    try:
        return save(network)
    except ValidationError as exc:
        # The ids are the network's, the choice was the vDC: say it where it was made.
        raise renamed_errors(exc, lambda field: "vdc" if field in (
            "vxlan_id", "vlan_id") else field) from None


def _check_ranges(network: VirtualNetwork, vdc: Vdc) -> None:
    problems = []
    if network.vxlan_id not in vdc.vxlan_ranges:
        problems.append(f"VXLAN {network.vxlan_id} of network {network.name} is outside vDC "
                        f"{vdc.name}'s allowed VXLAN ids ({vdc.vxlan_allowed or 'none'}).")
    if network.vlan_id not in vdc.vlan_ranges:
        problems.append(f"VLAN {network.vlan_id} of network {network.name} is outside vDC "
                        f"{vdc.name}'s allowed VLAN ids ({vdc.vlan_allowed or 'none'}).")
    if problems:
        problems.append("Widen the vDC's ranges first, or choose another vDC.")
        raise ValidationError({"vdc": " ".join(problems)})
