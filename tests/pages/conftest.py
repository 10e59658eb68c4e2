"""Fixtures of the web page tests: the demo cluster (vDC acme with admin alice, globex with
admin bob), logged-in clients per role and the facts alice must never see."""

from __future__ import annotations

import pytest
from django.test import Client

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def page_settings(settings, tmp_path) -> None:
    """Fast password hashing; any files a sync would push land in a temporary directory."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.OVERLAY_TRANSPORT = "local"
    settings.OVERLAY_LOCAL_ROOT = tmp_path / "node-files"


@pytest.fixture
def users(demo_cluster, django_user_model) -> dict:
    """alice (acme), bob (globex), a superuser and carol who administers nothing."""
    people = {}
    for name in ("alice", "bob"):
        user = django_user_model.objects.get(username=name)
        user.set_password(PASSWORD)
        user.save()
        people[name] = user
    people["root"] = django_user_model.objects.create_superuser(
        "root", "root@example.invalid", PASSWORD)
    people["carol"] = django_user_model.objects.create_user("carol", password=PASSWORD)
    return people


@pytest.fixture
def client_for(users):
    """client_for("alice") -> a test client logged in as that user."""

    def make(name: str) -> Client:
        client = Client()
        client.force_login(users[name])
        return client

    return make


@pytest.fixture
def alice(client_for) -> Client:
    return client_for("alice")


@pytest.fixture
def bob(client_for) -> Client:
    return client_for("bob")


@pytest.fixture
def root(client_for) -> Client:
    return client_for("root")


ALICE_NETWORKS = ("acme-web", "acme-db")


def alice_urls() -> list[str]:
    """Every page alice can open in the demo cluster."""
    urls = ["/", "/vdcs/acme/", "/vdcs/acme/networks/new/", "/vdcs/acme/vnics/"]
    for name in ALICE_NETWORKS:
        urls += [f"/networks/{name}/", f"/networks/{name}/edit/", f"/networks/{name}/delete/",
                 f"/networks/{name}/vnics/new/"]
    return urls


def vnic_urls(vnic_id: int) -> list[str]:
    """The pages of one vNIC (known only once the database is loaded)."""
    return [f"/vnics/{vnic_id}/edit/", f"/vnics/{vnic_id}/move/", f"/vnics/{vnic_id}/delete/"]


def bob_only_urls() -> list[str]:
    return ["/vdcs/globex/", "/vdcs/globex/networks/new/", "/vdcs/globex/vnics/",
            "/networks/globex-app/", "/networks/globex-app/edit/",
            "/networks/globex-app/delete/", "/networks/globex-app/vnics/new/"]


def facts_hidden_from_alice() -> list[str]:
    """Everything in the demo cluster that is not acme's: other vDCs' and global networks,
    their vNICs, node addresses and SSH settings, the admin overlay, the firewall."""
    from nodes.models import Node
    from overlays.models import AdminOverlay, AdminOverlayAddress, FirewallSettings, Vnic
    from overlays.models import VirtualNetwork as Net
    from vdc.models import Vdc

    hidden: set[str] = set(Vdc.objects.exclude(name="acme").values_list("name", flat=True))
    for net in Net.objects.exclude(vdc__name="acme"):
        hidden |= {net.name, net.network, net.gateway or ""}
    for vnic in Vnic.objects.exclude(network__vdc__name="acme"):
        hidden |= {vnic.vm_name, vnic.mac, vnic.ip, vnic.ip6 or ""}
    for node in Node.objects.all():
        hidden |= {node.admin_ip or "", node.external_ip or "", node.ssh_host, node.ssh_host_key}
    for address in AdminOverlayAddress.objects.all():
        hidden |= {address.ip, address.mac}
    hidden |= {overlay.subnet for overlay in AdminOverlay.objects.all()}
    hidden |= set(FirewallSettings.load().allowed_sources)
    return sorted(h for h in hidden if h)


def ipsec_secrets() -> list[str]:
    from overlays.models import IpsecKey

    secrets = [key.secret for key in IpsecKey.objects.all()]
    assert secrets, "the demo cluster spans two PDCs, so it has IPSec keys"
    return secrets
