"""Fixtures of the safe-apply tests: the distribution tests' loopback cluster (cn01, cn02 in
prague, cn03 in brno) over real sshd nodes, with short commit-confirmed timeouts."""

from __future__ import annotations

import pytest

from tests.distribution.conftest import (  # noqa: F401 - fixtures used by these tests
    cluster,
    distribution_settings,
    make_cluster,
    ssh_transport,
)
from tests.harness import testnodes

testnode_management_key = testnodes.testnode_management_key
testnode_cluster = testnodes.testnode_cluster

CONFIRM_TIMEOUT = 4.0  # seconds the node waits for the manager's confirmation


@pytest.fixture(autouse=True)
def safeapply_settings(settings) -> None:
    """A short revert timer, and a connect timeout that lets the manager retry in it.

    The management source is pinned, so that learning it at the first sync requests no
    extra pass of every node's administration file."""
    settings.OVERLAY_CONFIRM_TIMEOUT = CONFIRM_TIMEOUT
    settings.OVERLAY_SSH_TIMEOUT = 1.0
    settings.OVERLAY_MANAGEMENT_SOURCES = ["127.0.0.1"]
