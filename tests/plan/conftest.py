"""Fixtures of the plan tests: the distribution tests' loopback sshd cluster, and a picture
of every managed file on the nodes to compare before and after a sync."""

from __future__ import annotations

from tests.distribution.conftest import (
    Cluster,
    cluster,
    distribution_settings,
    make_cluster,
    ssh_transport,
    testnode_cluster,
    testnode_management_key,
)

__all__ = ["cluster", "distribution_settings", "make_cluster", "node_files", "ssh_transport",
           "testnode_cluster", "testnode_management_key"]

# The node directories the manager writes its files into (the rest are the reload
# commands' copies and the harness's own files).
MANAGED_ROOTS = ("/usbkey", "/opt/custom")


def node_files(cluster: Cluster) -> dict[tuple[str, str], bytes]:
    """Every file under the managed roots of every node: (host, node path) -> bytes."""
    found: dict[tuple[str, str], bytes] = {}
    for hostname, test_node in cluster.test_nodes.items():
        for root in MANAGED_ROOTS:
            local_root = test_node.path(root)
            for path in sorted(local_root.rglob("*")):
                if path.is_file():
                    node_path = root + "/" + str(path.relative_to(local_root))
                    found[(hostname, node_path)] = path.read_bytes()
    return found


def changed_files(before: dict[tuple[str, str], bytes],
                  after: dict[tuple[str, str], bytes]) -> set[tuple[str, str]]:
    """Files created, removed or rewritten with other bytes between two pictures."""
    return {key for key in set(before) | set(after) if before.get(key) != after.get(key)}
