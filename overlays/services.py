"""Every write to the overlay model goes through these functions.

They validate (``full_clean``), save inside a transaction and leave side effects
(syncing nodes) to the change hooks in ``overlays.changes``: each write is one
``changes.batch()``, so the nodes it affects are scheduled once, after commit.
Views, the API, the admin, the state-file import and commands call them, so each
rule lives once.

Writes that other data depends on are completed here, in the same transaction:
a node that is created, deleted, renamed or moved to another PDC gets its IPSec
pair keys reconciled at once (a sync never writes keys), and what a refresh
read from a node is recorded by ``record_node_facts``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils import timezone

from core.validators import normalize_mac, parse_ipv4_network, random_local_mac
from nodes.facts import ADMIN_VNIC, NodeFacts
from nodes.models import Node, NodeStatus, SyncStatus
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
from vdc.models import Vdc

FIRST_ADMIN_HOST = 11  # adminoverlay_0 addresses are assigned from .11 upward


def save(obj: models.Model) -> models.Model:
    """Validate completely, then save; the one way objects are written."""
    with transaction.atomic(), changes.batch():
        obj.full_clean()
        _write(obj)
    return obj


def save_changes(obj: models.Model) -> list[str] | None:
    """Validate completely, then save only if a field changed; so re-applying changes nothing.

    Returns None for a new object, else the names of the fields that changed (sorted;
    empty when nothing was written). Used where the same data is applied again and
    again: the state-file import, the admin overlay.
    """
    with transaction.atomic(), changes.batch():
        before = None if obj.pk is None else field_values(
            type(obj)._default_manager.get(pk=obj.pk))
        obj.full_clean()
        changed = None
        if before is not None:
            after = field_values(obj)
            changed = sorted(name for name in after if before.get(name) != after[name])
            if not changed:
                return changed
        _write(obj)
    return changed


def field_values(obj: models.Model) -> dict[str, object]:
    """An object's stored facts, comparable between a saved row and an edited copy."""
    return {
        f.attname: _comparable(getattr(obj, f.attname))
        for f in obj._meta.concrete_fields
        if not getattr(f, "auto_now", False) and not getattr(f, "auto_now_add", False)
    }


def _comparable(value: object) -> object:
    return str(value) if value is not None and not isinstance(value, (int, bool, list)) else value


def _write(obj: models.Model) -> None:
    """Save a validated object, tracking which nodes' files it changes."""
    created = obj.pk is None
    keys_due = isinstance(obj, Node) and _pairs_may_change(obj)
    with changes.tracking(obj):
        obj.save()
    if keys_due:
        reconcile_ipsec_keys()
    if created and isinstance(obj, Node):
        # A node installed after the admin overlay exists joins it at once.
        admin_overlay_assign(obj)


def delete(obj: models.Model) -> None:
    with transaction.atomic(), changes.batch():
        try:
            with changes.tracking(obj, deleting=True):
                obj.delete()
            if isinstance(obj, Node):
                reconcile_ipsec_keys()
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


@dataclass(frozen=True)
class AdminsSet:
    """What ``vdc_set_admins`` did: the admins' user names, and what changed."""

    usernames: tuple[str, ...]  # sorted
    changed: bool
    created_users: tuple[str, ...]  # in the order given


@transaction.atomic
def vdc_set_admins(vdc: Vdc, admins: Iterable[AbstractBaseUser | str], *,
                   create_missing_users: bool = False) -> AdminsSet:
    """Make exactly these users the admins of ``vdc``; everybody else loses the role there.

    Users are given as objects or by user name. A name without a user is refused on
    ``admins``, unless ``create_missing_users`` (the state-file import, which names admins
    before they ever log in): such a user is created with no usable password.
    """
    users = get_user_model()
    wanted: list[AbstractBaseUser] = []
    created: list[str] = []
    for admin in admins:
        if not isinstance(admin, str):
            wanted.append(admin)
            continue
        user = users.objects.filter(username=admin).first()
        if user is None:
            if not create_missing_users:
                raise ValidationError({"admins": f"No user named {admin}."})
            user = users(username=admin)
            user.set_unusable_password()
            user.save()
            created.append(admin)
        wanted.append(user)
    changed = set(vdc.admins.values_list("pk", flat=True)) != {u.pk for u in wanted}
    if changed:
        vdc.admins.set(wanted)
    return AdminsSet(usernames=tuple(sorted(u.get_username() for u in wanted)),
                     changed=changed, created_users=tuple(created))


# --- Admin overlay ----------------------------------------------------------------

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


