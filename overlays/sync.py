"""Making one node hold its desired files (DESIGN 4); plain functions, no Celery.

A sync of one node:

1. creates or drops IPSec pair keys as the PDCs require (``reconcile_ipsec_keys``);
2. loads the cluster snapshot once and renders the node's files, or only the
   groups of files a trigger named (its *scope*, below);
3. hashes each rendered file and compares it with the hash recorded in
   ``DeployedFile`` when it was last deployed; a sync that finds nothing to do
   records a "no-change" deployment without contacting the node;
4. otherwise opens ONE connection to the node and uploads the files that
   differ (atomically: temporary file, mode and owner, rename). ``/usbkey/config``
   belongs to the node: it is read, only the managed keys are rewritten
   (``apply_managed_keys``), and it is written back only when the bytes differ;
5. runs each needed reload action once, in ``RELOAD_ORDER``;
6. records the new hashes of the files that were uploaded *and* applied, and a
   ``Deployment`` (paths and hashes, never contents: the IPSec files hold keys).

A file whose upload or reload failed keeps its old hash, so the next sync
uploads and reloads it again. The node is marked failed (or pending, when it
could not be reached) with the reason.

Scopes. A trigger that knows which files a change touches passes a set of
tokens: ``usbkey``, ``ipsec`` (the three IPSec files), ``ipf-overlays`` (the
overlay port blocks), ``ipf-admin`` (the allow-list) and ``arp:<path>`` (one
rule's ARP table). Only those files are rendered
and compared, so a vNIC change renders one ARP table per node, not the whole
node. ``None`` means every file. A node that is not in sync always gets a full
sync, whatever the scope.

Serialising and coalescing (``coordination()``): one sync per node at a time
under a lock (Redis when ``REDIS_URL`` is set, else a process-local lock).
Requests are merged into a per-node "dirty" record (scope tokens and reasons);
whoever holds the lock drains that record until it is empty, so a burst of
triggers becomes one or two passes. A request that finds the lock taken only
leaves its mark and returns.

Files that are no longer desired (the node stopped carrying a rule): the ARP
table is removed from the node when we deployed it and it still holds what we
deployed; a file changed on the node meanwhile is left in place, and either way
the manager stops tracking it. ``/usbkey/config`` is never removed. Removing a
table does not restart varpd: varpd reads tables only when it starts, and the
rule's line leaves ``/usbkey/config`` in the same sync.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import random
import shlex
import stat
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from nodes.models import (
    DeployedFile,
    Deployment,
    DeploymentResult,
    Node,
    NodeStatus,
    SyncStatus,
)
from nodes.transports import (
    AuthenticationError,
    HostKeyError,
    NodeAddress,
    Transport,
    TransportError,
    open_transport,
)
from overlays.desired import DesiredFile, UsbkeyConfigEdit
from overlays.generators import (
    DEFAULT_PATHS,
    RELOAD_IPFILTER,
    RELOAD_IPSEC,
    RELOAD_NETWORK_VIRTUAL,
    RELOAD_VARPD,
    apply_managed_keys,
    read_managed_keys,
    render_node,
)
from overlays.generators.node import (
    IPF_ADMIN,
    IPF_OVERLAYS,
    IPSEC,
    USBKEY,
    arp_group,
)
from overlays.snapshot import ClusterSnapshot, NodeView, load_snapshot

logger = logging.getLogger(__name__)

# Reload actions run in this order, each at most once per sync:
# 1. network-virtual: /usbkey/config declares the rules; the platform must know a
#    rule before anything uses it.
# 2. ipsec: the encrypted path to peers in other PDCs comes up before anything
#    is sent to them;
# 3. ipfilter: plaintext overlay UDP on external0 is blocked only once ESP
#    carries it, so tightening the firewall never cuts a working path;
# 4. varpd last: it starts sending to new destinations only when the underlay
#    (IPSec, firewall) for them is ready, never in clear text.
RELOAD_ORDER = (RELOAD_NETWORK_VIRTUAL, RELOAD_IPSEC, RELOAD_IPFILTER, RELOAD_VARPD)

# /usbkey/config is the node's file; when it is missing or its mode cannot be
# read, it is written with the platform's usual mode and owner.
USBKEY_DEFAULT_MODE = 0o644
USBKEY_DEFAULT_OWNER = "root"

Scope = frozenset[str] | None


# --- scopes -----------------------------------------------------------------------


def merge_scopes(first: Scope, second: Scope) -> Scope:
    """The union of two scopes; ``None`` (every file) absorbs anything."""
    if first is None or second is None:
        return None
    return first | second


def scope_from(tokens: Iterable[str] | None) -> Scope:
    return None if tokens is None else frozenset(tokens)


def scope_tokens(scope: Scope) -> list[str] | None:
    """JSON-friendly spelling of a scope (task arguments)."""
    return None if scope is None else sorted(scope)


def describe_scope(scope: Scope) -> str:
    if scope is None:
        return "all"
    text = ",".join(sorted(scope))
    return text if len(text) <= 255 else text[:252] + "..."


def node_paths() -> dict[str, str]:
    """The configured node paths that the generators know (OVERLAY_PATHS minus extras)."""
    configured = settings.OVERLAY_PATHS
    return {key: value for key, value in configured.items() if key in DEFAULT_PATHS}


def _where(paths: Mapping[str, str]) -> dict[str, str]:
    return {**DEFAULT_PATHS, **paths}


def path_in_scope(path: str, scope: Scope, paths: Mapping[str, str]) -> bool:
    """Whether a deployed file belongs to one of the scope's groups."""
    if scope is None:
        return True
    where = _where(paths)
    if path == where["usbkey_config"]:
        return USBKEY in scope
    if path in (where["ike_config"], where["ike_preshared"], where["ipsec_policy"]):
        return IPSEC in scope
    if path == where["ipf_overlays"]:
        return IPF_OVERLAYS in scope
    if path == where["ipf_administration"]:
        return IPF_ADMIN in scope
    return arp_group(path) in scope


