"""Fixtures of the key rotation tests: the distribution tests' loopback sshd cluster
(cn01 and cn02 in prague, cn03 in brno: pairs cn01-cn03 and cn02-cn03)."""

from __future__ import annotations

from tests.distribution.conftest import (
    cluster,
    distribution_settings,
    make_cluster,
    ssh_transport,
    testnode_cluster,
    testnode_management_key,
)

__all__ = ["cluster", "distribution_settings", "make_cluster", "ssh_transport",
           "testnode_cluster", "testnode_management_key"]
