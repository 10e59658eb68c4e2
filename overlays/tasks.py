"""Celery tasks that write domain data: refreshing nodes' facts.

``refresh_node`` reads a node over SSH (``overlays.distribution.refresh``),
records what it says through the services (whose change tracking schedules the
syncs of the nodes whose files depend on it), and catches the node up
(``overlays.distribution.queue.request_sync``) when it is online but not in
sync. ``refresh_all`` runs every ``OVERLAY_REFRESH_INTERVAL`` seconds (default
300) under ``celery beat``: it is how nodes that were down are noticed when they
return. The sync tasks themselves, and the periodic reconcile that queues again any
sync whose message was lost, live in ``overlays.distribution.queue``.

Imports the services, the distribution and the models; nothing imports it but
the UI layer (commands, API, admin) and Celery.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from celery import shared_task
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError

from nodes.facts import FactsError
from nodes.models import Node, NodeStatus, SyncStatus
from nodes.transports import AuthenticationError, HostKeyError, TransportError
from overlays import secretbox, services
from overlays.distribution.probe import probe_nodes
from overlays.distribution.queue import request_sync
from overlays.distribution.refresh import read_node_facts
from overlays.distribution.run import sync_many
from overlays.filegroups import IPSEC
from overlays.models import IpsecKey
from overlays.services.rotation import RotationReport, pushed_nodes, rotate_pairs, select_keys

logger = logging.getLogger(__name__)

REFRESH_NODE = "overlays.refresh_node"
REFRESH_ALL = "overlays.refresh_all"
ROTATE_OLD_KEYS = "overlays.rotate_old_keys"


@dataclass
class RefreshResult:
    hostname: str
    ok: bool
    changed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str = ""
    sync_requested: bool = False


def run_refresh(node_id: int) -> RefreshResult:
    """Read the node over SSH, record its facts and status; catch it up when it is back.

    An online node that is not in sync (pending, failed or never synced) gets a
    sync requested.
    """
    node = Node.objects.filter(pk=node_id).first()
    if node is None:
        return RefreshResult(hostname=f"#{node_id}", ok=False, error="no such node")
    try:
        facts = read_node_facts(node)
    except (HostKeyError, AuthenticationError) as exc:
        message = f"refresh refused: {exc}"
        logger.warning("refresh %s: %s", node.hostname, message)
        services.record_node_unreachable(node, message, refused=True)
        return RefreshResult(hostname=node.hostname, ok=False, error=message)
    except (TransportError, ImproperlyConfigured) as exc:
        logger.warning("refresh %s: unreachable: %s", node.hostname, exc)
        services.record_node_unreachable(node, str(exc), refused=False)
        return RefreshResult(hostname=node.hostname, ok=False, error=str(exc))
    except FactsError as exc:
        logger.warning("refresh %s: %s", node.hostname, exc)
        return RefreshResult(hostname=node.hostname, ok=False, error=str(exc))
    try:
        recorded = services.record_node_facts(node, facts)
    except ValidationError as exc:
        message = "; ".join(exc.messages)
        logger.warning("refresh %s: facts not recorded: %s", node.hostname, message)
        return RefreshResult(hostname=node.hostname, ok=False, error=message)
    result = RefreshResult(hostname=node.hostname, ok=True, changed=recorded.changed,
                           warnings=recorded.warnings)
    if {"pdc", "admin_ip", "external_ip"} & set(result.changed):
        logger.info("refresh %s: %s changed", node.hostname, ", ".join(result.changed))
    for warning in result.warnings:
        logger.warning("refresh %s: %s", node.hostname, warning)
    node.refresh_from_db(fields=["status", "sync_status"])
    if node.status == NodeStatus.ONLINE and node.sync_status != SyncStatus.IN_SYNC:
        logger.info("refresh %s: node is online and %s; catching it up", node.hostname,
                    node.sync_status)
        request_sync(node.pk, scope=None, reason=f"refresh found the node online "
                                                 f"({node.get_sync_status_display()})")
        result.sync_requested = True
    logger.info("refresh %s: ok%s", node.hostname,
                f", changed {', '.join(result.changed)}" if result.changed else ", no change")
    return result


@shared_task(acks_late=True, reject_on_worker_lost=True, name=REFRESH_NODE)
def refresh_node(node_id: int) -> dict:
    """Read one node (sysinfo, NIC tags, loaded rules, default route) and record it."""
    return asdict(run_refresh(node_id))


@shared_task(name=REFRESH_ALL)
def refresh_all() -> list[int]:
    """Queue a refresh of every node; returns their ids."""
    node_ids = list(Node.objects.order_by("hostname").values_list("id", flat=True))
    for node_id in node_ids:
        refresh_node.delay(node_id)
    logger.info("refresh of %d node(s) queued", len(node_ids))
    return node_ids


# --- coordinated key rotation (issue 10) ---------------------------------------------------


def rotate_keys(keys: list[IpsecKey], *, requested_by: str, entry_point: str,
                now: bool = False, jobs: int = 1) -> RotationReport:
    """Probe both ends of each pair, rotate the pairs whose ends both answer, push them.

    The pairs with an end that does not answer keep their key (recorded "deferred"). The
    new keys reach both ends of a pair in one batch: their IPSec files are requested in
    the rotation's own transaction, and pushed at once (``now``: from this process right
    after the probe, waiting for both ends, as the command line and the periodic task do;
    otherwise queued, even with automatic syncs off, as the API and the pages do: a web
    request does not wait for SSH; ``jobs``: nodes pushed at once when ``now``). Only the
    IPSec file group is pushed, whose reload refreshes the policy and in.iked without
    flushing any security association.
    """
    secretbox.ensure_secrets_readable()
    keys = list(keys)
    if not keys:
        return RotationReport()
    node_ids = {k.node_a_id for k in keys} | {k.node_b_id for k in keys}
    reachable = probe_nodes(Node.objects.filter(pk__in=node_ids))
    report = rotate_pairs(keys, unreachable=reachable, requested_by=requested_by,
                          entry_point=entry_point)
    targets = pushed_nodes(report)
    scope = frozenset({IPSEC})
    if targets and now:
        sync_many(targets, scope=scope, reason="IPSec key rotated", jobs=max(1, jobs))
    else:
        for node_id in targets:
            request_sync(node_id, scope=scope, reason="IPSec key rotated")
    return report


@shared_task(name=ROTATE_OLD_KEYS)
def rotate_old_keys() -> dict:
    """Rotate every key older than OVERLAY_KEY_MAX_AGE_DAYS (0: off); under celery beat.

    A pair deferred because an end was down is still old at the next run, and tried again.
    """
    max_age = settings.OVERLAY_KEY_MAX_AGE_DAYS
    if max_age <= 0:
        return {"rotated": 0, "deferred": 0, "pairs": []}
    keys = select_keys(every=True, older_than_days=max_age)
    report = rotate_keys(keys, requested_by="celery beat", entry_point="beat", now=True)
    logger.info("periodic key rotation (older than %g days): %d rotated, %d deferred",
                max_age, len(report.done), len(report.deferred))
    return report.as_dict()
