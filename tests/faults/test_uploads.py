"""A node's SSH server killed in the middle of an upload: the node keeps its old file, and
the temporary file the upload left behind is removed by the next sync."""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from nodes.models import Deployment, PendingSync, SyncStatus
from nodes.transports import NodeAddress
from nodes.transports.base import temporary_name
from nodes.transports.local import LocalTransport
from overlays import services
from overlays.distribution.run import RunOutcome, run_sync
from overlays.generators import read_managed_keys
from overlays.models import OverlayRule
from tests.distribution.conftest import wait_for

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]

USBKEY = "/usbkey/config"
# The node's own lines in /usbkey/config: enough that the upload lasts a moment.
PLATFORM_LINES = 48 * 1024 * 1024 // 64


def temporaries(directory) -> list:
    return [p for p in directory.iterdir() if p.name.startswith(".config.tmp-")]


def test_sshd_killed_during_a_large_upload_keeps_the_old_file_and_the_next_sync_cleans_up(
        cluster, settings):
    cn01 = cluster.tn("cn01")
    node = cluster.node("cn01")
    assert run_sync(node.pk, reason="first").status == "done"
    big = cn01.path(USBKEY).read_bytes() + b"".join(
        b"# platform line %047d\n" % n for n in range(PLATFORM_LINES))
    cn01.path(USBKEY).write_bytes(big)
    settings.OVERLAY_AUTO_SYNC = False  # the sync runs below, where the test can cut it
    rule = OverlayRule.objects.get(name="customers")
    rule.mtu = 1450  # raised: its networks' MTU may not exceed the rule's
    services.save(rule)
    outcome: list[RunOutcome] = []

    def sync() -> None:
        try:
            outcome.append(run_sync(node.pk, reason="rule MTU changed"))
        finally:
            connections.close_all()

    syncing = threading.Thread(target=sync)
    syncing.start()
    usbkey_dir = cn01.path(USBKEY).parent
    wait_for(lambda: any(p.stat().st_size > 0 for p in temporaries(usbkey_dir)),
             timeout=60, what="the upload of /usbkey/config")
    cn01.stop()  # sshd and its sessions die in the middle of the transfer
    syncing.join(timeout=60)

    partial = temporaries(usbkey_dir)
    assert partial and partial[0].stat().st_size < len(big) + 100  # cut off midway
    assert cn01.path(USBKEY).read_bytes() == big  # the old file, intact
    assert Deployment.objects.filter(node=node).latest("id").result == "failed"
    node.refresh_from_db()
    assert node.sync_status != SyncStatus.IN_SYNC
    assert PendingSync.objects.filter(node=node).exists()  # still owed its sync

    cn01.start()
    started = time.monotonic()
    assert run_sync(node.pk, record=False).status == "done"

    assert temporaries(usbkey_dir) == []
    text = cn01.path(USBKEY).read_text()
    assert read_managed_keys(text)["overlay_rule_customers"].count("mtu=1450") == 1
    assert text.endswith(big.decode().split("\n", 1)[1][-200:])  # the node's lines kept
    node.refresh_from_db()
    # (the other nodes may owe an administration file: this sync learnt the manager's address)
    assert node.sync_status == SyncStatus.IN_SYNC
    assert not PendingSync.objects.filter(node=node).exists()
    print(f"\nMEASURED sshd killed mid-upload: next sync cleaned up and converged in "
          f"{time.monotonic() - started:.1f} s")


def test_only_temporaries_of_the_named_files_are_removed(tmp_path):
    transport = LocalTransport(tmp_path, NodeAddress(hostname="cn01", host="127.0.0.1"))
    directory = tmp_path / "cn01" / "opt" / "custom" / "etc" / "ipsec"
    directory.mkdir(parents=True)
    names = [temporary_name("ike.preshared"), temporary_name("config"),
             ".ike.preshared.tmp-notours", ".other.tmp-0123456789ab", "ike.preshared"]
    for name in names:
        (directory / name).write_text("x")

    removed = transport.remove_temporaries(["/opt/custom/etc/ipsec/ike.preshared",
                                            "/opt/custom/networking/gone.json"])

    assert removed == [f"/opt/custom/etc/ipsec/{names[0]}"]
    assert sorted(p.name for p in directory.iterdir()) == sorted(names[1:])
