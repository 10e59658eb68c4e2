"""Drift: what is on a node compared with what was last deployed there.

Reads the node's managed files over one connection and changes nothing. Hand
edits and missing files are drift; files whose desired content was never
deployed or changed since are "a sync is due", which is not drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured

from nodes.models import DeployedFile, Node
from nodes.transports import TransportError, open_transport
from overlays.distribution.plan import managed_digest, plan_node, sha256_text
from overlays.generators import read_managed_keys
from overlays.selectors import load_snapshot, node_paths


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
    usbkey_path = paths["usbkey_config"]
    deployed = dict(DeployedFile.objects.filter(node=node).values_list("path", "sha256"))
    snapshot = load_snapshot()
    view = snapshot.nodes_by_id[node_id]
    plan = plan_node(snapshot, view, scope=None, deployed=deployed, paths=paths)
    desired = {c.path: c.sha256 for c in plan.candidates}
    try:
        with open_transport(node.ssh_address) as transport:
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
