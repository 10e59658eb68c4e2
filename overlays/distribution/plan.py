"""What a sync would change on one node: pure, no I/O and no database.

The node's files are rendered (only the groups of its scope, see
``overlays.filegroups``), each is hashed, and the hashes are compared with the
ones recorded when the files were last deployed. ``/usbkey/config`` belongs to
the node: only its managed keys are ours, so its hash covers those keys alone
(``managed_digest``), whatever their order in the file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace

from overlays.desired import DesiredFile, UsbkeyConfigEdit
from overlays.filegroups import USBKEY, Scope, in_scope, merge_paths
from overlays.generators import render_node
from overlays.snapshot import ClusterSnapshot, NodeView


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
    """The hash a deployment records for a whole file."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    return hashlib.sha256(data).hexdigest()


def managed_digest(managed: Mapping[str, str]) -> str:
    """Hash of the managed keys of /usbkey/config, independent of their order in the file.

    The rest of that file belongs to the node, so this is what ``DeployedFile``
    records for it and what the drift check compares.
    """
    canonical = "".join(f"{key}={managed[key]}\n" for key in sorted(managed))
    return sha256_text(canonical)


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

    def summary(self) -> Plan:
        """The same plan without the file texts (paths, hashes, reloads): what a result
        keeps once the pass is over, so many nodes' results stay small."""
        return replace(self, candidates=tuple(replace(c, file=None, usbkey=None)
                                              for c in self.candidates))


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
                                     sha256=sha256_text(desired_file.data),
                                     recorded=deployed.get(desired_file.path),
                                     reload=desired_file.reload, file=desired_file))
    wanted = {c.path for c in candidates}
    usbkey_path = merge_paths(paths)["usbkey_config"]
    stale = tuple(
        (path, digest) for path, digest in sorted(deployed.items())
        if path not in wanted and path != usbkey_path and in_scope(path, scope, paths)
    )
    return Plan(node_id=node.id, hostname=node.hostname, scope=scope,
                considered=tuple(c.path for c in candidates), candidates=tuple(candidates),
                stale=stale)
