"""Drift: what is on a node compared with what it should hold and with what was deployed.

Reads the node's managed files over one connection and changes nothing. Each file the
node should hold, or was last given, is one of:

=============  ===========================================================================
ok             the node holds what it should
modified       the node's file differs from what was deployed and from what it should
               hold: a hand edit (drift)
missing        deployed, now absent (drift)
outdated       the node holds what was last deployed, but it should hold something newer:
               a sync is due (pending, or it failed)
not-deployed   it should hold the file, which was never deployed and is not there
=============  ===========================================================================

A node is in line with its desired state only when every file is "ok"
(``DriftReport.behind`` lists the rest).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured

from nodes.models import DeployedFile, Node
from nodes.transports import TransportError, open_transport
from overlays.distribution.plan import managed_digest, plan_node, sha256_text
from overlays.generators import read_managed_keys
from overlays.selectors import load_snapshot, node_paths
from overlays.snapshot import ClusterSnapshot

DRIFT = ("modified", "missing")
BEHIND = ("outdated", "not-deployed")


@dataclass(frozen=True)
class DriftItem:
    path: str
    state: str  # ok | modified | missing | outdated | not-deployed
    detail: str = ""


@dataclass
class DriftReport:
    hostname: str
    items: list[DriftItem] = field(default_factory=list)
    error: str = ""

    @property
    def drifted(self) -> list[DriftItem]:
        """Hand edits and missing files: what is on the node is not what was deployed."""
        return [item for item in self.items if item.state in DRIFT]

    @property
    def behind(self) -> list[DriftItem]:
        """Files the node holds as deployed or not at all, where it should hold newer ones."""
        return [item for item in self.items if item.state in BEHIND]

    @property
    def as_desired(self) -> bool:
        """The node holds exactly what it should (and it could be read)."""
        return not self.error and all(item.state == "ok" for item in self.items)


def check_drift(node_id: int, *, snapshot: ClusterSnapshot | None = None) -> DriftReport:
    """Compare the files on a node with its desired files and the deployed ones; change nothing.

    ``snapshot``: the cluster as read once for several nodes (``overlay drift``): each node
    then costs its own queries, not a load of the whole cluster.
    """
    node = Node.objects.get(pk=node_id)
    report = DriftReport(hostname=node.hostname)
    paths = node_paths()
    usbkey_path = paths["usbkey_config"]
    deployed = dict(DeployedFile.objects.filter(node=node).values_list("path", "sha256"))
    if snapshot is None or node_id not in snapshot.nodes_by_id:
        snapshot = load_snapshot()
    view = snapshot.nodes_by_id[node_id]
    plan = plan_node(snapshot, view, scope=None, deployed=deployed, paths=paths)
    desired = {c.path: c.sha256 for c in plan.candidates}
    try:
        with open_transport(node.ssh_address) as transport:
            contents = transport.read_files(sorted(set(deployed) | set(desired)))
        for path, content in contents.items():
            report.items.append(_compare(path, content, deployed.get(path), desired.get(path),
                                         usbkey=path == usbkey_path))
    except (TransportError, ImproperlyConfigured) as exc:
        report.error = str(exc)
        report.items = [DriftItem(p, "not-deployed", "never deployed; a sync is due")
                        for p in sorted(set(desired) - set(deployed))]
    return report


def _compare(path: str, content: bytes | None, deployed: str | None, desired: str | None, *,
             usbkey: bool) -> DriftItem:
    if content is None:
        if deployed is not None:
            return DriftItem(path, "missing", "deployed, now absent")
        return DriftItem(path, "not-deployed", "never deployed; a sync is due")
    if usbkey:
        actual = managed_digest(read_managed_keys(content.decode("utf-8", errors="replace")))
    else:
        actual = sha256_text(content)
    if desired is None:  # deployed once, no longer desired: the next sync removes it
        if actual == deployed:
            return DriftItem(path, "outdated", "no longer desired; the next sync removes it")
        return DriftItem(path, "modified", "no longer desired and changed on the node")
    if actual == desired:
        return DriftItem(path, "ok")
    if deployed is not None and actual == deployed:
        return DriftItem(path, "outdated", "as last deployed; the node should hold newer "
                                           "content: a sync is due")
    if deployed is None:
        return DriftItem(path, "not-deployed", "never deployed; the node's file differs")
    what = ("managed keys differ from those deployed and desired" if usbkey
            else "content differs from what was deployed and what is desired")
    return DriftItem(path, "modified", what)