# --- rendering --------------------------------------------------------------------


@dataclass(frozen=True)
class DesiredState:
    """The files (within a scope) a node must hold; ``usbkey`` None when out of scope."""

    files: tuple[DesiredFile, ...]
    usbkey: UsbkeyConfigEdit | None


def render_desired(
    snapshot: ClusterSnapshot, node: NodeView, scope: Scope, paths: Mapping[str, str]
) -> DesiredState:
    """Render what ``node`` must hold: only the scope's files when a scope is given."""
    rendered = render_node(snapshot, node, paths, groups=scope)
    usbkey = rendered.usbkey if scope is None or USBKEY in scope else None
    return DesiredState(files=rendered.files, usbkey=usbkey)


def sha256_text(text: str | bytes) -> str:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def managed_digest(managed: Mapping[str, str]) -> str:
    """Hash of the managed keys of /usbkey/config, independent of their order in the file.

    The rest of that file belongs to the node, so this is what ``DeployedFile``
    records for it and what the drift check compares.
    """
    canonical = "".join(f"{key}={managed[key]}\n" for key in sorted(managed))
    return sha256_text(canonical)


# --- planning ---------------------------------------------------------------------


@dataclass(frozen=True)
class FileChange:
    """A file to deploy: a whole file, or the managed keys of /usbkey/config."""

    path: str
    sha256: str
    recorded: str | None  # hash recorded at the last deployment
    reload: str | None
    file: DesiredFile | None = None
    usbkey: UsbkeyConfigEdit | None = None


@dataclass(frozen=True)
class Plan:
    node_id: int
    hostname: str
    scope: Scope
    considered: tuple[str, ...]  # paths rendered and compared, in order
    candidates: tuple[FileChange, ...]  # every considered file
    stale: tuple[tuple[str, str], ...]  # (path, recorded hash) no longer desired

    @property
    def changes(self) -> tuple[FileChange, ...]:
        """Files whose desired hash differs from the recorded one."""
        return tuple(c for c in self.candidates if c.sha256 != c.recorded)

    @property
    def up_to_date(self) -> bool:
        return not self.changes and not self.stale


