"""Fixtures of the push-cost tests: the safe-apply tests' loopback cluster (cn01, cn02 in
prague, cn03 in brno, real sshd nodes, a short revert timer)."""

from __future__ import annotations

from tests.safeapply.conftest import (  # noqa: F401 - fixtures used by these tests
    cluster,
    distribution_settings,
    make_cluster,
    safeapply_settings,
    ssh_transport,
    testnode_cluster,
    testnode_management_key,
)
