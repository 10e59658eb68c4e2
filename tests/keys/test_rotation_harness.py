"""Coordinated key rotation on real sshd nodes: a pair gets a new key on both ends in one
batch, or, with an end down, nothing changes anywhere and the rotation is deferred."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from auditlog.models import LogEntry
from django.core.management import CommandError, call_command
from django.utils import timezone

from nodes.models import Deployment, Node
from overlays.distribution.preview import parse_preshared
from overlays.models import IpsecKey, KeyRotation
from overlays.tasks import rotate_old_keys

pytestmark = [pytest.mark.services, pytest.mark.django_db]

PRESHARED = "/opt/custom/etc/ipsec/ike.preshared"


def overlay(*args: str) -> str:
    out = StringIO()
    call_command("overlay", *args, stdout=out)
    return out.getvalue()


def pair_key(a: str, b: str) -> IpsecKey:
    ids = sorted(Node.objects.filter(hostname__in=[a, b]).values_list("pk", flat=True))
    return IpsecKey.objects.get(node_a_id=ids[0], node_b_id=ids[1])


def key_on(cluster, hostname: str, peer: str) -> str:
    """The key ``hostname``'s ike.preshared holds for ``peer`` (by its external IP)."""
    blocks = parse_preshared(cluster.read(hostname, PRESHARED))
    return blocks[Node.objects.get(hostname=peer).external_ip]


@pytest.fixture
def synced(cluster):
    overlay("update", "--yes")
    return cluster


def test_a_rotation_with_one_end_down_changes_neither_end(synced):
    cluster = synced
    key = pair_key("cn01", "cn03")
    secret, rotated_at = key.secret, key.rotated_at
    files = {host: cluster.read(host, PRESHARED) for host in ("cn01", "cn02", "cn03")}
    deployments = Deployment.objects.count()
    cluster.tn("cn03").stop()

    out = StringIO()
    with pytest.raises(CommandError, match="1 pair\\(s\\) deferred"):
        call_command("overlay", "keys", "rotate", "--pair", "cn01,cn03", stdout=out)

    key.refresh_from_db()
    assert (key.secret, key.rotated_at) == (secret, rotated_at)
    cluster.tn("cn03").start()
    assert {host: cluster.read(host, PRESHARED) for host in files} == files
    assert Deployment.objects.count() == deployments  # no sync was even attempted
    assert Node.objects.get(hostname="cn01").sync_status == "in_sync"
    record = KeyRotation.objects.get()
    assert (record.node_a, record.node_b, record.outcome) == ("cn01", "cn03", "deferred")
    assert "cn03 cannot be reached" in record.reason
    assert "deferred" in out.getvalue() and secret not in out.getvalue()


def test_a_rotation_with_both_ends_up_gives_both_the_same_new_key(synced):
    cluster = synced
    key = pair_key("cn01", "cn03")
    old = key.secret
    other = pair_key("cn02", "cn03").secret
    cluster.clear_calls()

    output = overlay("keys", "rotate", "--pair", "cn03,cn01")

    key.refresh_from_db()
    new = key.secret
    assert new != old
    assert key_on(cluster, "cn01", "cn03") == new == key_on(cluster, "cn03", "cn01")
    assert key_on(cluster, "cn03", "cn02") == other == key_on(cluster, "cn02", "cn03")
    assert cluster.svcadm("cn02") == []  # not an end of the pair
    # The IPSec reload refreshes the policy and in.iked; nothing flushes an SA.
    for host in ("cn01", "cn03"):
        assert cluster.svcadm(host) == ["svcadm refresh ipsec/policy", "svcadm refresh ike"]
        commands = [c["command"] for d in Deployment.objects.filter(node__hostname=host,
                                                                    reason="IPSec key rotated")
                    for c in d.commands]
        assert commands and not any("flush" in c or "ipseckey" in c for c in commands)
    listing = json.loads(overlay("keys", "list", "--json"))["keys"]
    row = next(r for r in listing if (r["node_a"], r["node_b"]) == ("cn01", "cn03"))
    assert row["age_days"] == 0 and row["rotated_at"] is not None
    assert row["last_attempt"]["outcome"] == "done"
    text = overlay("keys", "list")
    for shown in (output, text, json.dumps(listing)):
        assert old not in shown and new not in shown and other not in shown
    record = KeyRotation.objects.get()
    assert (record.outcome, record.entry_point) == ("done", "cli")


def test_rotating_all_pairs_with_a_node_down_defers_only_its_pairs(synced):
    cluster = synced
    cn01_cn03, cn02_cn03 = pair_key("cn01", "cn03"), pair_key("cn02", "cn03")
    kept, replaced = cn01_cn03.secret, cn02_cn03.secret
    cn01_file = cluster.read("cn01", PRESHARED)
    cluster.tn("cn01").stop()

    with pytest.raises(CommandError, match="1 pair\\(s\\) deferred"):
        overlay("keys", "rotate", "--all")

    cluster.tn("cn01").start()
    assert pair_key("cn01", "cn03").secret == kept
    assert cluster.read("cn01", PRESHARED) == cn01_file
    assert key_on(cluster, "cn03", "cn01") == kept
    new = pair_key("cn02", "cn03").secret
    assert new != replaced
    assert key_on(cluster, "cn03", "cn02") == new == key_on(cluster, "cn02", "cn03")
    assert sorted(KeyRotation.objects.values_list("node_a", "node_b", "outcome")) == [
        ("cn01", "cn03", "deferred"), ("cn02", "cn03", "done")]


def test_older_than_picks_old_keys_only_and_the_periodic_rotation_does_the_same(
        synced, settings):
    cluster = synced
    old_pair = pair_key("cn02", "cn03")
    IpsecKey.objects.filter(pk=old_pair.pk).update(
        created_at=timezone.now() - timedelta(days=40))
    young = pair_key("cn01", "cn03").secret
    assert "nothing rotated" in overlay("keys", "rotate", "--all", "--older-than", "50")

    settings.OVERLAY_KEY_MAX_AGE_DAYS = 0
    assert rotate_old_keys() == {"rotated": 0, "deferred": 0, "pairs": []}
    settings.OVERLAY_KEY_MAX_AGE_DAYS = 30
    result = rotate_old_keys()

    assert result["rotated"] == 1 and result["deferred"] == 0
    new = pair_key("cn02", "cn03").secret
    assert new != old_pair.secret and pair_key("cn01", "cn03").secret == young
    assert key_on(cluster, "cn02", "cn03") == new == key_on(cluster, "cn03", "cn02")
    assert KeyRotation.objects.get().requested_by == "celery beat"


def test_the_audit_trail_records_the_rotation_without_the_secret(synced):
    key = pair_key("cn01", "cn03")
    old = key.secret
    overlay("--actor", "ops-alice", "keys", "rotate", "--pair", "cn01,cn03")
    new = pair_key("cn01", "cn03").secret

    entries = LogEntry.objects.filter(content_type__model__in=["ipseckey", "keyrotation"])
    assert {e.content_type.model for e in entries} == {"ipseckey", "keyrotation"}
    key_entry = entries.get(content_type__model="ipseckey", action=LogEntry.Action.UPDATE)
    assert "rotated_at" in key_entry.changes_dict
    assert key_entry.additional_data["actor"] == "ops-alice"
    dump = json.dumps([e.changes_dict for e in entries]) + json.dumps(
        [e.additional_data for e in entries])
    assert old not in dump and new not in dump
    assert "secret_encrypted" not in dump