def plan_node(
    snapshot: ClusterSnapshot,
    node: NodeView,
    *,
    scope: Scope,
    deployed: Mapping[str, str],
    paths: Mapping[str, str],
) -> Plan:
    """Compare what ``node`` must hold with what was recorded as deployed; no I/O."""
    desired = render_desired(snapshot, node, scope, paths)
    candidates: list[FileChange] = []
    if desired.usbkey is not None:
        edit = desired.usbkey
        candidates.append(FileChange(path=edit.path, sha256=managed_digest(edit.managed),
                                     recorded=deployed.get(edit.path), reload=edit.reload,
                                     usbkey=edit))
    for desired_file in desired.files:
        candidates.append(FileChange(path=desired_file.path,
                                     sha256=sha256_text(desired_file.content),
                                     recorded=deployed.get(desired_file.path),
                                     reload=desired_file.reload, file=desired_file))
    wanted = {c.path for c in candidates}
    usbkey_path = _where(paths)["usbkey_config"]
    stale = tuple(
        (path, digest) for path, digest in sorted(deployed.items())
        if path not in wanted and path != usbkey_path and path_in_scope(path, scope, paths)
    )
    return Plan(node_id=node.id, hostname=node.hostname, scope=scope,
                considered=tuple(c.path for c in candidates), candidates=tuple(candidates),
                stale=stale)


# --- applying ---------------------------------------------------------------------


@dataclass
class ApplyOutcome:
    """What happened on the node; filled in as the work proceeds, so a failure keeps it."""

    files_changed: list[dict] = field(default_factory=list)  # [{"path", "sha256"}]
    commands: list[dict] = field(default_factory=list)  # [{"command", "exit_status"}]
    applied: dict[str, str] = field(default_factory=dict)  # path -> hash now deployed
    forgotten: list[str] = field(default_factory=list)  # paths no longer tracked
    reloads: list[str] = field(default_factory=list)  # actions run successfully
    error: str = ""
    exception: Exception | None = None

    @property
    def failed(self) -> bool:
        return bool(self.error)


class ReloadFailed(Exception):
    """A reload command exited non-zero on the node."""


def _usbkey_mode(transport: Transport, path: str) -> tuple[int, str, str]:
    """Mode and owner of the node's /usbkey/config, to keep them when rewriting it."""
    from nodes.transports.local import LocalTransport

    if isinstance(transport, LocalTransport):
        try:
            st = transport.local_path(path).stat()
        except OSError:
            return USBKEY_DEFAULT_MODE, USBKEY_DEFAULT_OWNER, USBKEY_DEFAULT_OWNER
        return stat.S_IMODE(st.st_mode), USBKEY_DEFAULT_OWNER, USBKEY_DEFAULT_OWNER
    result = transport.run(f"ls -ln {shlex.quote(path)}")
    parsed = parse_ls_line(result.stdout) if result.ok else None
    if parsed is None:
        return USBKEY_DEFAULT_MODE, USBKEY_DEFAULT_OWNER, USBKEY_DEFAULT_OWNER
    return parsed


def parse_ls_line(output: str) -> tuple[int, str, str] | None:
    """``-rw-r--r-- 1 0 0 123 ...`` -> (0o644, "0", "0"); None when it is not that."""
    fields = output.split()
    if len(fields) < 4 or len(fields[0]) < 10 or fields[0][0] != "-":
        return None
    perms = fields[0][1:10]
    mode = 0
    for index, char in enumerate(perms):
        bit = 1 << (8 - index)
        if char in "rwxst":
            mode |= bit
        elif char not in "-ST":
            return None
    for index, (special, flag) in enumerate(((0o4000, "sS"), (0o2000, "sS"), (0o1000, "tT"))):
        if perms[3 * index + 2] in flag:
            mode |= special
    owner, group = fields[2], fields[3]
    if not (owner.isdigit() and group.isdigit()):
        return None
    return mode, owner, group


def apply_plan(plan: Plan, transport: Transport, *, verify: bool = False) -> ApplyOutcome:
    """Upload, remove and reload on an open transport; never raises TransportError.

    ``verify``: compare with the files actually on the node instead of trusting
    the recorded hashes, so hand edits and missing files are repaired.
    """
    outcome = ApplyOutcome()
    try:
        _apply(plan, transport, verify=verify, outcome=outcome)
    except TransportError as exc:
        outcome.error = str(exc)
        outcome.exception = exc
    except ReloadFailed as exc:
        outcome.error = str(exc)
    except ValueError as exc:  # a managed value the platform cannot quote, a bad path
        outcome.error = f"cannot deploy to {plan.hostname}: {exc}"
    return outcome


