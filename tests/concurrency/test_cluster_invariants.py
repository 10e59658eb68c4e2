"""Nodes and overlay rules created in parallel: admin overlay addresses, IPSec pair keys,
rule ports and ARP table files stay one per owner."""

from __future__ import annotations

import itertools

import pytest

from nodes.models import Node
from overlays import services
from overlays.models import AdminOverlayAddress, IpsecKey, OverlayRule, Vnic
from overlays.rulestring import default_arp_file
from tests.concurrency.racing import (
    PARALLEL,
    ROUNDS,
    assert_clean,
    delete,
    post,
    put,
    race,
    statuses,
)

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_nodes_created_in_parallel_each_get_an_admin_address_and_every_pair_key(users):
    for round_ in range(ROUNDS):
        outcomes = race([post(users["root"], "/api/v1/nodes/", {
            "hostname": f"race{round_}n{i}.{pdc}", "pdc": pdc,
            "external_ip": f"198.51.{100 + round_}.{i + 1}"})
            for i, pdc in zip(range(PARALLEL), itertools.cycle(("prague", "brno")), strict=False)])

        assert statuses(outcomes) == {201: PARALLEL}, [o.body for o in outcomes
                                                       if o.status != 201]
        nodes = list(Node.objects.values_list("pk", "pdc"))
        addressed = AdminOverlayAddress.objects.values_list("node_id", flat=True)
        assert sorted(addressed) == sorted(pk for pk, _ in nodes)
        needed = {(a, b) for (a, pdc_a), (b, pdc_b) in itertools.combinations(sorted(nodes), 2)
                  if pdc_a != pdc_b}
        keys = set(IpsecKey.objects.values_list("node_a_id", "node_b_id"))
        assert keys == needed, (f"round {round_}: {len(needed - keys)} pairs without a key, "
                                f"{len(keys - needed)} keys too many")
        Node.objects.filter(hostname__startswith="race").delete()


def test_rules_created_in_parallel_get_their_own_ports_and_arp_files(users):
    for round_ in range(ROUNDS):
        shared = default_arp_file(f"shared{round_}")
        calls = []
        for i in range(PARALLEL):
            rule = {"name": f"race{round_}r{i}x", "nodes": "all"}  # no port: the next free one
            if i % 3 == 0:
                rule["arp_file"] = shared
            calls.append(post(users["root"], "/api/v1/overlay-rules/", rule))

        outcomes = race(calls)

        sharing = PARALLEL // 3
        assert statuses(outcomes) == {201: PARALLEL - sharing + 1, 400: sharing - 1}
        assert_clean(outcomes, refused_on="arp_file")
        assert OverlayRule.objects.filter(arp_file=shared).count() == 1
        ports = list(OverlayRule.objects.values_list("port", flat=True))
        assert len(ports) == len(set(ports))
        OverlayRule.objects.filter(name__startswith="race").delete()


def test_a_node_deleted_while_vnics_are_placed_on_it_refuses_one_or_the_other(users):
    for round_ in range(ROUNDS):
        services.save(Node(hostname=f"race{round_}.prague", pdc="prague"))
        calls = [post(users["alice"], "/api/v1/vnics/", {
            "vm_name": f"race{i}", "node": f"race{round_}.prague", "network": "acme-web",
            "mac": f"02:aa:ee:{round_:02x}:00:{i:02x}", "ip": f"192.168.10.{100 + i}"})
            if i % 3 else delete(users["root"], f"/api/v1/nodes/race{round_}.prague/")
            for i in range(PARALLEL)]

        outcomes = race(calls)

        raised = [repr(o.error) for o in outcomes if o.error is not None]
        assert not raised
        # Either the node went first (later vNICs: no such node) or a vNIC did (the deletes
        # are refused, in words, because it is in use): never the foreign key's error.
        placed, deleted = outcomes[1::3] + outcomes[2::3], outcomes[0::3]
        assert {o.status for o in placed} <= {201, 400}, [o.body for o in placed]
        assert {o.status for o in deleted} <= {204, 404, 409}, [o.body for o in deleted]
        assert all("is still used by: vNIC" in o.body["detail"]
                   for o in deleted if o.status == 409), [o.body for o in deleted]
        created = Vnic.objects.filter(vm_name__startswith="race").count()
        assert created == statuses(outcomes).get(201, 0)
        assert Node.objects.filter(hostname=f"race{round_}.prague").exists() == bool(created)
        Vnic.objects.filter(vm_name__startswith="race").delete()
        Node.objects.filter(hostname__startswith="race").delete()


def test_addresses_assigned_together_while_nodes_are_deleted_go_only_to_live_nodes(users):
    # The admin overlay gives every node without an address one, all in one write; nodes
    # deleted at the same instant either go first (and get none) or wait for it.
    for round_ in range(ROUNDS):
        created = [services.save(Node(hostname=f"race{round_}n{i}.prague", pdc="prague",
                                      admin_ip=f"10.9.{round_}.{i + 1}"))
                   for i in range(PARALLEL // 2)]
        AdminOverlayAddress.objects.filter(node__in=created).delete()  # as never assigned
        doomed = created[::2]
        outcomes = race([put(users["root"], "/api/v1/admin-overlay/", {}),
                         *(delete(users["root"], f"/api/v1/nodes/{node.hostname}/")
                           for node in doomed)])

        assert statuses(outcomes) == {200: 1, 204: len(doomed)}, [
            (o.status, o.body, o.error) for o in outcomes if o.status not in (200, 204)]
        live = set(Node.objects.values_list("pk", flat=True))
        assert not live & {node.pk for node in doomed}
        addressed = list(AdminOverlayAddress.objects.values_list("node_id", flat=True))
        assert sorted(addressed) == sorted(live)
        ips = list(AdminOverlayAddress.objects.values_list("ip", flat=True))
        assert len(set(ips)) == len(ips)
        Node.objects.filter(hostname__startswith="race").delete()
