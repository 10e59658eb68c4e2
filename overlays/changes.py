"""Which nodes and files a change affects, and scheduling their syncs after commit.

``overlays.services`` wraps every save and delete in ``tracking(obj)``: the
object's file-relevant facts are read before and after the write, and
``affected_by`` turns the difference into {node id: scope} (see
``overlays.filegroups`` for scopes). Keys created, dropped or rotated in bulk are
reported with ``keys_changed``. Only nodes whose files really change are
scheduled:

=========================  ===================================================
change                     nodes (files)
=========================  ===================================================
vNIC saved / deleted       nodes carrying its rule, except its host; old and
                           new rule and host when it moved (that rule's ARP)
network                    none: no node file mentions a network (its rule
                           cannot change while vNICs use it)
rule                       nodes carrying it before or after (usbkey line; ARP
                           table and ipf blocks when port, listen IP, file or
                           node list change)
admin overlay              nodes with an adminoverlay_0 address (usbkey; ARP of
                           the old and new rule when the rule changes)
admin overlay address      that node (usbkey) and the other nodes carrying the
                           admin rule (its ARP table)
firewall                   all nodes when switched on or off; nodes with an
                           external IP when the sources change while enabled
IPSec key                  the pair's two nodes (IPSec files)
node created               itself (all); others' ipf when the firewall lists it
node PDC changed           itself (all); nodes of the old and new PDC (IPSec,
                           ARP tables of rules they share)
node admin IP changed      itself (IPSec); same-PDC carriers of rules it hosts
                           vNICs on (ARP)
node external IP changed   itself (IPSec, ipf); other-PDC nodes (IPSec) and
                           their carriers of its rules (ARP); every node's ipf
                           when the firewall is enabled
node renamed / deleted     every node (all files)
node SSH host, port, user  itself (all; a new host key: compared with the files
or host key                on the node, which may have been reinstalled)
=========================  ===================================================

Requests are written with the change, once per node per batch: ``batch()``
collects the requests of the writes inside it (the services open one around each
write, the state-file import one around the whole file, so an import that saves
hundreds of objects requests each node once) and, when the outermost batch ends,
writes them to the outbox in the same transaction as the change
(``overlays.distribution.queue.request_changes``): each node's desired generation
goes up by one, an in-sync node becomes pending, and its pending request is created
or merged. After the commit a task is queued for each node unless one is queued
already, so requests of separate transactions coalesce there. A rolled-back
transaction, or a batch left by an exception, requests nothing. A broker that is
down never fails the committed write: the request stays in the database and the
periodic reconcile queues it. With ``OVERLAY_AUTO_SYNC = False`` the affected nodes
are only marked pending, and ``manage.py overlay update`` pushes the changes.

Imports the models, ``overlays.selectors`` (the same plain-data views of nodes
and rules as the snapshot), ``overlays.filegroups`` and the distribution's
queue; never the services.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator

from django.conf import settings
from django.db import models

from nodes.models import Node
from overlays.distribution.outbox import Request, stage
from overlays.distribution.queue import request_changes
from overlays.filegroups import (
    IPF_ADMIN,
    IPF_OVERLAYS,
    IPSEC,
    USBKEY,
    Scope,
    arp_group,
    merge_scopes,
    rule_groups,
)
from overlays.models import (
    AdminOverlay,
    AdminOverlayAddress,
    FirewallSettings,
    IpsecKey,
    OverlayRule,
    VirtualNetwork,
    Vnic,
)
from overlays.selectors import (
    hosted_rules,
    node_views,
    rule_hosts,
    rule_view,
    rule_view_of,
)
from overlays.snapshot import NodeView, RuleView

logger = logging.getLogger(__name__)

Affected = dict[int, Scope]


def _add(affected: Affected, node_ids: Iterable[int], scope: Scope) -> None:
    if scope is not None and not scope:
        return
    for node_id in node_ids:
        if node_id in affected:
            affected[node_id] = merge_scopes(affected[node_id], scope)
        else:
            affected[node_id] = scope


def _carriers(rule: RuleView, nodes: Iterable[NodeView]) -> set[int]:
    return {n.id for n in nodes if rule.carries(n.hostname)}


def _arp_readers(rule: RuleView | None, host_id: int, nodes: list[NodeView]) -> set[int]:
    """Nodes whose ARP table of ``rule`` lists a MAC hosted on ``host_id``."""
    if rule is None:
        return set()
    carriers = _carriers(rule, nodes)
    if host_id not in carriers:
        return set()  # a vNIC on a node without the rule is in no table
    return carriers - {host_id}


def _add_arp_readers(affected: Affected, rule: RuleView | None, host_id: int,
                     nodes: list[NodeView]) -> None:
    """A MAC on ``host_id`` changed: the other carriers of ``rule`` re-read its ARP table."""
    if rule is not None:
        _add(affected, _arp_readers(rule, host_id, nodes), frozenset({arp_group(rule.arp_file)}))


# --- per-model facts and effects ---------------------------------------------------------


def _vnic_state(vnic: Vnic) -> tuple:
    rule_id = (VirtualNetwork.objects.filter(pk=vnic.network_id)
               .values_list("overlay_rule_id", flat=True).first())
    return vnic_facts(vnic, rule_id)


def vnic_facts(vnic: Vnic, rule_id: int | None) -> tuple:
    """The facts of a vNIC that node files depend on, its network's rule given."""
    return (vnic.mac, vnic.ip, vnic.ip6, vnic.node_id, rule_id)


