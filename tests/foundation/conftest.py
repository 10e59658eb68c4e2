"""Fixtures of the foundation tests: a small cluster built through the service layer."""

from __future__ import annotations

import pytest

from nodes.models import Node
from overlays import services
from overlays.models import OverlayRule, VirtualNetwork, Vnic
from vdc.models import Vdc


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    """Users are created in most tests; the production hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def make_node(db):
    def make(hostname: str, pdc: str = "prague", **fields: object) -> Node:
        return services.save(Node(hostname=hostname, pdc=pdc, **fields))

    return make


@pytest.fixture
def cn01(make_node) -> Node:
    return make_node("cn01.prague", admin_ip="10.0.0.11", external_ip="203.0.113.11",
                     nic_tags=["admin", "external"])


@pytest.fixture
def cn02(make_node) -> Node:
    return make_node("cn02.prague", admin_ip="10.0.0.12", external_ip="203.0.113.12",
                     nic_tags=["admin", "external"])


@pytest.fixture
def cn21(make_node) -> Node:
    return make_node("cn21.brno", pdc="brno", admin_ip="10.1.0.21",
                     external_ip="198.51.100.21", nic_tags=["admin", "external"])


@pytest.fixture
def customers(db) -> OverlayRule:
    return services.save(OverlayRule(name="customers"))


@pytest.fixture
def lab(customers) -> OverlayRule:
    return services.save(OverlayRule(name="lab", all_nodes=False,
                                     node_names=["cn01.prague", "cn09.prague"]))


@pytest.fixture
def alice(db, django_user_model):
    return django_user_model.objects.create_user("alice", password="pw")


@pytest.fixture
def bob(db, django_user_model):
    return django_user_model.objects.create_user("bob", password="pw")


@pytest.fixture
def acme(alice) -> Vdc:
    vdc = services.save(Vdc(name="acme", vxlan_allowed="100-199", vlan_allowed="10-20"))
    vdc.admins.add(alice)
    return vdc


@pytest.fixture
def globex(bob) -> Vdc:
    vdc = services.save(Vdc(name="globex", vxlan_allowed="200-299", vlan_allowed="0-100"))
    vdc.admins.add(bob)
    return vdc


@pytest.fixture
def make_network(customers):
    def make(name: str = "acme-web", **fields: object) -> VirtualNetwork:
        values = {"overlay_rule": customers, "vxlan_id": 100, "vlan_id": 10,
                  "network": "192.168.10.0/24", "gateway": "192.168.10.1", **fields}
        return services.save(VirtualNetwork(name=name, **values))

    return make


@pytest.fixture
def web(make_network, acme) -> VirtualNetwork:
    return make_network("acme-web", vdc=acme)


@pytest.fixture
def make_vnic(cn01):
    def make(network: VirtualNetwork, mac: str, ip: str, **fields: object) -> Vnic:
        values = {"vm_name": "vm", "node": cn01, **fields}
        return services.save(Vnic(network=network, mac=mac, ip=ip, **values))

    return make
