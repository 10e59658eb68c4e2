from __future__ import annotations

import pytest

from overlays.snapshot import ClusterSnapshot, NodeView

from .scenario import build_scenario


@pytest.fixture
def cluster() -> ClusterSnapshot:
    return build_scenario()


@pytest.fixture
def host(cluster):
    """``host("cn01")`` -> that node of the scenario."""

    def lookup(hostname: str) -> NodeView:
        return cluster.nodes_by_hostname[hostname]

    return lookup
