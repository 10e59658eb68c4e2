"""Fixtures for transport tests: loopback test nodes and transports connected to them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paramiko
import pytest

from nodes.transports import ssh
from nodes.transports.ssh import SshTransport
from tests.harness import testnodes
from tests.harness.testnodes import TestCluster, TestNode

# The shared test-node fixtures, made available to this package.
testnode_management_key = testnodes.testnode_management_key
testnode_cluster = testnodes.testnode_cluster


@pytest.fixture
def three_nodes(testnode_cluster: TestCluster) -> list[TestNode]:
    """cn01 and cn02 in one PDC, cn03 in another; all running."""
    return [
        testnode_cluster.add("cn01", pdc="prague"),
        testnode_cluster.add("cn02", pdc="prague"),
        testnode_cluster.add("cn03", pdc="brno"),
    ]


@pytest.fixture
def ssh_to(testnode_management_key: Path) -> Iterator[Callable[..., SshTransport]]:
    """``ssh_to(node, host_key=..., key_path=...)``: an SshTransport, closed after the test."""
    opened: list[SshTransport] = []

    def connect(node: TestNode, *, host_key: str | None = None,
                key_path: Path | None = None) -> SshTransport:
        transport = SshTransport(
            node.address(host_key=host_key),
            private_key_path=str(key_path or testnode_management_key),
            connect_timeout=5.0,
            command_timeout=20.0,
        )
        opened.append(transport)
        return transport

    yield connect
    for transport in opened:
        transport.close()


@dataclass
class RoundTrips:
    count: int = 0


@pytest.fixture
def sftp_round_trips(monkeypatch: pytest.MonkeyPatch) -> RoundTrips:
    """Counts SFTP round trips from now on: each pipelined batch, and each request that
    paramiko sends and waits for on its own."""
    trips = RoundTrips()
    real_batch, real_request = ssh.pipelined, paramiko.SFTPClient._request

    def batch(*args):  # noqa: ANN002, ANN202
        trips.count += 1
        return real_batch(*args)

    def alone(self, *args):  # noqa: ANN001, ANN002, ANN202
        trips.count += 1
        return real_request(self, *args)

    monkeypatch.setattr(ssh, "pipelined", batch)
    monkeypatch.setattr(paramiko.SFTPClient, "_request", alone)
    return trips
