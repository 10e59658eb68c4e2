"""What a sync would change on the nodes, read from the nodes themselves: the plan before apply.

For each node, the files are rendered as a sync renders them (``plan.plan_node``), the
files a sync would write are read over the transport, and each one that would change is
shown as a unified diff between what the node holds now and what the sync writes, with
the reload actions that would run. Nothing is written and no command runs on the node.

The preview follows ``apply`` exactly, so that it lists the files a following
``overlay update`` changes and no others:

* without ``verify`` a sync trusts the hashes recorded at the last deployment: only files
  whose desired hash differs from the recorded one are written (and reloaded). A file
  changed by hand since then is not touched; the preview lists it under ``drift`` (only
  ``overlay update --verify`` rewrites it);
* ``/usbkey/config`` is shown as the whole file before and after its managed keys are
  rewritten (the node's own lines stay);
* a file no longer desired is removed when it still holds what was deployed;
* a node that is not online is skipped by a sync, and by the preview;
* a node held after a rollback is pushed nothing by a sync until ``overlay update --force
  HOST``: its plan ("held") shows what the forced sync would change.

Pre-shared keys never appear: the pre-shared keys file is compared block by block (one
block per peer) and shown as sentences ("key for peer cn03 (198.51.100.3) changed"), and
its diff, if anything besides keys changed, shows ``key <redacted>``. Every other diff
has the node's pair secrets blanked out as well, as a second guard.

Distribution layer: reads the database and the nodes; writes nothing.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from nodes.models import DeployedFile, Node, NodeStatus, SyncStatus
from nodes.transports import Transport, TransportError, open_transport
from overlays.distribution.apply import RELOAD_ORDER
from overlays.distribution.plan import FileChange, Plan, plan_node, sha256_text
from overlays.filegroups import Scope
from overlays.generators import apply_managed_keys
from overlays.selectors import REDACTED, load_snapshot, node_paths, redact
from overlays.snapshot import ClusterSnapshot

# The node's answers, as the preview reports them.
CHANGES = "changes"  # files would change
UP_TO_DATE = "up-to-date"  # a sync would write nothing
SKIPPED = "skipped"  # a sync skips the node (not online)
UNREADABLE = "unreadable"  # the node could not be read
FAILED = "failed"  # the files cannot be rendered
HELD = "held"  # a change rolled back there: a sync pushes nothing until forced

_KEY_LINE = re.compile(r"^(\s*key\s+)(\S+)(.*)$", re.MULTILINE)
_BLOCK = re.compile(r"\{([^{}]*)\}", re.DOTALL)


@dataclass(frozen=True)
class FilePreview:
    """One file a sync would change: written (``write``) or removed (``remove``)."""

    path: str
    action: str
    diff: str  # unified diff, secrets redacted; may be empty for a keys-only change
    reload: str | None
    key_changes: tuple[str, ...] = ()  # sentences about pre-shared keys, never a key


@dataclass(frozen=True)
class DriftNote:
    """A file on the node that differs from what was deployed; a plain sync leaves it."""

    path: str
    detail: str


@dataclass(frozen=True)
class ReloadPreview:
    action: str
    commands: tuple[str, ...]


@dataclass
class NodePreview:
    hostname: str
    state: str = UP_TO_DATE
    message: str = ""
    files: list[FilePreview] = field(default_factory=list)
    reloads: list[ReloadPreview] = field(default_factory=list)
    drift: list[DriftNote] = field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        """The paths this node's sync would change."""
        return [f.path for f in self.files]

    def to_dict(self) -> dict:
        data = asdict(self)
        for item in data["files"]:
            item["key_changes"] = list(item["key_changes"])
        for item in data["reloads"]:
            item["commands"] = list(item["commands"])
        return data


# --- pre-shared keys ------------------------------------------------------------------------


def parse_preshared(text: str) -> dict[str, str]:
    """remote id -> key of each block of an ike.preshared file (comments ignored)."""
    found: dict[str, str] = {}
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    for block in _BLOCK.findall("\n".join(lines)):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            parts = line.split(None, 1)
            if len(parts) == 2:
                fields[parts[0]] = parts[1].strip()
        if "remoteid" in fields:
            found[fields["remoteid"]] = fields.get("key", "")
    return found


def mask_keys(text: str) -> str:
    """The file with every ``key`` value replaced by ``<redacted>``."""
    return _KEY_LINE.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(3)}", text)


def key_changes(before: str, after: str, peers: Mapping[str, str]) -> tuple[str, ...]:
    """Sentences for the keys that differ between two ike.preshared files; never a key."""
    old, new = parse_preshared(before), parse_preshared(after)

    def name(remote: str) -> str:
        host = peers.get(remote)
        return f"{host} ({remote})" if host else remote

    sentences = []
    for remote in sorted(set(old) | set(new)):
        if remote not in old:
            sentences.append(f"key for peer {name(remote)} added")
        elif remote not in new:
            sentences.append(f"key for peer {name(remote)} removed")
        elif old[remote] != new[remote]:
            sentences.append(f"key for peer {name(remote)} changed")
    return tuple(sentences)


# --- one node --------------------------------------------------------------------------------


def _diff(hostname: str, path: str, before: str, after: str) -> str:
    lines = difflib.unified_diff(before.splitlines(keepends=True),
                                 after.splitlines(keepends=True),
                                 fromfile=f"{hostname}:{path} (on the node)",
                                 tofile=f"{hostname}:{path} (after the sync)")
    text = ""
    for line in lines:
        text += line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
    return text