def _apply(plan: Plan, transport: Transport, *, verify: bool, outcome: ApplyOutcome) -> None:
    hostname = plan.hostname
    candidates = plan.candidates if verify else plan.changes
    to_reload: dict[str, list[FileChange]] = {}
    settled: list[FileChange] = []  # need no reload, or their reload is pending below
    for change in candidates:
        if change.usbkey is not None:
            uploaded = _deploy_usbkey(change, transport, verify=verify, outcome=outcome)
        else:
            uploaded = _deploy_file(change, transport, verify=verify, outcome=outcome)
        if not uploaded and change.sha256 == change.recorded:
            continue  # verified: on the node and applied already
        if change.reload:
            to_reload.setdefault(change.reload, []).append(change)
        else:
            settled.append(change)
    for change in settled:
        outcome.applied[change.path] = change.sha256
    for path, digest in plan.stale:
        _remove_stale(path, digest, transport, hostname=hostname, outcome=outcome)
    commands = settings.OVERLAY_RELOAD_COMMANDS
    order = [a for a in RELOAD_ORDER if a in to_reload]
    order += sorted(a for a in to_reload if a not in RELOAD_ORDER)
    for action in order:
        for command in commands.get(action, ()):
            result = transport.run(command)
            outcome.commands.append({"command": command, "exit_status": result.exit_status})
            if not result.ok:
                detail = (result.stderr or result.stdout).strip().splitlines()
                tail = detail[-1][:300] if detail else "no output"
                raise ReloadFailed(
                    f"reload {action} failed on {hostname}: `{command}` exited "
                    f"{result.exit_status}: {tail}"
                )
        outcome.reloads.append(action)
        for change in to_reload[action]:
            outcome.applied[change.path] = change.sha256
    logger.info("sync %s: reloads run: %s", hostname, ", ".join(order) or "none")


@contextlib.contextmanager
def _naming(path: str) -> Iterator[None]:
    """Put the path in a failed upload's message; the node keeps its previous file."""
    try:
        yield
    except TransportError as exc:
        raise type(exc)(f"upload of {path} failed, previous file kept: {exc}") from exc


def _deploy_file(change: FileChange, transport: Transport, *, verify: bool,
                 outcome: ApplyOutcome) -> bool:
    desired = change.file
    assert desired is not None
    data = desired.content.encode("utf-8")
    if verify:
        current = transport.read_file(change.path)
        if current is not None and sha256_text(current) == change.sha256:
            return False
    with _naming(change.path):
        transport.write_file(change.path, data, mode=desired.mode, owner=desired.owner,
                             group=desired.group)
    outcome.files_changed.append({"path": change.path, "sha256": change.sha256})
    logger.info("sync: uploaded %s (sha256 %s, mode %o)", change.path, change.sha256[:12],
                desired.mode)
    return True


def _deploy_usbkey(change: FileChange, transport: Transport, *, verify: bool,
                   outcome: ApplyOutcome) -> bool:
    edit = change.usbkey
    assert edit is not None
    current = transport.read_file(edit.path)
    if current is None:
        logger.warning("sync: %s is missing on the node; creating it with the managed keys",
                       edit.path)
    text = (current or b"").decode("utf-8", errors="surrogateescape")
    merged = apply_managed_keys(text, edit.managed).encode("utf-8", errors="surrogateescape")
    if current is not None and merged == current:
        return False
    mode, owner, group = _usbkey_mode(transport, edit.path) if current is not None else (
        USBKEY_DEFAULT_MODE, USBKEY_DEFAULT_OWNER, USBKEY_DEFAULT_OWNER)
    with _naming(edit.path):
        transport.write_file(edit.path, merged, mode=mode, owner=owner, group=group)
    outcome.files_changed.append({"path": edit.path, "sha256": change.sha256})
    logger.info("sync: rewrote the managed keys of %s (%d keys)", edit.path, len(edit.managed))
    return True


def _remove_stale(path: str, digest: str, transport: Transport, *, hostname: str,
                  outcome: ApplyOutcome) -> None:
    current = transport.read_file(path)
    if current is None:
        logger.info("sync %s: %s is no longer desired and already gone", hostname, path)
    elif sha256_text(current) != digest:
        logger.warning("sync %s: %s is no longer desired but was changed on the node; left in "
                       "place, no longer managed", hostname, path)
    else:
        command = f"rm -f -- {shlex.quote(path)}"
        result = transport.run(command)
        outcome.commands.append({"command": command, "exit_status": result.exit_status})
        if not result.ok:
            raise ReloadFailed(f"removing {path} on {hostname} failed: exit "
                               f"{result.exit_status}: {result.stderr.strip()[:300]}")
        outcome.files_changed.append({"path": path, "sha256": None})
        logger.info("sync %s: removed %s, no longer desired", hostname, path)
    outcome.forgotten.append(path)