def _vnic_affected(_pk: int, before: tuple | None, after: tuple | None) -> Affected:
    affected: Affected = {}
    if before == after:
        return affected
    nodes = list(node_views())
    for state in (before, after):
        if state is None:
            continue
        _mac, _ip, _ip6, host_id, rule_id = state
        _add_arp_readers(affected, rule_view(rule_id), host_id, nodes)
    return affected


def _network_state(network: VirtualNetwork) -> tuple:
    return (network.overlay_rule_id,)


def _network_affected(network_id: int, before: tuple | None, after: tuple | None) -> Affected:
    # Subnets, VLAN and VXLAN ids appear in no node file. Only the rule matters,
    # and only for vNICs on the network (the model refuses that change anyway).
    affected: Affected = {}
    if before is None or after is None or before == after:
        return affected
    nodes = list(node_views())
    hosts = set(Vnic.objects.filter(network_id=network_id).values_list("node_id", flat=True))
    for rule in (rule_view(before[0]), rule_view(after[0])):
        for host in hosts:
            _add_arp_readers(affected, rule, host, nodes)
    return affected


def _rule_affected(_pk: int, before: RuleView | None, after: RuleView | None) -> Affected:
    affected: Affected = {}
    if before == after:
        return affected
    nodes = list(node_views())
    old = _carriers(before, nodes) if before else set()
    new = _carriers(after, nodes) if after else set()
    every = frozenset().union(*(rule_groups(s.arp_file) for s in (before, after) if s))
    if before is None or after is None:
        _add(affected, old | new, every)
        return affected
    arp = {arp_group(s.arp_file) for s in (before, after)}
    # Nodes that take the rule up or drop it: its line, its ipf blocks, its table.
    joined_or_left = old ^ new
    _add(affected, joined_or_left, every)
    tokens: set[str] = set()

    def differs(*names: str) -> bool:
        return any(getattr(before, n) != getattr(after, n) for n in names)

    if differs("name", "listen_ip", "port", "mtu", "arp_file"):
        tokens.add(USBKEY)
    if differs("port"):
        tokens.add(IPF_OVERLAYS)
    if differs("port", "listen_ip", "arp_file") or (joined_or_left & rule_hosts(after.id)):
        tokens |= arp  # entries of the rule change, or MACs of a joining/leaving node
    _add(affected, old & new, frozenset(tokens))
    return affected


def _admin_overlay_state(overlay: AdminOverlay) -> tuple:
    addressed = frozenset(AdminOverlayAddress.objects.filter(admin_overlay_id=overlay.pk)
                          .values_list("node_id", flat=True)) if overlay.pk else frozenset()
    return (overlay.overlay_rule_id, overlay.subnet, overlay.vxlan_id, overlay.vlan_id, addressed)


def _admin_overlay_affected(_pk: int, before: tuple | None, after: tuple | None
                            ) -> Affected:
    affected: Affected = {}
    if (before and before[:4]) == (after and after[:4]):
        return affected
    addressed = (before[4] if before else frozenset()) | (after[4] if after else frozenset())
    _add(affected, addressed, frozenset({USBKEY}))
    old_rule = before[0] if before else None
    new_rule = after[0] if after else None
    if old_rule != new_rule and addressed:
        nodes = list(node_views())
        for rule in (rule_view(old_rule), rule_view(new_rule)):
            for host in addressed:
                _add_arp_readers(affected, rule, host, nodes)
    return affected