def _decode(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")


def _new_bytes(change: FileChange, current: bytes | None) -> bytes:
    """The bytes the sync would leave at the path (as ``apply`` computes them)."""
    if change.usbkey is not None:
        text = (current or b"").decode("utf-8", errors="surrogateescape")
        return apply_managed_keys(text, change.usbkey.managed).encode(
            "utf-8", errors="surrogateescape")
    assert change.file is not None
    return change.file.data


def _scope_for(node: Node, scope: Scope) -> Scope:
    """The scope a sync of the node would check (every file unless it was in line)."""
    if scope is None:
        return None
    if node.sync_status not in (SyncStatus.IN_SYNC, SyncStatus.PENDING) \
            or node.synced_generation < node.desired_generation:
        return None
    return scope


def preview_node(node: Node, snapshot: ClusterSnapshot, *, scope: Scope = None,
                 verify: bool = False) -> NodePreview:
    """What a sync of ``node`` would change now; reads the node, writes nothing."""
    result = NodePreview(hostname=node.hostname)
    if node.status != NodeStatus.ONLINE:
        result.state = SKIPPED
        result.message = (f"node is {node.status}: a sync skips it until a refresh finds it "
                          "online")
        return result
    view = snapshot.nodes_by_id.get(node.pk)
    if view is None:
        result.state, result.message = SKIPPED, "node no longer exists"
        return result
    paths = node_paths()
    deployed = dict(DeployedFile.objects.filter(node_id=node.pk).values_list("path", "sha256"))
    try:
        plan = plan_node(snapshot, view, scope=_scope_for(node, scope), deployed=deployed,
                         paths=paths)
    except ValueError as exc:
        result.state, result.message = FAILED, f"cannot render the files: {exc}"
        return result
    if plan.up_to_date and not verify:
        result.message = "a sync writes nothing and contacts nobody"
        return result
    secrets = snapshot.keys_of(node.pk)
    peers = {n.external_ip: n.hostname for n in snapshot.nodes if n.external_ip}
    try:
        with open_transport(node.ssh_address) as transport:
            _read_and_compare(result, plan, transport, verify=verify, secrets=secrets,
                              peers=peers, preshared_path=paths["ike_preshared"])
    except (TransportError, ImproperlyConfigured) as exc:
        result.state = UNREADABLE
        result.message = f"cannot read the node: {redact(str(exc), secrets)}"
        result.files, result.reloads, result.drift = [], [], []
        return result
    if getattr(node, "rollback_hold", "") == HELD:
        result.state = HELD
        result.message = (f"held after a rollback: a sync pushes nothing until 'overlay update "
                          f"--force {node.hostname}', which would change this")
    elif result.files or result.reloads:
        result.state = CHANGES
    return result


def _read_and_compare(result: NodePreview, plan: Plan, transport: Transport, *, verify: bool,
                      secrets: Iterable[str], peers: Mapping[str, str],
                      preshared_path: str) -> None:
    secrets = list(secrets)
    written = {c.path for c in (plan.candidates if verify else plan.changes)}
    actions: set[str] = set()
    for change in plan.candidates:
        current = transport.read_file(change.path)
        new = _new_bytes(change, current)
        differs = current is None or new != current
        if change.path not in written:
            if differs:
                result.drift.append(DriftNote(change.path, "differs on the node from what was "
                                              "deployed; only 'overlay update --verify' "
                                              "rewrites it"))
            continue
        # apply: a file is reloaded when it was uploaded, or when it was never applied.
        uploads = differs or not verify
        if change.reload and (uploads or change.sha256 != change.recorded):
            actions.add(change.reload)
        if not differs:
            continue
        before, after = _decode(current), _decode(new)
        keys: tuple[str, ...] = ()
        if change.path == preshared_path:
            keys = key_changes(before, after, peers)
            before, after = mask_keys(before), mask_keys(after)
        diff = redact(_diff(result.hostname, change.path, before, after), secrets)
        result.files.append(FilePreview(path=change.path, action="write", diff=diff,
                                        reload=change.reload, key_changes=keys))
    for path, digest in plan.stale:
        current = transport.read_file(path)
        if current is None:
            continue
        if sha256_text(current) != digest:
            result.drift.append(DriftNote(path, "no longer desired but changed on the node: "
                                          "left in place, no longer managed"))
            continue
        before = _decode(current)
        if path == preshared_path:
            before = mask_keys(before)
        result.files.append(FilePreview(
            path=path, action="remove", reload=None,
            diff=redact(_diff(result.hostname, path, before, ""), secrets)))
    commands = settings.OVERLAY_RELOAD_COMMANDS
    order = [a for a in RELOAD_ORDER if a in actions] + sorted(actions - set(RELOAD_ORDER))
    result.reloads = [ReloadPreview(action, tuple(commands.get(action, ()))) for action in order]


# --- several nodes ---------------------------------------------------------------------------


def preview_nodes(nodes: Iterable[Node], *, scope: Scope = None,
                  verify: bool = False) -> list[NodePreview]:
    """The plan of each node, from one snapshot of the database."""
    snapshot = load_snapshot()
    return [preview_node(node, snapshot, scope=scope, verify=verify) for node in nodes]


def plan_document(previews: Iterable[NodePreview]) -> dict:
    """The plan as JSON data (``overlay plan --json``, the API)."""
    nodes = [p.to_dict() for p in previews]
    return {"nodes": nodes,
            "changes": sum(len(n["files"]) for n in nodes if n["state"] == CHANGES)}
