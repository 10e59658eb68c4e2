"""One node's sync pass, the loop that drains a node's requests, several nodes at once.

A pass (``sync_once``) of one node:

1. reads the node (its desired generation first), then loads the cluster snapshot once
   and renders the node's files, or only the groups its request names (``plan``); a node
   that is not in sync, or one with changes older than the request, gets a full pass;
2. compares their hashes with the ones recorded in ``DeployedFile``; a pass that finds
   nothing to do records a "no-change" deployment without contacting the node;
3. otherwise opens ONE connection to the node, removes temporary files earlier uploads
   left behind, and applies the plan (``apply``);
4. records (``record_deployment``) the hashes of the files uploaded *and* applied, a
   ``Deployment`` (paths and hashes, never contents: the IPSec files hold keys), the
   generation it deployed, the node's sync status and, for a completed pass, the removal
   of the outbox request it carried out, in one transaction. "In sync" is
   written only by a conditional update that finds no newer desired generation: a change
   that committed while the pass ran leaves the node pending.

A pass writes nothing else: IPSec pair keys and node facts are domain data, written by
``overlays.services`` when the data that needs them changes. The one exception is
connection bookkeeping: the local address the pass's SSH connection left from
(``learn_management_source``), which every allow-list lets in (issue 10's guards).

A node that is not online is skipped and marked pending; transient SSH failures mark it
pending (retried) or unreachable (final attempt); host-key and authentication failures
are never retried.

``run_sync`` holds the node's lock (``coordination``) and drains the node's pending
request (``outbox``) until none is left; the request is removed only after a pass that
completed. ``sync_many`` runs the syncs of several nodes here, ``jobs`` at a time, and
always does the work: it waits for a lock held elsewhere (a dead worker's lease runs out
within seconds) instead of leaving the work to its holder.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connections, transaction
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Greatest
from django.utils import timezone

from nodes.models import (
    DeployedFile,
    Deployment,
    DeploymentResult,
    Node,
    NodeStatus,
    RollbackHold,
    SyncStatus,
)
from nodes.transports import AuthenticationError, HostKeyError, TransportError, open_transport
from overlays.distribution import outbox
from overlays.distribution.apply import ApplyOutcome, apply_plan
from overlays.distribution.batch import SharedSnapshot
from overlays.distribution.coordination import coordination
from overlays.distribution.outbox import Claim, Request
from overlays.distribution.plan import Plan, plan_node
from overlays.filegroups import IPF_ADMIN, Scope, describe_scope
from overlays.generators.ipf import management_sources as management_source_list
from overlays.models import FirewallSettings
from overlays.models.management import management_sources
from overlays.selectors import load_snapshot, node_paths
from overlays.snapshot import FirewallView

logger = logging.getLogger(__name__)

COMPLETED = (DeploymentResult.OK, DeploymentResult.NO_CHANGE)
NEWER_CHANGES_ARRIVED = "newer changes arrived during the sync; the next pass pushes them"


@dataclass
class PassResult:
    """The outcome of ``sync_once``: the deployment recorded and whether to retry."""

    deployment: Deployment | None
    plan: Plan | None = None
    retryable: bool = False
    # Whether the completed pass removed the request it carried out, in its deployment's
    # transaction (False: more was merged into it meanwhile); None: it removed nothing.
    consumed: bool | None = None

    @property
    def result(self) -> str:
        return self.deployment.result if self.deployment else "gone"

    @property
    def completed(self) -> bool:
        """The node holds what the pass meant to deploy (or the node is gone)."""
        return self.deployment is None or self.deployment.result in COMPLETED


def record_deployment(node: Node, *, started: datetime, reason: str, scope: Scope,
                      result: str, error: str = "", outcome: ApplyOutcome | None = None,
                      sync_status: str | None = None, message: str = "",
                      generation: int | None = None, consume: Claim | None = None,
                      **node_fields: object) -> tuple[Deployment, bool]:
    """Record the pass: deployed hashes, the deployment and the node's sync status, at once.

    One transaction, so nobody sees the node in sync without its deployment. The node is
    updated with queryset updates of these columns only: it never races a refresh or an
    edit of the node's other fields, and triggers nothing. ``generation``: the desired
    generation the pass deployed completely; ``in_sync`` is then written only if the node
    has no newer one (a change committed meanwhile), else the node stays pending.
    ``consume``: the outbox request a completed pass carried out, removed in the same
    transaction (one commit, and never a recorded pass whose request is still pending);
    returns whether it was removed.
    """
    outcome = outcome or ApplyOutcome()
    now = timezone.now()
    with transaction.atomic():
        # One upsert for every file (a full sync writes about ten).
        DeployedFile.objects.bulk_create(
            [DeployedFile(node=node, path=path, sha256=digest, deployed_at=now)
             for path, digest in outcome.applied.items()],
            update_conflicts=True, unique_fields=["node", "path"],
            update_fields=["sha256", "deployed_at"])
        if outcome.forgotten:
            DeployedFile.objects.filter(node=node, path__in=outcome.forgotten).delete()
        # The node in one statement: the generation deployed, and "in sync" only when no
        # newer one was committed meanwhile (decided by the database, not read first).
        updates: dict[str, object] = dict(node_fields)
        if generation is not None:
            updates["synced_generation"] = Greatest(F("synced_generation"), Value(generation))
        if sync_status == SyncStatus.IN_SYNC and generation is not None:
            current = Q(desired_generation=generation)
            updates["sync_status"] = Case(When(current, then=Value(SyncStatus.IN_SYNC)),
                                          default=Value(SyncStatus.PENDING))
            updates["sync_message"] = Case(When(current, then=Value("")),
                                           default=Value(NEWER_CHANGES_ARRIVED))
        elif sync_status is not None:
            updates |= {"sync_status": sync_status, "sync_message": message[:2000]}
        if updates:
            Node.objects.filter(pk=node.pk).update(**updates)
        deployment = Deployment.objects.create(
            node=node, started_at=started, finished_at=now, reason=reason[:255],
            scope=describe_scope(scope), result=result, error=error[:4000],
            files_changed=outcome.files_changed, commands=outcome.commands,
            confirmation=outcome.confirmation)
        consumed = (consume is not None and result in COMPLETED
                    and outbox.consume(node.pk, consume))
        return deployment, consumed


def release_rollback_holds(node_ids: Iterable[int]) -> list[int]:
    """An operator's go-ahead after a rollback: the next sync of these held nodes may push
    again (and clears the rollback verdict the node still holds). Returns the nodes released.
    """
    ids = sorted(set(node_ids))
    held = list(Node.objects.filter(pk__in=ids, rollback_hold=RollbackHold.HELD)
                .values_list("pk", flat=True))
    Node.objects.filter(pk__in=held).update(rollback_hold=RollbackHold.RELEASED)
    for node_id in held:
        logger.warning("node %s released after a rollback: its next sync pushes again", node_id)
    return held


def learn_management_source(node: Node, address: str, *, firewall: FirewallView,
                            covered: bool) -> bool:
    """Record the local address a connection to ``node`` left from (``management_source``);
    True when the pass must render again: its administration file (``covered``: in the
    pass), made from ``firewall`` of its snapshot, would not let that address in.

    Connection bookkeeping, like the sync status. When it changes the management sources
    (``OVERLAY_MANAGEMENT_SOURCES`` unset, the firewall enabled), every node with an
    external IP is owed its administration file: requested here, in the same transaction
    (by their next sync or the reconcile), this node's own unless the pass renders again.
    """
    rerender = covered and firewall.enabled and not settings.OVERLAY_MANAGEMENT_SOURCES \
        and not set(management_source_list([], [address])) <= set(firewall.management_sources)
    if address == node.management_source:
        return rerender
    with transaction.atomic():
        before = management_sources()
        Node.objects.filter(pk=node.pk).update(management_source=address)
        node.management_source = address
        after = management_sources()
        logger.info("sync %s: the management server's connection left from %s",
                    node.hostname, address)
        if before != after and FirewallSettings.objects.filter(pk=1, enabled=True).exists():
            reason = f"management sources now {', '.join(after) or 'none'}"
            readers = set(Node.objects.exclude(external_ip=None).values_list("pk", flat=True))
            if rerender:
                readers.discard(node.pk)
            if settings.OVERLAY_AUTO_SYNC:
                outbox.record({pk: Request(scope=frozenset({IPF_ADMIN}), reason=reason)
                               for pk in readers}, change=True)
            else:
                outbox.stage(readers, reason=reason)
    return rerender


def _pass_scope(node: Node, scope: Scope, claimed: Claim | None) -> tuple[Scope, int]:
    """The files this pass must check, and the desired generation it then deploys.

    A scope is enough only when every change before the request was deployed already
    (the node is in sync or merely pending, and its synced generation reaches the
    request's base); otherwise every file is checked. A full pass deploys the generation
    read before the snapshot; a scoped one only the generation its request covers (a
    change that arrived since may concern other files).
    """
    if scope is None:
        return None, node.desired_generation
    base = claimed.base_generation if claimed else node.desired_generation
    if node.sync_status not in (SyncStatus.IN_SYNC, SyncStatus.PENDING) \
            or node.synced_generation < base:
        logger.info("sync %s: node is %s (generation %d of %d), so every file is checked, "
                    "not only %s", node.hostname, node.sync_status, node.synced_generation,
                    node.desired_generation, describe_scope(scope))
        return None, node.desired_generation
    return scope, claimed.generation if claimed else node.desired_generation


def sync_once(node_id: int, *, scope: Scope = None, reason: str = "", verify: bool = False,
              final_attempt: bool = True, claimed: Claim | None = None,
              shared: SharedSnapshot | None = None, node: Node | None = None) -> PassResult:
    """One synchronisation pass of one node (the caller holds the node's lock).

    ``final_attempt`` False means a transient SSH failure will be retried: the node is
    then marked with the failure but not given up on. ``claimed``: the outbox request this
    pass carries out (its base generation decides whether its scope is enough).
    ``shared``: the snapshot of the batch this pass belongs to (``batch``), used when it
    holds the node's desired generation; else the pass loads its own. ``node``: the node's
    row as the caller read it (``outbox.claim_with_node``), not read again.
    """
    started = timezone.now()
    # Read before the snapshot (see _pass_scope): with the request when there is one.
    if claimed is not None:
        node = claimed.node
    elif node is None:
        node = Node.objects.filter(pk=node_id).first()
    if node is None:
        logger.info("sync of node %s: the node no longer exists", node_id)
        return PassResult(deployment=None)
    scope, generation = _pass_scope(node, scope, claimed)

    def record(result: str, *, plan: Plan | None = None, retryable: bool = False,
               **fields: object) -> PassResult:
        deployment, consumed = record_deployment(node, started=started, reason=reason,
                                                 scope=scope, result=result, consume=claimed,
                                                 **fields)
        return PassResult(deployment=deployment, plan=plan, retryable=retryable,
                          consumed=consumed if claimed is not None and result in COMPLETED
                          else None)

    if node.status != NodeStatus.ONLINE:
        message = (f"node is {node.status}; its files are pushed when a refresh finds it "
                   "online")
        logger.info("sync %s: skipped, %s", node.hostname, message)
        if node.sync_status == SyncStatus.FAILED:  # keep the reason it failed for
            return record(DeploymentResult.SKIPPED,
                          error=f"{message} (last failure: {node.sync_message})")
        return record(DeploymentResult.SKIPPED, error=message, sync_status=SyncStatus.PENDING,
                      message=message)
    snapshot = (shared.for_node(node_id, max(generation, node.desired_generation))
                if shared is not None else load_snapshot())
    view = snapshot.nodes_by_id.get(node_id)
    if view is None:  # deleted between the two reads
        return PassResult(deployment=None)
    deployed = dict(DeployedFile.objects.filter(node_id=node_id).values_list("path", "sha256"))
    try:
        plan = plan_node(snapshot, view, scope=scope, deployed=deployed, paths=node_paths())
    except ValueError as exc:  # a rule the generators cannot render
        message = f"cannot render the files of {node.hostname}: {exc}"
        logger.error("sync %s: %s", node.hostname, message)
        return record(DeploymentResult.FAILED, error=message, sync_status=SyncStatus.FAILED,
                      message=message)
    logger.info("sync %s (%s, generation %d): %d file(s) considered, %d changed, %d no longer "
                "desired%s", node.hostname, describe_scope(scope), generation,
                len(plan.considered), len(plan.changes), len(plan.stale),
                "; verifying against the node" if verify else "")
    if plan.up_to_date and not verify:
        # A held node that needs nothing: the change that rolled back is no longer wanted.
        released = ({"rollback_hold": RollbackHold.RELEASED}
                    if node.rollback_hold == RollbackHold.HELD else {})
        return record(DeploymentResult.NO_CHANGE, plan=plan, sync_status=SyncStatus.IN_SYNC,
                      generation=generation, **released)
    if node.rollback_hold == RollbackHold.HELD:
        message = (f"held: a change rolled back on {node.hostname} (see its failed "
                   "deployment); nothing is pushed until an operator runs `overlay update "
                   f"--force {node.hostname}`")
        logger.warning("sync %s: skipped, %s", node.hostname, message)
        return record(DeploymentResult.SKIPPED, plan=plan, error=message)

    connected = False
    learnt: str | None = None  # the management server's address as this connection left it
    try:
        with open_transport(node.ssh_address) as transport:
            connected = True
            learnt = getattr(transport, "local_address", None)
            if learnt and learn_management_source(
                    node, learnt, firewall=snapshot.firewall,
                    covered=scope is None or IPF_ADMIN in scope):
                # The allow-list this pass writes must let in the address it came from.
                fresh = load_snapshot()
                plan = plan_node(fresh, fresh.nodes_by_id.get(node_id, view), scope=scope,
                                 deployed=deployed, paths=node_paths())
            outcome = apply_plan(
                plan, transport, verify=verify,
                reconnect=lambda: open_transport(node.ssh_address),
                released=node.rollback_hold == RollbackHold.RELEASED)
    except TransportError as exc:
        outcome = ApplyOutcome(error=str(exc), exception=exc)
    except ImproperlyConfigured as exc:
        outcome = ApplyOutcome(error=str(exc))

    if not outcome.failed:
        changed = bool(outcome.files_changed or outcome.commands)
        result = DeploymentResult.OK if changed else DeploymentResult.NO_CHANGE
        logger.info("sync %s: %s, %d file(s) written, %d command(s) run", node.hostname, result,
                    len(outcome.files_changed), len(outcome.commands))
        cleared = ({"rollback_hold": RollbackHold.NONE}
                   if node.rollback_hold != RollbackHold.NONE else {})
        return record(result, plan=plan, outcome=outcome, sync_status=SyncStatus.IN_SYNC,
                      generation=generation, **cleared)
    if outcome.rolled_back:
        # Not retried: repeating the change would cut the node off again. An operator
        # looks, then releases it (`overlay update --force HOST`).
        logger.error("sync %s: %s", node.hostname, outcome.error)
        return record(DeploymentResult.FAILED, plan=plan, error=outcome.error,
                      outcome=outcome, sync_status=SyncStatus.FAILED, message=outcome.error,
                      rollback_hold=RollbackHold.HELD)

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
    return record(DeploymentResult.FAILED, plan=plan, error=message, outcome=outcome,
                  message=message, retryable=retryable and not final_attempt, **status)


@dataclass
class RunOutcome:
    """What ``run_sync`` did: ran passes ("done"), left the request to the lock's live
    holder ("coalesced"), gave up waiting for the lock ("busy"), or stopped on a transient
    failure that should be retried ("retry"). ``holder`` names who held the lock."""

    status: str
    passes: list[PassResult] = field(default_factory=list)
    holder: str | None = None
    lock_remaining: float = 0.0

    def summary(self) -> dict:
        return {"status": self.status,
                "results": [p.result for p in self.passes],
                "deployments": [p.deployment.pk for p in self.passes if p.deployment]}


def run_sync(node_id: int, *, scope: Scope = None, reason: str = "", verify: bool = False,
             final_attempt: bool = True, record: bool = True, wait: float = 0.0,
             shared: SharedSnapshot | None = None) -> RunOutcome:
    """Sync the node: run its pending request (and this one) unless a sync already runs.

    ``record``: first add this request to the node's pending request in the outbox, so
    a sync running elsewhere takes it up ("coalesced"); False: only drain what is pending.
    ``wait`` > 0: this caller does the work itself. The request is kept here, the lock is
    awaited up to ``wait`` seconds (a live holder finishes, a dead one's lease runs out),
    and the first pass carries it together with whatever is pending. ``shared``: the
    snapshot of the batch this sync belongs to (``sync_once``).
    """
    own = Request(scope=scope, reason=reason, verify=verify) if wait > 0 else None
    if record and own is None:
        outbox.record({node_id: Request(scope=scope, reason=reason, verify=verify)},
                      change=False)
    store = coordination()
    passes: list[PassResult] = []
    while True:
        lock = store.lock(node_id)
        if not lock.acquire(wait=wait if own is not None else 0.0):
            holder = lock.holder()
            if own is not None:
                logger.warning("sync of node %s: its lock is still held by %s after %g s",
                               node_id, holder, wait)
                return RunOutcome("busy", passes, holder=holder)
            logger.info("sync of node %s already running (%s); request left to it", node_id,
                        holder)
            return RunOutcome("coalesced" if not passes else "done", passes, holder=holder,
                              lock_remaining=lock.remaining())
        try:
            with lock.kept():
                stopped = _drain(node_id, own, passes, final_attempt=final_attempt,
                                 shared=shared)
                own = None
        finally:
            lock.release()
        if stopped is not None:
            return RunOutcome(stopped, passes)
        # A request that arrived after the last claim but while we held the lock found
        # the lock taken and was left to us: take it, unless someone else does.
        if not outbox.pending(node_id):
            return RunOutcome("done", passes)


def _drain(node_id: int, own: Request | None, passes: list[PassResult], *,
           final_attempt: bool, shared: SharedSnapshot | None = None) -> str | None:
    """Run passes while a request is pending; the status to stop with, or None when drained.

    Each pass is kept with its plan's summary (paths and hashes, no file text): the
    outcomes of a many-node sync stay small.
    """
    while True:
        node, claimed = outbox.claim_with_node(node_id)
        if claimed is None and own is None:
            return None
        request = own.merged(claimed.request if claimed else None) if own else claimed.request
        own = None
        result = sync_once(node_id, scope=request.scope, reason=outbox.one_line(request.reason),
                           verify=request.verify, final_attempt=final_attempt, claimed=claimed,
                           shared=shared, node=node)
        passes.append(replace(result, plan=result.plan.summary()) if result.plan else result)
        if not result.completed:
            # The request stays pending: retried now, by the reconcile, or when a refresh
            # finds the node online again.
            return "retry" if result.retryable else "done"
        if claimed is None:
            # Only the caller's own request: one that came meanwhile found the lock taken,
            # and ``run_sync`` takes it up once the lock is released.
            return None
        removed = (result.consumed if result.consumed is not None
                   else outbox.consume(node_id, claimed))
        if removed:
            # Drained: a request committed after the removal found the lock taken, and
            # ``run_sync`` takes it up once the lock is released.
            return None
        logger.info("sync of node %s: more was requested during the pass; another pass",
                    node_id)


def retry_delay(retries: int) -> float:
    """Exponential backoff with jitter: base, 2x base, 4x base, ... at most 5 minutes."""
    base = settings.OVERLAY_SYNC_RETRY_BACKOFF
    delay = min(base * (2 ** retries), 300.0)
    return round(delay * random.uniform(0.8, 1.2), 3)  # noqa: S311 - jitter, not security


def sync_many(node_ids: Iterable[int], *, scope: Scope = None, reason: str = "",
              verify: bool = False, jobs: int = 1, wait: float | None = None
              ) -> dict[int, RunOutcome]:
    """Sync several nodes in this process, ``jobs`` at a time (threads; one SSH
    connection and one database connection per thread).

    Always does the work: a node whose sync runs elsewhere is waited for, up to ``wait``
    seconds (default ``OVERLAY_SYNC_LOCK_WAIT``), then synced here. The nodes render from
    one shared snapshot (``batch``); the outcomes keep plan summaries, not file texts.
    """
    ids = list(node_ids)
    patience = float(settings.OVERLAY_SYNC_LOCK_WAIT if wait is None else wait)
    shared = SharedSnapshot()

    def one(node_id: int) -> RunOutcome:
        try:
            return run_sync(node_id, scope=scope, reason=reason, verify=verify,
                            wait=max(patience, 0.001), shared=shared)
        finally:
            if jobs > 1:
                connections.close_all()  # this thread's connections only

    if jobs <= 1 or len(ids) <= 1:
        return {node_id: one(node_id) for node_id in ids}
    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="sync") as pool:
        return dict(zip(ids, pool.map(one, ids), strict=True))