# Fields of the rule and overlay models whose errors belong to the admin_overlay_init
# argument that named them: the arguments are spelled as the API and the state file.
_ADMIN_OVERLAY_ERROR_KEYS = {"rule": "overlay_rule", "name": "overlay_rule",
                             "arp_file": "overlay_rule", "listen_ip": "overlay_rule"}


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
    IP from .11 and a random locally administered MAC. Only what changes is written.

    Errors are keyed as the arguments are named (``overlay_rule``, ``subnet``,
    ``vxlan_id``, ``vlan_id``, ``port``, ``mtu``) and ``addresses.<host>``,
    ``addresses.<host>.ip`` or ``.mac``; every named node's problems come together.
    """
    overlay = AdminOverlay.objects.select_related("rule").first()
    rule_name = overlay_rule or (overlay.rule.name if overlay else ADMIN_OVERLAY_RULE)
    try:
        rule = OverlayRule.objects.filter(name=rule_name).first() or save(
            OverlayRule(name=rule_name, port=port, mtu=mtu, all_nodes=True))
        if overlay is None:
            overlay = AdminOverlay(subnet=subnet or random_admin_subnet())
        elif subnet:
            overlay.subnet = subnet
        overlay.rule = rule
        if vxlan_id is not None:
            overlay.vxlan_id = vxlan_id
        if vlan_id is not None:
            overlay.vlan_id = vlan_id
        admin_overlay_renumber(overlay)
        save_changes(overlay)
    except ValidationError as exc:
        raise renamed_errors(exc, lambda key: _ADMIN_OVERLAY_ERROR_KEYS.get(key, key)) from exc
    _set_admin_addresses(overlay, addresses or {})
    for node in Node.objects.filter(admin_overlay_address__isnull=True):
        admin_overlay_assign(node)
    return overlay


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
            _merge_errors(errors, _address_errors(hostname, exc))
    for hostname, node, spec in assigns:
        try:
            admin_overlay_assign(node, ip=spec.get("ip"), mac=spec.get("mac"))
        except ValidationError as exc:
            _merge_errors(errors, _address_errors(hostname, exc))
    if errors:
        raise ValidationError(errors)


def _address_errors(hostname: str, exc: ValidationError) -> ValidationError:
    where = f"addresses.{hostname}"
    if not hasattr(exc, "error_dict"):
        return ValidationError({where: exc.error_list})
    return renamed_errors(exc, lambda key: f"{where}.{key}" if key in ("ip", "mac") else
                           key if key == "subnet" else where)


def renamed_errors(exc: ValidationError, rename: Callable[[str], str]) -> ValidationError:
    """The same messages, each field renamed; errors without fields are left as they are."""
    if not hasattr(exc, "error_dict"):
        return exc
    renamed: dict[str, list[ValidationError]] = {}
    for field, errors in exc.error_dict.items():
        key = field if field == NON_FIELD_ERRORS else rename(field)
        renamed.setdefault(key, []).extend(errors)
    return ValidationError(renamed)


def _merge_errors(errors: dict[str, list[ValidationError]], exc: ValidationError) -> None:
    for field, found in exc.error_dict.items():
        errors.setdefault(field, []).extend(found)


@transaction.atomic
@changes.batch()
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
    save_changes(address)
    return address


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

def _pairs_may_change(node: Node) -> bool:
    """Whether saving ``node`` may change which pairs need a key: new, renamed or moved."""
    if node.pk is None:
        return True
    stored = Node.objects.filter(pk=node.pk).values_list("hostname", "pdc").first()
    return stored != (node.hostname, node.pdc)


@transaction.atomic
def reconcile_ipsec_keys() -> tuple[int, int]:
    """Create keys for pairs that newly need one, delete keys of pairs that no longer do.

    Returns (created, deleted). Existing keys are kept, so re-running changes nothing.
    Node writes call it (``save``, ``delete``); on its own it repairs a database
    written around the services.
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
    """Give pairs fresh secrets; both ends are rewritten by the next sync.

    Refused (``secretbox.SecretsKeyError``) when OVERLAY_SECRETS_KEYS cannot read the
    stored keys: new secrets under a wrong key would split the table between two keys.
    """
    secretbox.ensure_secrets_readable()
    targets = list(keys) if keys is not None else list(IpsecKey.objects.all())
    now = timezone.now()
    for key in targets:
        key.secret = secretbox.new_preshared_key()
        key.rotated_at = now
    IpsecKey.objects.bulk_update(targets, ["secret_encrypted", "rotated_at"])
    changes.keys_changed([(k.node_a_id, k.node_b_id) for k in targets],
                         reason="IPSec keys rotated")
    return len(targets)


# --- Node facts ------------------------------------------------------------------------

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
        "loaded_rules": facts.loaded_rules,
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
    save(node)

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