def _address_state(address: AdminOverlayAddress) -> tuple:
    rule_id = (AdminOverlay.objects.filter(pk=address.admin_overlay_id)
               .values_list("overlay_rule_id", flat=True).first())
    return address_facts(address, rule_id)


def address_facts(address: AdminOverlayAddress, rule_id: int | None) -> tuple:
    """The facts of an admin overlay address that node files depend on, the rule given."""
    return (address.node_id, address.ip, address.mac, rule_id)


def _address_affected(_pk: int, before: tuple | None, after: tuple | None) -> Affected:
    return _addresses_affected([(before, after)])


def _addresses_affected(facts: Iterable[tuple[tuple | None, tuple | None]]) -> Affected:
    affected: Affected = {}
    changed = [(before, after) for before, after in facts if before != after]
    if not changed:
        return affected
    nodes = list(node_views())
    rules: dict[int | None, RuleView | None] = {}
    for before, after in changed:
        for state in (before, after):
            if state is None:
                continue
            host_id, _ip, _mac, rule_id = state
            if rule_id not in rules:
                rules[rule_id] = rule_view(rule_id)
            _add(affected, [host_id], frozenset({USBKEY}))
            _add_arp_readers(affected, rules[rule_id], host_id, nodes)
    return affected


def _firewall_state(fw: FirewallSettings) -> tuple:
    return (fw.enabled, tuple(fw.allowed_sources or ()))


def _firewall_affected(_pk: int, before: tuple | None, after: tuple | None) -> Affected:
    affected: Affected = {}
    was_on = bool(before and before[0])
    now_on = bool(after and after[0])
    nodes = node_views()
    if was_on != now_on:
        _add(affected, [n.id for n in nodes], frozenset({IPF_ADMIN}))
    elif now_on and before[1] != after[1]:
        _add(affected, [n.id for n in nodes if n.external_ip], frozenset({IPF_ADMIN}))
    return affected


def _node_state(node: Node) -> tuple:
    ssh = (node.ssh_host, node.ssh_port, node.ssh_user, node.ssh_host_key)
    return (node.hostname, node.pdc, node.admin_ip, node.external_ip, ssh)


def _host_key_changed(before: tuple | None, after: tuple | None) -> bool:
    """The pinned host key of an existing node changed: maybe it was reinstalled."""
    return before is not None and after is not None and before[4][3] != after[4][3]


def _node_affected(node_id: int, before: tuple | None, after: tuple | None) -> Affected:
    affected: Affected = {}
    if before == after:
        return affected
    nodes = list(node_views())
    others = [n for n in nodes if n.id != node_id]
    if after is None or (before is not None and before[0] != after[0]):
        # Deleted (its keys and address went with it) or renamed (rule node lists
        # and IPSec labels name it): everyone's files may change.
        _add(affected, [n.id for n in others], None)
        if after is not None:
            _add(affected, [node_id], None)
        return affected
    firewall_on = FirewallSettings.objects.filter(pk=1, enabled=True).exists()
    if before is None:
        _add(affected, [node_id], None)
        if firewall_on and after[3]:
            _add(affected, [n.id for n in others], frozenset({IPF_ADMIN}))
        return affected
    _hostname, old_pdc, old_admin, old_external, old_ssh = before
    _hostname, new_pdc, new_admin, new_external, new_ssh = after
    if old_ssh != new_ssh:
        # How to reach the node changed: a node that failed for its address or host key
        # gets its sync now instead of staying failed until someone acts.
        _add(affected, [node_id], None)
    hosted = [r for r in (rule_view(rule_id) for rule_id in hosted_rules(node_id)) if r]

    def arp_for(peers: Iterable[NodeView]) -> None:
        peers = list(peers)
        for rule in hosted:
            readers = _arp_readers(rule, node_id, nodes)
            _add(affected, [p.id for p in peers if p.id in readers],
                 frozenset({arp_group(rule.arp_file)}))

    if old_pdc != new_pdc:
        _add(affected, [node_id], None)
        moved_between = [n for n in others if n.pdc in (old_pdc, new_pdc)]
        _add(affected, [n.id for n in moved_between], frozenset({IPSEC}))
        arp_for(moved_between)
    if old_admin != new_admin:
        _add(affected, [node_id], frozenset({IPSEC}))
        arp_for(n for n in others if n.pdc == new_pdc)
    if old_external != new_external:
        _add(affected, [node_id], frozenset({IPSEC, IPF_OVERLAYS, IPF_ADMIN}))
        remote = [n for n in others if n.pdc != new_pdc]
        _add(affected, [n.id for n in remote], frozenset({IPSEC}))
        arp_for(remote)
        if firewall_on:
            _add(affected, [n.id for n in others], frozenset({IPF_ADMIN}))
    return affected


