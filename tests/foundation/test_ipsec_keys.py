"""IPSec pair keys: one per cross-PDC pair, encrypted at rest, never shown."""

from __future__ import annotations

import logging
import re

import pytest
from django.db import connection

from overlays import secretbox, services
from overlays.models import IpsecKey


@pytest.fixture
def mesh(cn01, cn02, cn21):
    services.reconcile_ipsec_keys()
    return cn01, cn02, cn21


def pairs() -> set[tuple[str, str]]:
    return {(k.node_a.hostname, k.node_b.hostname)
            for k in IpsecKey.objects.select_related("node_a", "node_b")}


def secrets_by_pair() -> dict[tuple[int, int], str]:
    return {(k.node_a_id, k.node_b_id): k.secret for k in IpsecKey.objects.all()}


def test_creating_nodes_creates_one_key_per_cross_pdc_pair_only(cn01, cn02, cn21):
    assert pairs() == {("cn01.prague", "cn21.brno"), ("cn02.prague", "cn21.brno")}
    assert services.reconcile_ipsec_keys() == (0, 0)  # nothing left to do


def test_reconcile_repairs_keys_missing_from_a_database_written_around_the_services(mesh):
    IpsecKey.objects.all().delete()
    assert services.reconcile_ipsec_keys() == (2, 0)
    assert pairs() == {("cn01.prague", "cn21.brno"), ("cn02.prague", "cn21.brno")}


def test_pair_is_stored_once_with_the_lower_node_id_first(mesh):
    for key in IpsecKey.objects.all():
        assert key.node_a_id < key.node_b_id


def test_reconcile_again_changes_nothing(mesh):
    before = secrets_by_pair()
    assert services.reconcile_ipsec_keys() == (0, 0)
    assert secrets_by_pair() == before


def test_each_pair_has_its_own_256_bit_hex_secret(mesh):
    secrets = list(secrets_by_pair().values())
    assert len(set(secrets)) == len(secrets) == 2
    for secret in secrets:
        assert re.fullmatch(r"[0-9a-f]{64}", secret)


def test_secret_is_encrypted_at_rest(mesh):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT secret_encrypted FROM {IpsecKey._meta.db_table}")
        stored = [row[0] for row in cursor.fetchall()]
    for secret in secrets_by_pair().values():
        assert all(secret not in column for column in stored)
        assert all(secret.encode().hex() not in column for column in stored)


def test_secret_is_decrypted_with_the_key_from_settings(mesh, settings):
    from cryptography.fernet import Fernet, InvalidToken

    key = IpsecKey.objects.first()
    settings.OVERLAY_SECRETS_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(InvalidToken):
        _ = key.secret


def test_secret_survives_a_rotation_of_the_encryption_keys(cn01, cn21, settings):
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    IpsecKey.objects.all().delete()  # the nodes' keys were made under the default key
    settings.OVERLAY_SECRETS_KEYS = [old]
    services.reconcile_ipsec_keys()
    secret = IpsecKey.objects.get().secret
    settings.OVERLAY_SECRETS_KEYS = [new, old]
    assert IpsecKey.objects.get().secret == secret
    assert secretbox.decrypt(secretbox.encrypt("x")) == "x"


def test_repr_and_str_never_contain_the_secret(mesh):
    for key in IpsecKey.objects.all():
        secret = key.secret
        assert secret not in repr(key)
        assert secret not in str(key)
        assert "cn21.brno" in str(key)


def test_logs_of_reconcile_and_rotate_contain_no_secret(cn01, cn02, cn21, caplog, make_node):
    caplog.set_level(logging.DEBUG)
    services.reconcile_ipsec_keys()
    services.rotate_ipsec_keys()
    make_node("cn31.ostrava", pdc="ostrava")
    services.reconcile_ipsec_keys()
    logged = caplog.text + " ".join(str(r.args) for r in caplog.records)
    for secret in secrets_by_pair().values():
        assert secret not in logged


def test_pdc_change_removes_stale_keys_and_creates_new_ones(mesh):
    cn01, cn02, cn21 = mesh
    kept = IpsecKey.objects.get(node_a=min(cn02.pk, cn21.pk), node_b=max(cn02.pk, cn21.pk))
    cn01.pdc = "brno"
    services.save(cn01)  # reconciles the keys in the same transaction
    assert services.reconcile_ipsec_keys() == (0, 0)
    assert pairs() == {("cn01.prague", "cn02.prague"), ("cn02.prague", "cn21.brno")}
    assert IpsecKey.objects.filter(pk=kept.pk).exists()


def test_node_deletion_removes_its_keys(mesh):
    services.delete(mesh[2])
    assert not IpsecKey.objects.exists()
    assert services.reconcile_ipsec_keys() == (0, 0)


def test_rotation_changes_every_secret_and_records_when(mesh):
    before = secrets_by_pair()
    assert services.rotate_ipsec_keys() == 2
    after = secrets_by_pair()
    assert after.keys() == before.keys()
    assert all(after[pair] != before[pair] for pair in before)
    assert all(k.rotated_at for k in IpsecKey.objects.all())


def test_rotating_some_keys_leaves_the_others(mesh):
    before = secrets_by_pair()
    first = IpsecKey.objects.order_by("pk").first()
    services.rotate_ipsec_keys([first])
    after = secrets_by_pair()
    changed = {pair for pair in before if before[pair] != after[pair]}
    assert changed == {(first.node_a_id, first.node_b_id)}


def test_same_pdc_cluster_needs_no_keys(cn01, cn02):
    assert services.reconcile_ipsec_keys() == (0, 0)
    assert not IpsecKey.objects.exists()


def test_syncs_triggered_by_reconcile_and_rotate_log_no_secret(
        make_node, caplog, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.OVERLAY_TRANSPORT = "local"
    settings.OVERLAY_LOCAL_ROOT = tmp_path
    caplog.set_level(logging.DEBUG)
    with django_capture_on_commit_callbacks(execute=True):
        make_node("cn01.prague", admin_ip="10.0.0.11", external_ip="203.0.113.11")
        make_node("cn21.brno", pdc="brno", admin_ip="10.1.0.21", external_ip="198.51.100.21")
    with django_capture_on_commit_callbacks(execute=True):
        services.reconcile_ipsec_keys()
    with django_capture_on_commit_callbacks(execute=True):
        services.rotate_ipsec_keys()
    secret = IpsecKey.objects.get().secret
    preshared = list(tmp_path.rglob("ike.preshared"))
    assert len(preshared) == 2, "the rotation did not reach both nodes"
    assert all(secret in path.read_text() for path in preshared)
    assert secret not in caplog.text
