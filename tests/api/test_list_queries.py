"""Every API list takes a fixed number of queries, whatever the number of rows it shows.

Each list is read once on the demo cluster, then again after rows of every kind were
added (nodes, and with them IPSec pairs; rules, networks, vNICs, vDCs, deployments): the
second read may not take more queries than the first. A serializer field that queries
per row fails here.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from nodes.models import Deployment, Node
from overlays import services
from overlays.models import OverlayRule, VirtualNetwork, Vnic
from vdc.models import Vdc

pytestmark = pytest.mark.django_db

LISTS = {
    "superuser": ["/api/v1/nodes/", "/api/v1/overlay-rules/", "/api/v1/networks/", "/api/v1/vnics/",
           "/api/v1/ipsec-keys/", "/api/v1/vdcs/", "/api/v1/key-rotations/",
           "/api/v1/adoptions/", "/api/v1/adopted-networks/", "/api/v1/audit/"],
    "alice": ["/api/v1/overlay-rules/", "/api/v1/networks/", "/api/v1/vnics/",
              "/api/v1/vdcs/"],
}


def grow_cluster() -> None:
    """Add rows of every listed kind, through the services (as users would)."""
    acme = Vdc.objects.get(name="acme")
    rule = OverlayRule.objects.get(name="customers")
    nodes = [services.save(Node(hostname=f"cn{30 + i}.brno", pdc="brno",
                                admin_ip=f"10.0.0.{30 + i}", external_ip=f"198.51.100.{30 + i}",
                                nic_tags=["admin", "external"], ssh_host="127.0.0.1"))
             for i in range(3)]
    services.save(OverlayRule(name="extra", port=4799))
    networks = [services.save(VirtualNetwork(name=f"acme-more-{i}", vdc=acme, overlay_rule=rule,
                                             vxlan_id=120 + i, vlan_id=10,
                                             network=f"10.210.{i}.0/24"))
                for i in range(3)]
    for i, network in enumerate(networks):
        for k in range(3):
            services.save(Vnic(vm_name=f"more{i}-{k}", node=nodes[k], network=network,
                               mac=f"02:08:20:ee:{i:02x}:{k:02x}", ip=f"10.210.{i}.{10 + k}"))
    services.save(Vdc(name="initech", vxlan_allowed="300-309", vlan_allowed="10-20"))
    now = timezone.now()
    Deployment.objects.bulk_create([Deployment(node=node, started_at=now, finished_at=now,
                                               result="ok") for node in nodes])


@pytest.mark.parametrize("role,url", [(role, url) for role, urls in LISTS.items()
                                      for url in urls])
def test_a_list_takes_the_same_queries_for_more_rows(role, url, client_for,
                                                     django_assert_max_num_queries):
    client = client_for(role)
    client.get(url, {"limit": 500})  # warm whatever a first request loads once
    with django_assert_max_num_queries(40) as few:
        first = client.get(url, {"limit": 500})
    assert first.status_code == 200, first.content
    grow_cluster()

    with django_assert_max_num_queries(len(few.captured_queries)):
        again = client.get(url, {"limit": 500})

    assert again.status_code == 200
    if url not in ("/api/v1/key-rotations/", "/api/v1/adoptions/",
                   "/api/v1/adopted-networks/") and (role, url) != ("alice", "/api/v1/vdcs/"):
        assert again.json()["count"] > first.json()["count"], "the list did not grow"