def vnics_written(facts: Iterable[tuple[tuple | None, tuple | None]], *, reason: str) -> None:
    """Many vNICs written at once (the state-file import): each affected node scheduled once.

    ``facts`` holds each vNIC's (before, after), as ``vnic_facts`` gives them (None: did not
    exist). The nodes are those ``tracking`` would find for each vNIC alone, computed with
    one read of the nodes and one per rule, whatever the number of vNICs.
    """
    hosts: set[tuple[int, int | None]] = set()  # (host, rule) pairs whose MACs changed
    for before, after in facts:
        if before != after:
            hosts.update((state[3], state[4]) for state in (before, after) if state is not None)
    if not hosts:
        return
    nodes = list(node_views())
    rules = {rule_id: rule_view(rule_id) for rule_id in {rule_id for _host, rule_id in hosts}}
    affected: Affected = {}
    for host_id, rule_id in sorted(hosts, key=lambda pair: (pair[0], pair[1] or 0)):
        _add_arp_readers(affected, rules[rule_id], host_id, nodes)
    schedule(affected, reason=reason)


def addresses_written(facts: Iterable[tuple[tuple | None, tuple | None]], *,
                      reason: str) -> None:
    """Many admin overlay addresses written at once: each affected node scheduled once.

    ``facts`` holds each address's (before, after) as ``address_facts`` gives them; the
    nodes are those ``tracking`` would find for each address alone, with one read of the
    nodes and one per rule.
    """
    schedule(_addresses_affected(facts), reason=reason)


def keys_changed(pairs: Iterable[tuple[int, int]], *, reason: str = "IPSec keys changed") -> None:
    """Keys of these node pairs were created, deleted or rotated: both ends' IPSec files."""
    affected: Affected = {}
    for a, b in pairs:
        _add(affected, (a, b), frozenset({IPSEC}))
    schedule(affected, reason=reason)


# --- tracking writes ----------------------------------------------------------------


def _label(obj: models.Model) -> str:
    return f"{obj._meta.verbose_name} {obj}"


# model -> (facts of one object that node files depend on, effect of a change of them)
TRACKED: dict[type[models.Model], tuple] = {
    Vnic: (_vnic_state, _vnic_affected),
    VirtualNetwork: (_network_state, _network_affected),
    OverlayRule: (rule_view_of, _rule_affected),
    AdminOverlay: (_admin_overlay_state, _admin_overlay_affected),
    AdminOverlayAddress: (_address_state, _address_affected),
    FirewallSettings: (_firewall_state, _firewall_affected),
    Node: (_node_state, _node_affected),
}


def affected_by(model: type[models.Model], pk: int, before: object, after: object) -> Affected:
    """Nodes (with file scopes) whose files change when an object goes from before to after.

    ``before``/``after`` are the object's facts (None: did not exist / deleted).
    """
    entry = TRACKED.get(model)
    return entry[1](pk, before, after) if entry else {}


@contextlib.contextmanager
def tracking(obj: models.Model, *, deleting: bool = False) -> Iterator[None]:
    """Around a save or delete of ``obj``: schedule syncs of the nodes whose files change."""
    model = type(obj)
    label = _label(obj)
    if isinstance(obj, IpsecKey):
        pair = (obj.node_a_id, obj.node_b_id)
        yield
        keys_changed([pair], reason=f"{label} {'deleted' if deleting else 'saved'}")
        return
    entry = TRACKED.get(model)
    if entry is None:
        yield
        return
    state = entry[0]
    stored = model.objects.filter(pk=obj.pk).first() if obj.pk is not None else None
    before = state(stored) if stored is not None else None
    pk = obj.pk
    yield
    pk = obj.pk if obj.pk is not None else pk  # Django clears the pk of a deleted object
    after = None if deleting else state(obj)
    verb = "deleted" if deleting else ("created" if before is None else "changed")
    # A new host key often means a reinstalled node: compare with the files it holds.
    verify = {pk} if model is Node and _host_key_changed(before, after) else set()
    schedule(affected_by(model, pk, before, after), reason=f"{label} {verb}", verify=verify)


