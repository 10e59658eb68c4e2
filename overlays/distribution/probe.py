"""Is a node reachable now? A connection over its transport, and nothing written.

Key rotation (``overlays.tasks.rotate_keys``) asks this of both ends of a pair before it
gives the pair a new key: a pair with an end that does not answer keeps its key, so its
two ends never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from django.core.exceptions import ImproperlyConfigured

from nodes.models import Node, NodeStatus
from nodes.transports import TransportError, open_transport
from overlays.selectors import node_paths


def probe_node(node: Node) -> str:
    """"" when the node is online and answers over its transport now; otherwise why not.

    Connects (SSH: the pinned host key and the management key) and reads the metadata of
    the pre-shared keys file: the same path a sync writes, and no command runs.
    """
    if node.status != NodeStatus.ONLINE:
        return f"{node.hostname} is {node.status}"
    try:
        with open_transport(node.ssh_address) as transport:
            transport.stat(node_paths()["ike_preshared"])
    except (TransportError, ImproperlyConfigured) as exc:
        return f"{node.hostname} cannot be reached: {exc}"
    return ""


def probe_nodes(nodes: Iterable[Node], *, jobs: int = 8) -> dict[int, str]:
    """``probe_node`` of each node, several at once: node id -> "" or why it is not reachable."""
    nodes = list(nodes)
    if len(nodes) <= 1 or jobs <= 1:
        return {node.pk: probe_node(node) for node in nodes}
    with ThreadPoolExecutor(max_workers=min(jobs, len(nodes)),
                            thread_name_prefix="probe") as pool:
        return dict(zip([n.pk for n in nodes], pool.map(probe_node, nodes), strict=True))
