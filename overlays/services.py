"""Every write to the overlay model goes through these functions.

They validate (``full_clean``), save inside a transaction and leave side effects
(syncing nodes) to the change hooks in ``overlays.changes``. Views, the API,
the admin, the state-file import and commands call them, so each rule lives once.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils import timezone

from nodes.models import Node
from overlays import secretbox
from overlays.models import (
    ADMIN_OVERLAY_MTU,
    ADMIN_OVERLAY_RULE,
    AdminOverlay,
    AdminOverlayAddress,
    FirewallSettings,
    IpsecKey,
    OverlayRule,
    VirtualNetwork,
    Vnic,
)
from overlays.snapshot import pair_key
from overlays.validators import normalize_mac, random_local_mac
from vdc.models import Vdc

FIRST_ADMIN_HOST = 11  # adminoverlay_0 addresses are assigned from .11 upward


def save(obj: models.Model) -> models.Model:
    """Validate completely, then save; the one way objects are written."""
    with transaction.atomic():
        obj.full_clean()
        obj.save()
    return obj


def delete(obj: models.Model) -> None:
    with transaction.atomic():
        try:
            obj.delete()
        except models.ProtectedError as exc:
            users = sorted({str(o) for o in exc.protected_objects})[:5]
            raise ValidationError(
                f"{obj._meta.verbose_name.capitalize()} {obj} is still used by: "
                f"{', '.join(users)}. Delete or move those first."
            ) from exc


# --- vDC delegation -------------------------------------------------------------

def check_network_delegation(network: VirtualNetwork, *, user: object) -> None:
    """A vDC admin may only place networks in vDCs they administer, inside the allowed ids.

    Superusers are bound only by the model's own rules (the _RESTRICT switches).
    """
    if getattr(user, "is_superuser", False):
        return
    if not getattr(user, "is_authenticated", False):
        raise PermissionDenied("Log in to manage networks.")
    administered = Vdc.objects.restrict(user)
    if network.pk:
        before = VirtualNetwork.objects.filter(pk=network.pk).values_list("vdc_id", flat=True)
        if not administered.filter(pk__in=before).exists():
            raise PermissionDenied("You do not administer the vDC of this network.")
    if network.vdc_id is None:
        raise ValidationError({"vdc": "Choose one of your vDCs; global networks are for "
                                      "superusers."})
    vdc = administered.filter(pk=network.vdc_id).first()
    if vdc is None:
        raise ValidationError({"vdc": "You do not administer this vDC."})
    errors = {}
    if network.rule_id and AdminOverlay.objects.filter(rule_id=network.rule_id).exists():
        errors["rule"] = "The admin overlay rule is reserved for node management."
    if network.vxlan_id is not None and network.vxlan_id not in vdc.vxlan_ranges:
        errors["vxlan_id"] = (f"VXLAN {network.vxlan_id} is outside vDC {vdc.name}'s allowed "
                              f"VXLAN ids ({vdc.vxlan_allowed or 'none'}).")
    if network.vlan_id is not None and network.vlan_id not in vdc.vlan_ranges:
        errors["vlan_id"] = (f"VLAN {network.vlan_id} is outside vDC {vdc.name}'s allowed "
                             f"VLAN ids ({vdc.vlan_allowed or 'none'}).")
    if errors:
        raise ValidationError(errors)


def save_network(network: VirtualNetwork, *, user: object) -> VirtualNetwork:
    check_network_delegation(network, user=user)
    return save(network)


def delete_network(network: VirtualNetwork, *, user: object) -> None:
    if not getattr(user, "is_superuser", False) and not (
        network.vdc_id and Vdc.objects.restrict(user).filter(pk=network.vdc_id).exists()
    ):
        raise PermissionDenied("You do not administer the vDC of this network.")
    delete(network)


# --- Admin overlay ----------------------------------------------------------------

def random_admin_subnet() -> str:
    """A suggestion for the admin overlay subnet: a random 10.x.y.0/24."""
    rng = random.SystemRandom()
    return f"10.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}.0/24"


def _next_admin_ip(overlay: AdminOverlay, taken: set[str]) -> str:
    net = overlay.ip_network
    for host in range(FIRST_ADMIN_HOST, net.num_addresses - 1):
        candidate = str(net.network_address + host)
        if candidate not in taken:
            return candidate
    raise ValidationError({"subnet": f"No free address left in {net} from "
                                     f".{FIRST_ADMIN_HOST} upward."})


@transaction.atomic
def admin_overlay_init(
    *,
    subnet: str | None = None,
    rule_name: str = ADMIN_OVERLAY_RULE,
    port: int | None = None,
    mtu: int = ADMIN_OVERLAY_MTU,
    vxlan_id: int = 2,
    vlan_id: int = 2,
    addresses: dict[str, dict[str, str | None]] | None = None,
) -> AdminOverlay:
    """Create or update the admin overlay and give every node an address in it.

    ``addresses`` maps hostnames to optional {"ip", "mac"}; nodes not named get
    the next free IP from .11 and a random locally administered MAC.
    """
    overlay = AdminOverlay.objects.select_related("rule").first()
    rule = OverlayRule.objects.filter(name=rule_name).first()
    if rule is None:
        rule = save(OverlayRule(name=rule_name, port=port, mtu=mtu, all_nodes=True))
    if overlay is None:
        overlay = AdminOverlay(rule=rule, subnet=subnet or random_admin_subnet())
    else:
        overlay.rule = rule
        if subnet:
            overlay.subnet = subnet
    overlay.vxlan_id, overlay.vlan_id = vxlan_id, vlan_id
    save(overlay)
    for hostname, wanted in (addresses or {}).items():
        node = Node.objects.filter(hostname=hostname).first()
        if node is None:
            raise ValidationError({"addresses": f"No node named {hostname}."})
        admin_overlay_assign(node, ip=wanted.get("ip"), mac=wanted.get("mac"))
    for node in Node.objects.filter(admin_overlay_address__isnull=True):
        admin_overlay_assign(node)
    return overlay


@transaction.atomic
def admin_overlay_assign(node: Node, *, ip: str | None = None,
                         mac: str | None = None) -> AdminOverlayAddress | None:
    """Give a node its adminoverlay_0 address; an existing MAC is kept (it must not change)."""
    overlay = AdminOverlay.objects.select_related("rule").first()
    if overlay is None:
        return None
    address = AdminOverlayAddress.objects.filter(node=node).first()
    if address is None:
        address = AdminOverlayAddress(admin_overlay=overlay, node=node)
    taken_ips = set(AdminOverlayAddress.objects.exclude(pk=address.pk)
                    .values_list("ip", flat=True))
    if ip:
        address.ip = ip
    elif not address.ip or ipaddress.IPv4Address(address.ip) not in overlay.ip_network:
        address.ip = _next_admin_ip(overlay, taken_ips)
    if mac:
        address.mac = normalize_mac(mac) if mac else mac
    elif not address.mac:
        taken_macs = set(AdminOverlayAddress.objects.values_list("mac", flat=True))
        taken_macs |= set(Vnic.objects.filter(network__rule=overlay.rule)
                          .values_list("mac", flat=True))
        address.mac = random_local_mac(taken_macs)
    return save(address)


# --- Firewall ----------------------------------------------------------------------

def firewall_update(*, enabled: bool | None = None,
                    allowed_sources: Iterable[str] | None = None) -> FirewallSettings:
    settings_row = FirewallSettings.load()
    if enabled is not None:
        settings_row.enabled = enabled
    if allowed_sources is not None:
        settings_row.allowed_sources = list(allowed_sources)
    return save(settings_row)


# --- IPSec keys -------------------------------------------------------------------------

def required_key_pairs() -> set[tuple[int, int]]:
    """Every pair of nodes in different PDCs needs a key."""
    nodes = list(Node.objects.values_list("id", "pdc"))
    return {
        pair_key(a_id, b_id)
        for i, (a_id, a_pdc) in enumerate(nodes)
        for b_id, b_pdc in nodes[i + 1:]
        if a_pdc != b_pdc
    }


@transaction.atomic
def reconcile_ipsec_keys() -> tuple[int, int]:
    """Create keys for pairs that newly need one, delete keys of pairs that no longer do.

    Returns (created, deleted). Existing keys are kept, so re-running changes nothing.
    """
    needed = required_key_pairs()
    existing = {(a, b): pk for pk, a, b in IpsecKey.objects.values_list("id", "node_a_id",
                                                                        "node_b_id")}
    stale = [pk for pair, pk in existing.items() if pair not in needed]
    IpsecKey.objects.filter(pk__in=stale).delete()
    new_keys = []
    for a, b in sorted(needed - existing.keys()):
        key = IpsecKey(node_a_id=a, node_b_id=b)
        key.secret = secretbox.new_preshared_key()
        new_keys.append(key)
    IpsecKey.objects.bulk_create(new_keys)
    return len(new_keys), len(stale)


@transaction.atomic
def rotate_ipsec_keys(keys: Iterable[IpsecKey] | None = None) -> int:
    """Give pairs fresh secrets; both ends are rewritten by the next sync."""
    targets = list(keys) if keys is not None else list(IpsecKey.objects.all())
    now = timezone.now()
    for key in targets:
        key.secret = secretbox.new_preshared_key()
        key.rotated_at = now
    IpsecKey.objects.bulk_update(targets, ["secret_encrypted", "rotated_at"])
    return len(targets)
