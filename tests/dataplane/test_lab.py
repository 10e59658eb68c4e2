"""The rendered files move packets, and only the right ones (issue 13).

Each test runs on two labs: the demo cluster and a generated one (3 PDCs,
8 nodes). A lab starts with the rendered firewall and IPSec mesh applied; the
tests that need another combination say so with ``lab.configure``. The tests
are ordered so that the lab changes state as few times as possible.

Path MTUs are measured with don't-fragment pings on the plain paths (within a
PDC, with and without a VLAN tag). The ESP path cannot be measured that way
here: libipsec does tunnel mode only and always wraps ESP in UDP, so its
packets are 28 bytes (plus padding) larger than illumos' transport-mode ESP,
and charon's UDP socket fragments an oversized ESP packet instead of refusing
it, as SmartOS fragments after IPSec. So the lab shows that traffic between
PDCs flows and is encrypted, not where its MTU limit lies.
"""

from __future__ import annotations

import pytest

from tests.dataplane import product, proofs

# django_db: the clusters are rendered from the test database (in fixtures, rolled back).
pytestmark = [pytest.mark.services, pytest.mark.django_db]


@pytest.fixture
def lab(cluster_lab):
    cluster_lab.configure(firewall=True, ipsec=True)
    return cluster_lab


def test_every_pair_of_vnics_on_a_network_pings_both_ways(lab):
    assert proofs.vnic_reach_failures(lab) == []


def test_admin_overlay_addresses_of_all_nodes_reach_each_other(lab):
    assert proofs.admin_overlay_failures(lab) == []


def test_within_a_pdc_traffic_takes_the_admin_link_and_across_pdcs_the_external_one(lab):
    samples = proofs.path_samples(lab)
    assert {proofs.crosses_pdcs(lab, a, b) for a, b in samples} == {True, False}
    assert proofs.path_failures(lab, samples) == []


def test_other_networks_and_other_tenants_are_unreachable_even_by_mac(lab):
    assert proofs.isolation_failures(lab) == []


def test_frames_for_a_mac_missing_from_the_table_are_dropped(lab):
    """As varpd drops what its lookup does not find: the VXLAN device has no default
    destination and learns nothing, so a frame for an unknown MAC never leaves the node."""
    vms = [lab.endpoints[vm.name] for vm in lab.world.vms if vm.name in lab.endpoints]
    source = vms[0]
    taken = {vm.ip for vm in lab.world.vms}
    ghost = next(str(ip) for ip in lab.world.networks[source.network].subnet.hosts()
                 if str(ip) not in taken)
    vxlan = lab.vxlan_device(source)
    before = lab.device_counters(source.host, vxlan)
    with lab.static_neighbour(source, ghost, "02:00:5e:10:00:01"):
        assert lab.ping([(source, ghost)], count=3) == [False]
    after = lab.device_counters(source.host, vxlan)
    assert after["dropped"] - before["dropped"] >= 3
    assert after["sent"] == before["sent"]


def mtu_pairs(lab, *, vlan: bool):
    """A pair of endpoints on different nodes of one PDC, on a tagged or untagged segment."""
    pairs = [(a, b) for a, b in proofs.same_pdc_pairs(lab) if a.vlan == vlan]
    nodes = {e.host: e for e in lab.endpoints.values() if e.namespace == lab.node_ns[e.host]}
    pairs += [(a, b) for a in nodes.values() for b in nodes.values()
              if a.host != b.host and a.vlan == vlan and not proofs.crosses_pdcs(lab, a, b)]
    if not pairs:
        pytest.fail(f"the cluster has no same-PDC pair on a {'tagged' if vlan else 'plain'} "
                    "segment to measure")
    return pairs[0]


@pytest.mark.parametrize("vlan", [False, True], ids=["untagged", "vlan"])
def test_dont_fragment_pings_fit_the_computed_path_mtu_and_one_byte_more_does_not(lab, vlan):
    """With the overlay MTUs raised out of the way, only the 1500-byte underlay limits:
    the manager's figure (1450, or 1446 with a VLAN tag) passes, one byte more fails."""
    a, b = mtu_pairs(lab, vlan=vlan)
    limit = product.path_mtu(vlan=vlan)
    with lab.wide_overlay([a, b]):
        fits, too_big = (lab.ping([(a, b.ip)], size=size - 28, count=1)[0]
                         for size in (limit, limit + 1))
    assert (fits, too_big) == (True, False), (a.name, b.name, limit)


def test_ipsec_carries_traffic_between_pdcs_and_only_encrypted(lab):
    assert proofs.encrypted_failures(lab) == []


def test_ipsec_alone_keeps_overlay_traffic_between_pdcs_off_the_wire_in_plaintext(lab):
    lab.configure(firewall=False, ipsec=True)
    assert proofs.encrypted_failures(lab) == []


def test_without_ipsec_or_firewall_plain_vxlan_crosses_the_internet(lab):
    """The control: the wire counters do see plaintext VXLAN when nothing protects it."""
    lab.configure(firewall=False, ipsec=False)
    pairs = proofs.cross_pdc_pairs(lab)
    before = lab.wire_counters()
    assert proofs.reach_failures(lab, pairs) == []
    assert lab.wire_counters()["vxlan"] - before["vxlan"] >= len(pairs)


def test_firewall_drops_plaintext_overlay_traffic_between_pdcs(lab):
    lab.configure(firewall=True, ipsec=False)
    cross, same = proofs.cross_pdc_pairs(lab), proofs.same_pdc_pairs(lab)
    drops = {host: lab.firewall_drops(host) for host in lab.node_ns}
    before = lab.wire_counters()
    answered = lab.ping([(a, b.ip) for a, b in cross + same])
    assert [f"{a.name} -> {b.name}" for (a, b), ok in zip(cross, answered, strict=False) if ok] \
        == [], "plaintext overlay traffic crossed between PDCs"
    assert proofs.reach_failures(lab, same) == []
    assert lab.wire_counters()["vxlan"] == before["vxlan"]
    dropped_by = {a.host for a, _ in cross if lab.firewall_drops(a.host) > drops[a.host]}
    assert dropped_by == {a.host for a, _ in cross}
