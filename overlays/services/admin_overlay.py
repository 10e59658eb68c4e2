"""The admin overlay: its rule, subnet and segment, and every node's adminoverlay_0 address.

Writes only rows without follow-ups (the rule, the overlay, the addresses), so it uses
``overlays.services.rows`` directly; a created node joins the overlay through
``admin_overlay_assign`` (called by ``overlays.services.writes``).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator, Mapping

from django.core.exceptions import ValidationError
from django.db import transaction

from core.bulk_audit import log_bulk_writes
from core.validators import normalize_mac, parse_ipv4_network, random_local_mac
from nodes.models import Node
from overlays import changes
from overlays.models import (
    ADMIN_OVERLAY_MTU,
    ADMIN_OVERLAY_RULE,
    AdminOverlay,
    AdminOverlayAddress,
    OverlayRule,
    Vnic,
)
from overlays.services.errors import merge_errors, renamed_errors
from overlays.services.locking import Named, lock_named, lock_nodes_against_deletion
from overlays.services.rows import delete, save, save_changes

FIRST_ADMIN_HOST = 11  # adminoverlay_0 addresses are assigned from .11 upward


def random_admin_subnet() -> str:
    """A suggestion for the admin overlay subnet: a random 10.x.y.0/24."""
    rng = random.SystemRandom()
    return f"10.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}.0/24"


@changes.batch()
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
        save(address, fresh_parents=False)  # checked against the new subnet, not the stored
        taken.add(address.ip)
    return outside


def _next_admin_ip(overlay: AdminOverlay, taken: set[str]) -> str:
    candidate = next(_free_admin_ips(overlay, taken), None)
    if candidate is None:
        raise _subnet_full(overlay)
    return candidate


def _subnet_full(overlay: AdminOverlay) -> ValidationError:
    return ValidationError({"subnet": f"No free address left in {overlay.ip_network} from "
                                      f".{FIRST_ADMIN_HOST} upward."})


def _free_admin_ips(overlay: AdminOverlay, taken: set[str]) -> Iterator[str]:
    """The overlay's usable addresses from .11 upward that are not in ``taken``."""
    net = overlay.ip_network
    for host in range(FIRST_ADMIN_HOST, net.num_addresses - 1):
        candidate = str(net.network_address + host)
        if candidate not in taken:
            yield candidate


# Fields of the rule and overlay models whose errors belong to the admin_overlay_init
# argument that named them: the arguments are spelled as the API and the state file.
_ADMIN_OVERLAY_ERROR_KEYS = {"name": "overlay_rule", "arp_file": "overlay_rule",
                             "listen_ip": "overlay_rule"}


@transaction.atomic
@changes.batch()
def admin_overlay_init(
    *,
    overlay_rule: str | None = None,
    subnet: str | None = None,
    vxlan_id: int | None = None,
    vlan_id: int | None = None,
    port: int | None = None,
    mtu: int = ADMIN_OVERLAY_MTU,
    addresses: Mapping[str, Mapping[str, str | None]] | None = None,
) -> AdminOverlay:
    """Create or update the admin overlay and give every node an address in it.

    Arguments left out (None) keep the current overlay's value, or take the default
    for a new one: overlay rule adminoverlay (created with ``port`` and ``mtu`` when it
    does not exist), the model's VXLAN and VLAN ids, a random subnet. A new subnet
    renumbers the node addresses (MACs stay). ``addresses`` maps host names to the
    wanted {"ip", "mac"}, either of which may be left out (kept, or assigned); IPs and
    MACs may move between the named nodes. Nodes without an address get the next free
    IP from .11 and a random ``02:…`` MAC. Only what changes is written.

    Errors are keyed as the arguments are named (``overlay_rule``, ``subnet``,
    ``vxlan_id``, ``vlan_id``, ``port``, ``mtu``) and ``addresses.<host>``,
    ``addresses.<host>.ip`` or ``.mac``; every named node's problems come together.
    """
    lock_named(Named.ADMIN_OVERLAY)  # one admin overlay, whoever creates it at the same time
    overlay = AdminOverlay.objects.select_related("overlay_rule").first()
    rule_name = overlay_rule or (overlay.overlay_rule.name if overlay else ADMIN_OVERLAY_RULE)
    try:
        rule = OverlayRule.objects.filter(name=rule_name).first() or save(
            OverlayRule(name=rule_name, port=port, mtu=mtu, all_nodes=True))
        if overlay is None:
            overlay = AdminOverlay(subnet=subnet or random_admin_subnet())
        elif subnet:
            overlay.subnet = subnet
        overlay.overlay_rule = rule
        if vxlan_id is not None:
            overlay.vxlan_id = vxlan_id
        if vlan_id is not None:
            overlay.vlan_id = vlan_id
        admin_overlay_renumber(overlay)
        save_changes(overlay)
    except ValidationError as exc:
        raise renamed_errors(exc, lambda key: _ADMIN_OVERLAY_ERROR_KEYS.get(key, key)) from exc
    _set_admin_addresses(overlay, addresses or {})
    _assign_unaddressed(overlay)
    return overlay


