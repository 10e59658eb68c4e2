"""One node's sync pass, the loop that drains a node's requests, several nodes at once.

A pass (``sync_once``) of one node:

1. loads the cluster snapshot once and renders the node's files, or only the
   groups its scope names (``plan``); a node that is not in sync always gets a
   full pass, whatever the scope;
2. compares their hashes with the ones recorded in ``DeployedFile``; a pass
   that finds nothing to do records a "no-change" deployment without contacting
   the node;
3. otherwise opens ONE connection to the node and applies the plan (``apply``);
4. records (``record_deployment``) the hashes of the files uploaded *and* applied, a
   ``Deployment`` (paths and hashes, never contents: the IPSec files hold keys)
   and the node's sync status, in one transaction.

A pass writes nothing else: IPSec pair keys and node facts are domain data,
written by ``overlays.services`` when the data that needs them changes.

A node that is not online is skipped and marked pending; transient SSH
failures mark it pending (retried) or unreachable (final attempt); host-key and
authentication failures are never retried.

``run_sync`` serialises passes per node and drains coalesced requests
(``coordination``); ``sync_many`` runs it for several nodes, ``jobs`` at a time.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction
from django.utils import timezone

from nodes.models import (
    DeployedFile,
    Deployment,
    DeploymentResult,
    Node,
    NodeStatus,
    SyncStatus,
)
from nodes.transports import AuthenticationError, HostKeyError, TransportError, open_transport
from overlays.distribution.apply import ApplyOutcome, apply_plan
from overlays.distribution.coordination import coordination
from overlays.distribution.plan import Plan, plan_node
from overlays.filegroups import Scope, describe_scope
from overlays.selectors import load_snapshot, node_paths

logger = logging.getLogger(__name__)


@dataclass
class PassResult:
    """The outcome of ``sync_once``: the deployment recorded and whether to retry."""

    deployment: Deployment | None
    plan: Plan | None = None
    retryable: bool = False

    @property
    def result(self) -> str:
        return self.deployment.result if self.deployment else "gone"


def record_deployment(node: Node, *, started: datetime, reason: str, scope: Scope,
                      result: str, error: str = "", outcome: ApplyOutcome | None = None,
                      sync_status: str | None = None, message: str = "",
                      **node_fields: object) -> Deployment:
    """Record the pass: deployed hashes, the deployment and the node's sync status, at once.

    One transaction, so nobody sees the node in sync without its deployment. The
    node is updated with a queryset update of these columns only: it never races
    a refresh or an edit of the node's other fields, and triggers nothing.
    """
    outcome = outcome or ApplyOutcome()
    now = timezone.now()
    with transaction.atomic():
        for path, digest in outcome.applied.items():
            DeployedFile.objects.update_or_create(
                node=node, path=path, defaults={"sha256": digest, "deployed_at": now})
        if outcome.forgotten:
            DeployedFile.objects.filter(node=node, path__in=outcome.forgotten).delete()
        if sync_status is not None:
            Node.objects.filter(pk=node.pk).update(sync_status=sync_status,
                                                   sync_message=message[:2000], **node_fields)
        return Deployment.objects.create(
            node=node, started_at=started, finished_at=now, reason=reason[:255],
            scope=describe_scope(scope), result=result, error=error[:4000],
            files_changed=outcome.files_changed, commands=outcome.commands)


def sync_once(node_id: int, *, scope: Scope = None, reason: str = "", verify: bool = False,
              final_attempt: bool = True) -> PassResult:
    """One synchronisation pass of one node (the caller holds the node's lock).

    ``final_attempt`` False means a transient SSH failure will be retried: the
    node is then marked with the failure but not given up on.
    """
    started = timezone.now()
    node = Node.objects.filter(pk=node_id).first()
    if node is None:
        logger.info("sync of node %s: the node no longer exists", node_id)
        return PassResult(deployment=None)

    def record(result: str, **fields: object) -> Deployment:
        return record_deployment(node, started=started, reason=reason, scope=scope,
                                 result=result, **fields)

    if node.sync_status != SyncStatus.IN_SYNC and scope is not None:
        logger.info("sync %s: node is %s, so every file is checked, not only %s",
                    node.hostname, node.sync_status, describe_scope(scope))
        scope = None
    if node.status != NodeStatus.ONLINE:
        message = (f"node is {node.status}; its files are pushed when a refresh finds it "
                   "online")
        logger.info("sync %s: skipped, %s", node.hostname, message)
        if node.sync_status == SyncStatus.FAILED:  # keep the reason it failed for
            return PassResult(deployment=record(
                DeploymentResult.SKIPPED,
                error=f"{message} (last failure: {node.sync_message})"))
        return PassResult(deployment=record(DeploymentResult.SKIPPED, error=message,
                                            sync_status=SyncStatus.PENDING, message=message))
    snapshot = load_snapshot()
    view = snapshot.nodes_by_id.get(node_id)
    if view is None:  # deleted between the two reads
        return PassResult(deployment=None)
    deployed = dict(DeployedFile.objects.filter(node_id=node_id).values_list("path", "sha256"))
    try:
        plan = plan_node(snapshot, view, scope=scope, deployed=deployed, paths=node_paths())
    except ValueError as exc:  # a rule the generators cannot render
        message = f"cannot render the files of {node.hostname}: {exc}"
        logger.error("sync %s: %s", node.hostname, message)
        return PassResult(deployment=record(DeploymentResult.FAILED, error=message,
                                            sync_status=SyncStatus.FAILED, message=message))
    logger.info("sync %s (%s): %d file(s) considered, %d changed, %d no longer desired%s",
                node.hostname, describe_scope(scope), len(plan.considered), len(plan.changes),
                len(plan.stale), "; verifying against the node" if verify else "")
    if plan.up_to_date and not verify:
        return PassResult(plan=plan, deployment=record(DeploymentResult.NO_CHANGE,
                                                       sync_status=SyncStatus.IN_SYNC))

    connected = False
    try:
        with open_transport(node.ssh_address) as transport:
            connected = True
            outcome = apply_plan(plan, transport, verify=verify)
    except TransportError as exc:
        outcome = ApplyOutcome(error=str(exc), exception=exc)
    except ImproperlyConfigured as exc:
        outcome = ApplyOutcome(error=str(exc))

    if not outcome.failed:
        changed = bool(outcome.files_changed or outcome.commands)
        result = DeploymentResult.OK if changed else DeploymentResult.NO_CHANGE
        logger.info("sync %s: %s, %d file(s) written, %d command(s) run", node.hostname, result,
                    len(outcome.files_changed), len(outcome.commands))
        return PassResult(plan=plan, deployment=record(result, outcome=outcome,
                                                       sync_status=SyncStatus.IN_SYNC))

    exc = outcome.exception
    retryable = isinstance(exc, TransportError) and exc.retryable
    unreachable = retryable and not connected
    status: dict[str, object] = {"sync_status": SyncStatus.FAILED}
    if isinstance(exc, HostKeyError | AuthenticationError):
        message = f"not retried: {outcome.error}"
    elif unreachable and not final_attempt:
        message = f"node unreachable, retrying: {outcome.error}"
        status["sync_status"] = SyncStatus.PENDING
    elif unreachable:
        message = (f"node unreachable: {outcome.error}; marked unreachable, its files are "
                   "pushed when a refresh finds it online")
        status.update(sync_status=SyncStatus.PENDING, status=NodeStatus.UNREACHABLE)
    elif retryable and not final_attempt:
        message = f"interrupted, retrying: {outcome.error}"
    else:
        message = outcome.error
    logger.warning("sync %s failed: %s", node.hostname, message)
    deployment = record(DeploymentResult.FAILED, error=message, outcome=outcome,
                        message=message, **status)
    return PassResult(plan=plan, deployment=deployment,
                      retryable=retryable and not final_attempt)


@dataclass
class RunOutcome:
    """What ``run_sync`` did: ran passes ("done"), left them to the lock holder
    ("coalesced"), or stopped on a transient failure that should be retried ("retry")."""

    status: str
    passes: list[PassResult] = field(default_factory=list)

    def summary(self) -> dict:
        return {"status": self.status,
                "results": [p.result for p in self.passes],
                "deployments": [p.deployment.pk for p in self.passes if p.deployment]}


def run_sync(node_id: int, *, scope: Scope = None, reason: str = "", verify: bool = False,
             final_attempt: bool = True, record: bool = True) -> RunOutcome:
    """Record a sync request for the node and, unless a sync already runs, drain requests.

    ``record`` False: the request was recorded by a trigger already.
    """
    store = coordination()
    store.clear_queued(node_id)
    if record:
        store.mark(node_id, scope, reason, verify)
    passes: list[PassResult] = []
    while True:
        lock = store.lock(node_id)
        if not lock.acquire():
            logger.info("sync of node %s already running elsewhere; request merged into it",
                        node_id)
            return RunOutcome("coalesced" if not passes else "done", passes)
        try:
            while (request := store.pop(node_id)) is not None:
                lock.extend()
                result = sync_once(node_id, scope=request.scope, reason=request.reason,
                                   verify=request.verify, final_attempt=final_attempt)
                passes.append(result)
                if result.retryable:
                    store.mark(node_id, request.scope, request.reason, request.verify)
                    return RunOutcome("retry", passes)
        finally:
            lock.release()
        # A request that arrived after the last pop but while we held the lock found
        # the lock taken and left only its mark: take it, unless someone else does.
        if not store.pending(node_id):
            return RunOutcome("done", passes)


def retry_delay(retries: int) -> float:
    """Exponential backoff with jitter: base, 2x base, 4x base, ... at most 5 minutes."""
    base = settings.OVERLAY_SYNC_RETRY_BACKOFF
    delay = min(base * (2 ** retries), 300.0)
    return round(delay * random.uniform(0.8, 1.2), 3)  # noqa: S311 - jitter, not security


def sync_many(node_ids: Iterable[int], *, scope: Scope = None, reason: str = "",
              verify: bool = False, jobs: int = 1) -> dict[int, RunOutcome]:
    """Sync several nodes in this process, ``jobs`` at a time (threads; one SSH
    connection and one database connection per thread)."""
    ids = list(node_ids)

    def one(node_id: int) -> RunOutcome:
        try:
            return run_sync(node_id, scope=scope, reason=reason, verify=verify)
        finally:
            if jobs > 1:
                connections.close_all()  # this thread's connections only

    if jobs <= 1 or len(ids) <= 1:
        return {node_id: one(node_id) for node_id in ids}
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="sync") as pool:
        return dict(zip(ids, pool.map(one, ids), strict=True))
