"""Which rows a write locks: decided here, for every model, and taken before validation.

A model's ``clean()`` checks rules across rows (a vDC's network limit and id ranges, a MAC
once per overlay rule, an address once per network and inside its subnet, one segment per
(rule, VXLAN, VLAN), the admin overlay's addresses, ports and ARP files once per rule). Two
writes validated at the same time would each pass and break the rule together. So every
write first locks the rows its validation depends on, inside its transaction
(``overlays.services.rows`` calls ``lock_for_write``), and validates after the wait with
what is committed then:

==========================  ===============================================================
write of                    locks
==========================  ===============================================================
vDC                         its row (networks count against its limit and ranges)
overlay rule                "overlay rules" (ports, ARP files, names), its row
virtual network             its vDC, its row, its rule (segments, MACs across the rule)
vNIC                        its network, the network's rule; its node against deletion
admin overlay               "admin overlay" (there is one), its rule, its row
admin overlay address       "admin overlay" (free addresses), the rule, the overlay; the
                            node against deletion
node                        "IPSec pairs" when created, deleted, renamed or moved to another
                            PDC (``reconcile_ipsec_keys`` takes it too); its row when deleted
==========================  ===============================================================

A write locks the parents it is being written into; the ones it leaves need no lock
(leaving never breaks a limit or a uniqueness). Rows are locked model by model in
``ROW_ORDER`` and named locks before any row, so two writes never wait for each other in a
circle. The locked rows replace the object's cached parents, so validation never sees a
parent as it was before the wait.

On PostgreSQL the rows are locked with ``SELECT ... FOR UPDATE``, a node "against deletion"
with ``FOR KEY SHARE`` (its delete waits, the distribution's status updates do not), and the
named locks are transaction-scoped advisory locks. SQLite has neither and needs none: its write
transactions start with ``BEGIN IMMEDIATE`` (see ``config/settings.py``), one at a time.
Unique columns are database constraints too; ``rows`` turns a violation that still slips
through into the model's own sentence.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable

from django.db import connection, models

from nodes.models import Node
from overlays.models import AdminOverlay, AdminOverlayAddress, OverlayRule, VirtualNetwork, Vnic
from vdc.models import Vdc


class Named(enum.Enum):
    """Locks on a rule over a whole table, where no parent row exists to lock."""

    OVERLAY_RULES = "overlay rules"
    ADMIN_OVERLAY = "admin overlay"
    IPSEC_PAIRS = "IPSec pairs"

    @property
    def key(self) -> int:
        """The advisory lock's 64-bit key: stable across processes and releases."""
        digest = hashlib.blake2b(f"overlays:{self.value}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)


# Rows are locked in this order of models (by primary key within one model).
ROW_ORDER: tuple[type[models.Model], ...] = (Vdc, VirtualNetwork, OverlayRule, AdminOverlay,
                                             Node)


def lock_named(*names: Named) -> None:
    """Take named locks until the transaction ends (PostgreSQL; elsewhere writes are serial)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for name in sorted(names, key=lambda n: n.key):
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [name.key])


def pairs_may_change(node: Node) -> bool:
    """Whether saving ``node`` may change which pairs need a key: new, renamed or moved."""
    if node.pk is None:
        return True
    stored = Node.objects.filter(pk=node.pk).values_list("hostname", "pdc").first()
    return stored != (node.hostname, node.pdc)


def lock_for_write(obj: models.Model, *, deleting: bool = False,
                   fresh_parents: bool = True) -> None:
    """Lock what validating and writing ``obj`` depends on; call inside its transaction.

    ``fresh_parents=False`` keeps the parents the caller attached (an admin overlay being
    renumbered, not saved yet): they are still locked.
    """
    locker = _Locker()
    if isinstance(obj, Vdc):
        locker.row(Vdc, obj.pk)
    elif isinstance(obj, OverlayRule):
        lock_named(Named.OVERLAY_RULES)
        locker.row(OverlayRule, obj.pk)
    elif isinstance(obj, VirtualNetwork):
        vdc = locker.row(Vdc, obj.vdc_id)
        locker.row(VirtualNetwork, obj.pk)
        rule = locker.row(OverlayRule, obj.overlay_rule_id)
        if fresh_parents and not deleting:
            _attach(obj, "vdc", vdc)
            _attach(obj, "overlay_rule", rule)
    elif isinstance(obj, Vnic):
        network = locker.row(VirtualNetwork, obj.network_id)
        rule = locker.row(OverlayRule, network.overlay_rule_id if network else None)
        locker.row(Node, obj.node_id, key_share=True)
        if network is not None:
            _attach(network, "overlay_rule", rule)
        if fresh_parents and not deleting:
            _attach(obj, "network", network)
    elif isinstance(obj, AdminOverlay):
        lock_named(Named.ADMIN_OVERLAY)
        rule = locker.row(OverlayRule, obj.overlay_rule_id)
        locker.row(AdminOverlay, obj.pk)
        if fresh_parents and not deleting:
            _attach(obj, "overlay_rule", rule)
    elif isinstance(obj, AdminOverlayAddress):
        lock_named(Named.ADMIN_OVERLAY)
        rule_id = (AdminOverlay.objects.filter(pk=obj.admin_overlay_id)
                   .values_list("overlay_rule_id", flat=True).first())
        rule = locker.row(OverlayRule, rule_id)
        overlay = locker.row(AdminOverlay, obj.admin_overlay_id)
        locker.row(Node, obj.node_id, key_share=True)
        if overlay is not None:
            _attach(overlay, "overlay_rule", rule)
        if fresh_parents and not deleting:
            _attach(obj, "admin_overlay", overlay)
    elif isinstance(obj, Node):
        if deleting or pairs_may_change(obj):
            lock_named(Named.IPSEC_PAIRS)
        if deleting:  # before Django looks for the vNICs that protect it
            locker.row(Node, obj.pk)


def lock_for_vnic_writes(network_ids: Iterable[int], node_ids: Iterable[int]) -> None:
    """Lock what writing many vNICs at once depends on, as ``lock_for_write`` does for one.

    For a batch (the state-file import): the networks, their rules (a MAC once per rule),
    and the nodes against deletion, each model in one statement, in ``ROW_ORDER``. Call it
    before reading the rows the batch is validated against.
    """
    network_ids = sorted(set(network_ids))
    networks = _lock_rows(VirtualNetwork, network_ids)
    _lock_rows(OverlayRule, sorted({network.overlay_rule_id for network in networks}))
    lock_nodes_against_deletion(node_ids)


def lock_nodes_against_deletion(node_ids: Iterable[int]) -> None:
    """Hold these nodes until the transaction ends (their delete waits, status updates do
    not): rows about to be written for many nodes at once, in one statement."""
    node_ids = sorted(set(node_ids))
    if node_ids and connection.vendor == "postgresql":  # the ORM has no FOR KEY SHARE
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT 1 FROM {quote(Node._meta.db_table)} "  # noqa: S608
                           f"WHERE {quote(Node._meta.pk.column)} = ANY(%s) "
                           f"ORDER BY {quote(Node._meta.pk.column)} FOR KEY SHARE", [node_ids])


def _lock_rows(model: type[models.Model], pks: list[int]) -> list[models.Model]:
    if not pks:
        return []
    return list(model._default_manager.select_for_update().filter(pk__in=pks).order_by("pk"))


class _Locker:
    """Locks rows one at a time, refusing to go back in ``ROW_ORDER``."""

    def __init__(self) -> None:
        self.position = 0

    def row(self, model: type[models.Model], pk: int | None, *,
            key_share: bool = False) -> models.Model | None:
        """Lock one row and return it as it is now; ``key_share``: only against deletion."""
        position = ROW_ORDER.index(model)
        if position < self.position:
            raise AssertionError(f"{model.__name__} rows are locked before "
                                 f"{ROW_ORDER[self.position].__name__} rows (ROW_ORDER).")
        self.position = position
        if pk is None:
            return None
        if key_share:
            if connection.vendor == "postgresql":  # the ORM has no FOR KEY SHARE
                quote = connection.ops.quote_name
                with connection.cursor() as cursor:
                    cursor.execute(f"SELECT 1 FROM {quote(model._meta.db_table)} "  # noqa: S608
                                   f"WHERE {quote(model._meta.pk.column)} = %s FOR KEY SHARE",
                                   [pk])
            return None
        return model._default_manager.select_for_update().filter(pk=pk).first()


def _attach(obj: models.Model, field_name: str, parent: models.Model | None) -> None:
    """Make the locked row ``obj``'s cached parent, if it is the one ``obj`` points at."""
    field = obj._meta.get_field(field_name)
    if parent is not None and getattr(obj, field.attname) == parent.pk:
        field.set_cached_value(obj, parent)
