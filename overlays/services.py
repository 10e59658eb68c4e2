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
from overlays import changes, secretbox
from overlays.generators import required_key_pairs
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
from overlays.snapshot import ClusterSnapshot, NodeView
from overlays.validators import parse_ipv4_network, random_local_mac
from vdc.models import Vdc

FIRST_ADMIN_HOST = 11  # adminoverlay_0 addresses are assigned from .11 upward


def save(obj: models.Model) -> models.Model:
    """Validate completely, then save; the one way objects are written."""
    with transaction.atomic():
        obj.full_clean()
        created = obj.pk is None
        with changes.tracking(obj):
            obj.save()
        if created and isinstance(obj, Node):
            # A node installed after the admin overlay exists joins it at once.
            admin_overlay_assign(obj)
    return obj


def delete(obj: models.Model) -> None:
    with transaction.atomic():
        try:
            with changes.tracking(obj, deleting=True):
                obj.delete()
        except models.ProtectedError as exc:
            users = sorted({f"{o._meta.verbose_name} {o}" for o in exc.protected_objects})
            shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5
                                            else "")
            raise ValidationError(
                f"{obj._meta.verbose_name.capitalize()} {obj} is still used by: "
                f"{shown}. Delete or move those first."
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


def admin_overlay_renumber(overlay: AdminOverlay) -> list[AdminOverlayAddress]:
    """Move node addresses that lie outside the overlay's (new, unsaved) subnet into it.

    Call before saving a changed subnet. Each node keeps its MAC (it must never change)
    and, where it fits and is free, its host number (.11 stays .11); otherwise it gets the
    next free address from .11. Returns the addresses that moved. A subnet that does not
    parse is left for ``save(overlay)`` to report.
    """
    if overlay.pk is None:
        return []
    try:
        net = parse_ipv4_network(overlay.subnet or "", field_label="subnet")
    except ValidationError:
        return []
    current = list(AdminOverlayAddress.objects.filter(admin_overlay=overlay)
                   .select_related("node").order_by("node__hostname"))
    outside = [a for a in current if ipaddress.IPv4Address(a.ip) not in net]
    if not outside:
        return []
    old_net = AdminOverlay.objects.get(pk=overlay.pk).ip_network
    overlay.subnet = str(net)
    taken = {a.ip for a in current if a not in outside}
    wanted: dict[int, str] = {}
    for address in outside:  # first pass: keep host numbers that fit and are free
        offset = int(ipaddress.IPv4Address(address.ip)) - int(old_net.network_address)
        same_host = str(net.network_address + offset)
        if 0 < offset < net.num_addresses - 1 and same_host not in taken:
            wanted[address.pk] = same_host
            taken.add(same_host)
    for address in outside:  # second pass: the rest take the next free address
        address.ip = wanted.get(address.pk) or _next_admin_ip(overlay, taken)
        address.admin_overlay = overlay
        save(address)
        taken.add(address.ip)
    return outside


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
    rule_name: str | None = None,
    port: int | None = None,
    mtu: int = ADMIN_OVERLAY_MTU,
    vxlan_id: int | None = None,
    vlan_id: int | None = None,
    addresses: dict[str, dict[str, str | None]] | None = None,
) -> AdminOverlay:
    """Create or update the admin overlay and give every node an address in it.

    Arguments left out (None) keep the current overlay's value, or take the default
    for a new one (rule adminoverlay, VXLAN 2, VLAN 2, a random subnet). A new subnet
    renumbers the node addresses (MACs stay). ``addresses`` maps hostnames to optional
    {"ip", "mac"}; nodes not named get the next free IP from .11 and a random locally
    administered MAC.
    """
    overlay = AdminOverlay.objects.select_related("rule").first()
    if rule_name is None:
        rule_name = overlay.rule.name if overlay else ADMIN_OVERLAY_RULE
    if vxlan_id is None:
        vxlan_id = overlay.vxlan_id if overlay else 2
    if vlan_id is None:
        vlan_id = overlay.vlan_id if overlay else 2
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
    admin_overlay_renumber(overlay)
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
        address.mac = mac  # the model normalises it, or reports it on "mac"
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

@transaction.atomic
def reconcile_ipsec_keys() -> tuple[int, int]:
    """Create keys for pairs that newly need one, delete keys of pairs that no longer do.

    Returns (created, deleted). Existing keys are kept, so re-running changes nothing.
    """
    nodes = tuple(NodeView(id=pk, hostname=hostname, pdc=pdc, admin_ip=None, admin_netmask=None,
                           external_ip=None)
                  for pk, hostname, pdc in Node.objects.values_list("id", "hostname", "pdc"))
    needed = required_key_pairs(ClusterSnapshot(nodes=nodes, rules=()))
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
    if new_keys or stale:
        changes.keys_changed([(k.node_a_id, k.node_b_id) for k in new_keys]
                             + [pair for pair in existing if pair not in needed])
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
    changes.keys_changed([(k.node_a_id, k.node_b_id) for k in targets],
                         reason="IPSec keys rotated")
    return len(targets)