# --- one pass for one node -----------------------------------------------------------


def node_address(node: Node) -> NodeAddress:
    return NodeAddress(hostname=node.hostname, host=node.connect_host, port=node.ssh_port,
                       user=node.ssh_user, host_key=node.ssh_host_key)


@dataclass
class PassResult:
    """The outcome of ``sync_once``: the deployment recorded and whether to retry."""

    deployment: Deployment | None
    plan: Plan | None = None
    retryable: bool = False

    @property
    def result(self) -> str:
        return self.deployment.result if self.deployment else "gone"


def _record(node: Node, *, started: datetime, reason: str, scope: Scope, result: str,
            error: str = "", outcome: ApplyOutcome | None = None,
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
    from overlays import services

    started = timezone.now()
    node = Node.objects.filter(pk=node_id).first()
    if node is None:
        logger.info("sync of node %s: the node no longer exists", node_id)
        return PassResult(deployment=None)

    def record(result: str, **fields: object) -> Deployment:
        return _record(node, started=started, reason=reason, scope=scope, result=result,
                       **fields)

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
    services.reconcile_ipsec_keys()
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
        with open_transport(node_address(node)) as transport:
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


# --- drift ------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftItem:
    path: str
    state: str  # ok | modified | missing | not-deployed | outdated
    detail: str = ""


@dataclass
class DriftReport:
    hostname: str
    items: list[DriftItem] = field(default_factory=list)
    error: str = ""

    @property
    def drifted(self) -> list[DriftItem]:
        """Hand edits and missing files: what is on the node is not what was deployed."""
        return [item for item in self.items if item.state in ("modified", "missing")]


def check_drift(node_id: int) -> DriftReport:
    """Compare the files on a node with what was last deployed there; change nothing.

    Also lists files whose desired content was never deployed or has changed
    since ("not-deployed", "outdated"): a sync is due, which is not drift.
    """
    node = Node.objects.get(pk=node_id)
    report = DriftReport(hostname=node.hostname)
    paths = node_paths()
    usbkey_path = _where(paths)["usbkey_config"]
    deployed = dict(DeployedFile.objects.filter(node=node).values_list("path", "sha256"))
    snapshot = load_snapshot()
    view = snapshot.nodes_by_id[node_id]
    plan = plan_node(snapshot, view, scope=None, deployed=deployed, paths=paths)
    desired = {c.path: c.sha256 for c in plan.candidates}
    try:
        with open_transport(node_address(node)) as transport:
            for path, digest in sorted(deployed.items()):
                content = transport.read_file(path)
                if content is None:
                    report.items.append(DriftItem(path, "missing", "deployed, now absent"))
                    continue
                if path == usbkey_path:
                    text = content.decode("utf-8", errors="replace")
                    actual = managed_digest(read_managed_keys(text))
                else:
                    actual = sha256_text(content)
                if actual != digest:
                    what = ("managed keys differ from those deployed" if path == usbkey_path
                            else "content differs from what was deployed")
                    report.items.append(DriftItem(path, "modified", what))
                elif desired.get(path, digest) != digest:
                    report.items.append(DriftItem(path, "outdated", "a sync is due"))
                else:
                    report.items.append(DriftItem(path, "ok"))
    except (TransportError, ImproperlyConfigured) as exc:
        report.error = str(exc)
    for path in sorted(set(desired) - set(deployed)):
        report.items.append(DriftItem(path, "not-deployed", "never deployed; a sync is due"))
    return report


# --- serialising and coalescing -------------------------------------------------------


@dataclass(frozen=True)
class SyncRequest:
    scope: Scope
    reason: str
    verify: bool


_SCOPE_ALL = "*"
_VERIFY = "!verify"


def _encode(scope: Scope, reason: str, verify: bool) -> dict[str, str]:
    fields = {f"s:{token}": "1" for token in (scope or ())}
    if scope is None:
        fields[f"s:{_SCOPE_ALL}"] = "1"
    if verify:
        fields[_VERIFY] = "1"
    if reason:
        fields[f"r:{reason[:200]}"] = "1"
    return fields


def _decode(names: Iterable[str]) -> SyncRequest | None:
    names = list(names)
    if not names:
        return None
    tokens = {n[2:] for n in names if n.startswith("s:")}
    reasons = sorted(n[2:] for n in names if n.startswith("r:"))
    reason = "; ".join(reasons)
    if len(reason) > 255:
        reason = reason[:240] + f"... ({len(reasons)} triggers)"
    scope = None if _SCOPE_ALL in tokens else frozenset(tokens)
    return SyncRequest(scope=scope, reason=reason, verify=_VERIFY in names)


class _LocalLock:
    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock

    def acquire(self) -> bool:
        return self._lock.acquire(blocking=False)

    def extend(self) -> None:
        """Process-local locks do not expire."""

    def release(self) -> None:
        self._lock.release()


class LocalCoordination:
    """Locks and dirty records in this process: for eager mode without Redis."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._locks: dict[int, threading.Lock] = {}
        self._dirty: dict[int, dict[str, str]] = {}
        self._queued: set[int] = set()

    def lock(self, node_id: int) -> _LocalLock:
        with self._mutex:
            return _LocalLock(self._locks.setdefault(node_id, threading.Lock()))

    def mark(self, node_id: int, scope: Scope, reason: str, verify: bool) -> None:
        with self._mutex:
            self._dirty.setdefault(node_id, {}).update(_encode(scope, reason, verify))

    def pop(self, node_id: int) -> SyncRequest | None:
        with self._mutex:
            return _decode(self._dirty.pop(node_id, {}))

    def pending(self, node_id: int) -> bool:
        with self._mutex:
            return bool(self._dirty.get(node_id))

    def set_queued(self, node_id: int) -> bool:
        with self._mutex:
            if node_id in self._queued:
                return False
            self._queued.add(node_id)
            return True

    def clear_queued(self, node_id: int) -> None:
        with self._mutex:
            self._queued.discard(node_id)


class _RedisLock:
    def __init__(self, lock) -> None:  # noqa: ANN001 - redis.lock.Lock
        self._lock = lock

    def acquire(self) -> bool:
        return bool(self._lock.acquire(blocking=False))

    def extend(self) -> None:
        """Restart the lock's timeout before each pass: a long drain keeps its lock."""
        self._lock.reacquire()

    def release(self) -> None:
        from redis.exceptions import LockError

        try:
            self._lock.release()
        except LockError:
            logger.warning("sync lock %s had expired before release (OVERLAY_SYNC_LOCK_TIMEOUT "
                           "too short?)", self._lock.name)


class RedisCoordination:
    """Locks and dirty records in Redis, shared by every worker and web process."""

    def __init__(self, url: str, prefix: str, lock_timeout: int) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5)
        self.prefix = prefix
        self.lock_timeout = lock_timeout

    def _key(self, kind: str, node_id: int) -> str:
        return f"{self.prefix}:{kind}:{node_id}"

    def lock(self, node_id: int) -> _RedisLock:
        return _RedisLock(self.client.lock(self._key("lock", node_id),
                                           timeout=self.lock_timeout, blocking=False))

    def mark(self, node_id: int, scope: Scope, reason: str, verify: bool) -> None:
        key = self._key("dirty", node_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(key, mapping=_encode(scope, reason, verify))
        pipe.expire(key, 7 * 24 * 3600)
        pipe.execute()

    def pop(self, node_id: int) -> SyncRequest | None:
        key = self._key("dirty", node_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.hkeys(key)
        pipe.delete(key)
        names, _ = pipe.execute()
        return _decode(n.decode() if isinstance(n, bytes) else n for n in names)

    def pending(self, node_id: int) -> bool:
        return bool(self.client.exists(self._key("dirty", node_id)))

    def set_queued(self, node_id: int) -> bool:
        return bool(self.client.set(self._key("queued", node_id), "1", nx=True,
                                    ex=self.lock_timeout))

    def clear_queued(self, node_id: int) -> None:
        self.client.delete(self._key("queued", node_id))


@cache
def _coordination(redis_url: str, prefix: str, lock_timeout: int):  # noqa: ANN202
    if redis_url:
        return RedisCoordination(redis_url, prefix, lock_timeout)
    return LocalCoordination()


def coordination() -> LocalCoordination | RedisCoordination:
    """The lock and dirty-record store for the current settings."""
    return _coordination(
        getattr(settings, "REDIS_URL", ""),
        settings.OVERLAY_SYNC_KEY_PREFIX,
        settings.OVERLAY_SYNC_LOCK_TIMEOUT,
    )


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
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

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