# --- scheduling ----------------------------------------------------------------------


def auto_sync_enabled() -> bool:
    return settings.OVERLAY_AUTO_SYNC


class SyncBatch:
    """Sync requests collected together and written once, one request per node."""

    def __init__(self) -> None:
        self.requests: Affected = {}
        self.reasons: dict[int, list[str]] = {}
        self.verify: set[int] = set()
        self.staged: dict[int, list[str]] = {}  # automatic sync off: nodes no longer in sync
        # Every node whose files change, with the file groups, requested or staged: what the
        # state-file import renders before it commits.
        self.files: Affected = {}

    def add(self, affected: Affected, reason: str, *, verify: Iterable[int] = ()) -> None:
        for node_id, scope in affected.items():
            _add(self.requests, [node_id], scope)
            reasons = self.reasons.setdefault(node_id, [])
            if reason not in reasons:
                reasons.append(reason)
        self.verify.update(v for v in verify if v in affected)

    def stage(self, node_ids: Iterable[int], reason: str) -> None:
        for node_id in node_ids:
            reasons = self.staged.setdefault(node_id, [])
            if reason not in reasons:
                reasons.append(reason)

    def merge(self, other: SyncBatch) -> None:
        for node_id, scope in other.requests.items():
            for reason in other.reasons.get(node_id, []):
                self.add({node_id: scope}, reason)
        self.verify |= other.verify
        for node_id, reasons in other.staged.items():
            for reason in reasons:
                self.stage([node_id], reason)
        for node_id, scope in other.files.items():
            _add(self.files, [node_id], scope)

    def submit(self) -> None:
        """Write the requests to the outbox in the current transaction (the change's own);
        their tasks are queued once it commits (now, outside one).

        A broker that is down never breaks the caller's commit: the requests stay in the
        database and the reconcile queues them when it is back.
        """
        if self.staged:
            every = dict.fromkeys(r for reasons in self.staged.values() for r in reasons)
            stage(self.staged, reason=_join_reasons(list(every)))
        if self.requests:
            request_changes({
                node_id: Request(scope=scope, reason=_join_reasons(self.reasons[node_id]),
                                 verify=node_id in self.verify)
                for node_id, scope in self.requests.items()})


def _join_reasons(reasons: list[str]) -> str:
    text = "; ".join(reasons)
    if len(text) <= 200:
        return text
    return f"{reasons[0]}; and {len(reasons) - 1} more changes"


_open = threading.local()  # .batches: the batches open in this thread, innermost last


def _open_batches() -> list[SyncBatch]:
    if not hasattr(_open, "batches"):
        _open.batches = []
    return _open.batches


@contextlib.contextmanager
def batch() -> Iterator[SyncBatch]:
    """Collect the sync requests of the writes inside; write them once, at the end.

    Nestable: an inner batch hands its requests to the outer one, which writes them.
    Leaving with an exception drops the batch's requests (its writes are rolled back
    with the transaction around them). Put it inside the transaction it belongs to:
    the requests are then committed with the change, and queued after the commit.
    """
    stack = _open_batches()
    current = SyncBatch()
    stack.append(current)
    try:
        yield current
    finally:
        stack.pop()
    # Reached only when the block completed: an exception skipped the hand-over.
    if stack:
        stack[-1].merge(current)
    else:
        current.submit()


def schedule(affected: Affected, *, reason: str, verify: Iterable[int] = ()) -> None:
    """Sync these nodes: requested with the current batch, or this transaction.

    ``verify``: nodes whose sync compares with the files on them (a new host key).
    With automatic sync off the nodes are only marked pending (``overlay update``).
    """
    if not affected:
        logger.debug("%s: no node file changes", reason)
        return
    stack = _open_batches()
    current = stack[-1] if stack else SyncBatch()
    for node_id, scope in affected.items():
        _add(current.files, [node_id], scope)
    if not auto_sync_enabled():
        logger.info("%s: %d node(s) affected; automatic sync is off (OVERLAY_AUTO_SYNC): "
                    "marked pending until 'overlay update'", reason, len(affected))
        current.stage(affected, reason)
    else:
        logger.info("%s: sync of %d node(s) scheduled", reason, len(affected))
        current.add(affected, reason, verify=verify)
    if not stack:
        current.submit()