def _assign_unaddressed(overlay: AdminOverlay) -> None:
    """Give every node without an address one, in host-name order, written together.

    What ``admin_overlay_assign`` does for one node, for all of them in a fixed number of
    queries (a cluster's first import assigns hundreds): the free IPs and MACs are read
    once under the admin overlay's lock, and each new address is free and well formed by
    construction, so no row needs the per-row checks against the others.
    """
    unaddressed = Node.objects.filter(admin_overlay_address__isnull=True)
    ids = list(unaddressed.values_list("pk", flat=True))
    if not ids:
        return
    lock_nodes_against_deletion(ids)  # then read again: one deleted before the lock is gone
    nodes = list(unaddressed.filter(pk__in=ids).order_by("hostname"))
    taken_ips = set(AdminOverlayAddress.objects.values_list("ip", flat=True))
    taken_macs = _taken_macs(overlay)
    free_ips = _free_admin_ips(overlay, taken_ips)
    created = []
    for node in nodes:
        ip = next(free_ips, None)
        if ip is None:
            raise _subnet_full(overlay)
        mac = random_local_mac(taken_macs)
        taken_macs.add(mac)
        created.append(AdminOverlayAddress(admin_overlay=overlay, node=node, ip=ip, mac=mac))
    AdminOverlayAddress.objects.bulk_create(created)
    log_bulk_writes(AdminOverlayAddress, created=created)
    changes.addresses_written(
        [(None, changes.address_facts(address, overlay.overlay_rule_id)) for address in created],
        reason=f"admin overlay addresses assigned to {len(created)} node(s)")


def _set_admin_addresses(overlay: AdminOverlay,
                         wanted: Mapping[str, Mapping[str, str | None]]) -> None:
    """Give the named nodes the wanted addresses, collecting every node's problems.

    Rows whose IP or MAC changes are released before any is written again, so that
    uniqueness holds between the old and the new state, not at every step between
    (two nodes may swap addresses).
    """
    errors: dict[str, list[ValidationError]] = {}
    nodes = {n.hostname: n for n in Node.objects.filter(hostname__in=list(wanted))}
    current = {a.node_id: a for a in
               AdminOverlayAddress.objects.filter(node__in=list(nodes.values()))}
    moves, assigns = [], []
    for hostname in sorted(wanted):
        spec = wanted[hostname] or {}
        node = nodes.get(hostname)
        if node is None:
            errors[f"addresses.{hostname}"] = [ValidationError(f"No node named {hostname}.")]
            continue
        have = current.get(node.pk)
        ip = spec.get("ip") or (have.ip if have else None)
        mac = spec.get("mac") or (have.mac if have else None)
        if not (ip and mac):
            assigns.append((hostname, node, spec))
        elif have is None or (have.ip, have.mac) != (ip, normalize_mac(mac) or mac):
            moves.append((hostname, node, have, ip, mac))
    for _, _, have, _, _ in moves:
        if have is not None:
            delete(have)
    for hostname, node, _, ip, mac in moves:
        try:
            save(AdminOverlayAddress(admin_overlay=overlay, node=node, ip=ip, mac=mac))
        except ValidationError as exc:
            merge_errors(errors, _address_errors(hostname, exc))
    for hostname, node, spec in assigns:
        try:
            admin_overlay_assign(node, ip=spec.get("ip"), mac=spec.get("mac"))
        except ValidationError as exc:
            merge_errors(errors, _address_errors(hostname, exc))
    if errors:
        raise ValidationError(errors)


def _address_errors(hostname: str, exc: ValidationError) -> ValidationError:
    where = f"addresses.{hostname}"
    if not hasattr(exc, "error_dict"):
        return ValidationError({where: exc.error_list})
    return renamed_errors(exc, lambda key: f"{where}.{key}" if key in ("ip", "mac") else
                           key if key == "subnet" else where)


@transaction.atomic
@changes.batch()
def admin_overlay_assign(node: Node, *, ip: str | None = None,
                         mac: str | None = None) -> AdminOverlayAddress | None:
    """Give a node its adminoverlay_0 address; an existing MAC is kept (it must not change).

    Free addresses are picked under the admin overlay's lock, so nodes created at the same
    time get different ones.
    """
    lock_named(Named.ADMIN_OVERLAY)
    overlay = AdminOverlay.objects.select_related("overlay_rule").first()
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
        address.mac = random_local_mac(_taken_macs(overlay))
    save_changes(address)
    return address


def _taken_macs(overlay: AdminOverlay) -> set[str]:
    """MACs a new adminoverlay_0 must not take: the other addresses' and those of the
    vNICs on the admin overlay's rule (a MAC is unique per rule)."""
    taken = set(AdminOverlayAddress.objects.values_list("mac", flat=True))
    taken |= set(Vnic.objects.filter(network__overlay_rule=overlay.overlay_rule_id)
                 .values_list("mac", flat=True))
    return taken
