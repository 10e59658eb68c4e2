"""IPSec pair keys: created and dropped when nodes change, rotated on request.

Key reconciliation runs inside the write that changes which pairs need a key (a node
created, deleted, renamed or moved to another PDC: see ``overlays.services.writes``),
never inside a sync.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from core.bulk_audit import log_bulk_writes
from nodes.models import Node
from overlays import changes, secretbox
from overlays.generators import required_key_pairs
from overlays.models import IpsecKey
from overlays.services.locking import Named, lock_named
from overlays.snapshot import ClusterSnapshot, NodeView


@transaction.atomic
def reconcile_ipsec_keys() -> tuple[int, int]:
    """Create keys for pairs that newly need one, delete keys of pairs that no longer do.

    Returns (created, deleted). Existing keys are kept, so re-running changes nothing.
    Node writes call it (``save``, ``delete``); on its own it repairs a database
    written around the services. Runs under the "IPSec pairs" lock, which node writes that
    change pairs take before writing: each run sees the nodes the others committed.
    """
    lock_named(Named.IPSEC_PAIRS)
    rows = {node.pk: node for node in Node.objects.only("id", "hostname", "pdc")}
    nodes = tuple(NodeView(id=node.pk, hostname=node.hostname, pdc=node.pdc, admin_ip=None,
                           admin_netmask=None, external_ip=None) for node in rows.values())
    needed = required_key_pairs(ClusterSnapshot(nodes=nodes, rules=()))
    existing = {(a, b): pk for pk, a, b in IpsecKey.objects.values_list("id", "node_a_id",
                                                                        "node_b_id")}
    stale = [pk for pair, pk in existing.items() if pair not in needed]
    IpsecKey.objects.filter(pk__in=stale).delete()
    new_keys = []
    for a, b in sorted(needed - existing.keys()):
        # The nodes themselves, not their ids: the audit entry names both hosts, which
        # would otherwise cost two queries per key (26,000 on a first 200-node import).
        key = IpsecKey(node_a=rows[a], node_b=rows[b])
        key.secret = secretbox.new_preshared_key()
        new_keys.append(key)
    IpsecKey.objects.bulk_create(new_keys)
    log_bulk_writes(IpsecKey, created=new_keys)  # who and when; never the secret
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


@transaction.atomic
def adopt_pair_keys(keys: dict[tuple[str, str], str]) -> int:
    """Store keys both ends of a pair already hold (issue 11: adopting re-keys nothing).

    ``keys`` maps two host names to the hex key read from both nodes' ike.preshared.
    Pairs get their key reconciled first, so only pairs that need one are stored;
    a key equal to the stored one is left alone. Returns how many keys were written.
    """
    reconcile_ipsec_keys()
    secretbox.ensure_secrets_readable()
    ids = dict(Node.objects.filter(hostname__in={h for pair in keys for h in pair})
               .values_list("hostname", "id"))
    changed = []
    for (host_a, host_b), secret in sorted(keys.items()):
        if host_a not in ids or host_b not in ids:
            continue
        a, b = sorted((ids[host_a], ids[host_b]))
        key = IpsecKey.objects.select_for_update().filter(node_a_id=a, node_b_id=b).first()
        if key is None or key.secret == secret:
            continue
        key.secret = secret
        key.save(update_fields=["secret_encrypted"])
        changed.append((a, b))
    if changed:
        changes.keys_changed(changed, reason="IPSec keys adopted")
    return len(changed)
