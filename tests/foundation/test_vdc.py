"""Virtual datacenters: allowed ranges, restriction switches, delegation and the network limit."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from overlays import services
from overlays.models import VirtualNetwork
from vdc.models import Vdc, range_overlaps

from .helpers import invalid, refused


def vdc(name: str = "acme", **fields: object) -> Vdc:
    return services.save(Vdc(name=name, **fields))


def network(rule, vdc_obj, name: str = "net", **fields: object) -> VirtualNetwork:
    values = {"vxlan_id": 100, "vlan_id": 10, "network": "192.168.10.0/24", **fields}
    return VirtualNetwork(name=name, overlay_rule=rule, vdc=vdc_obj, **values)


# --- range text ------------------------------------------------------------------------------

@pytest.mark.django_db
def test_ranges_are_stored_in_canonical_form():
    saved = vdc(vxlan_allowed=" 250, 100 - 199 ", vlan_allowed="10-15,16-20")
    assert (saved.vxlan_allowed, saved.vlan_allowed) == ("100-199,250", "10-20")


@pytest.mark.django_db
@pytest.mark.parametrize(("field", "text", "words"), [
    ("vxlan_allowed", "banana", ["banana", "VXLAN"]),
    ("vxlan_allowed", "199-100", ["reversed", "100-199"]),
    ("vxlan_allowed", "100-199,150", ["150", "overlaps", "100-199"]),
    ("vxlan_allowed", "100,,200", ["empty"]),
    ("vxlan_allowed", "0-10", ["out of range", "1-16777215"]),
    ("vxlan_allowed", "16777216", ["out of range"]),
    ("vlan_allowed", "4096", ["VLAN", "out of range", "0-4095"]),
    ("vlan_allowed", "20-10", ["reversed"]),
    ("vlan_allowed", "10-20,20", ["overlaps"]),
    ("vlan_allowed", "ten", ["ten"]),
])
def test_malformed_range_text_is_rejected_on_its_field(field, text, words):
    with invalid(field, *words):
        vdc(**{field: text})


@pytest.mark.django_db
def test_vdc_name_is_unique():
    vdc("acme")
    with invalid("name", "already exists"):
        vdc("acme")


# --- restriction and shrinking ------------------------------------------------------------------

def test_network_outside_the_allowed_vxlans_is_rejected_while_restrict_is_on(customers, acme):
    with invalid("vxlan_id", "300", "acme", "100-199"):
        services.save(network(customers, acme, vxlan_id=300))


def test_network_outside_the_allowed_vlans_is_rejected_while_restrict_is_on(customers, acme):
    with invalid("vlan_id", "30", "acme", "10-20"):
        services.save(network(customers, acme, vlan_id=30))


def test_vdc_with_empty_ranges_allows_no_network_while_restricted(customers):
    empty = vdc("empty")
    with invalid("vxlan_id", "none"):
        services.save(network(customers, empty))


def test_superuser_places_a_network_outside_the_range_when_restrict_is_off(
        customers, acme, superuser):
    acme.vxlan_restrict = acme.vlan_restrict = False
    services.save(acme)
    saved = services.save_network(network(customers, acme, vxlan_id=300, vlan_id=30),
                                  user=superuser)
    assert saved.pk


def test_superuser_is_still_bound_by_the_range_while_restrict_is_on(customers, acme, superuser):
    with invalid("vxlan_id", "300"):
        services.save_network(network(customers, acme, vxlan_id=300), user=superuser)


def test_range_cannot_shrink_below_a_network_that_uses_it(web, acme):
    acme.vxlan_allowed = "101-199"
    with invalid("vxlan_allowed", "acme-web", "VXLAN 100"):
        services.save(acme)
    acme.refresh_from_db()
    assert acme.vxlan_allowed == "100-199"


def test_vlan_range_cannot_shrink_below_a_network_that_uses_it(web, acme):
    acme.vlan_allowed = "11-20"
    with invalid("vlan_allowed", "acme-web", "VLAN 10"):
        services.save(acme)


def test_range_cannot_shrink_below_a_used_id_even_with_restrict_off(web, acme):
    acme.vxlan_restrict = False
    acme.vxlan_allowed = "150-199"
    with invalid("vxlan_allowed", "acme-web"):
        services.save(acme)


def test_range_may_shrink_where_no_network_uses_it(web, acme):
    acme.vxlan_allowed = "100-120"
    assert services.save(acme).vxlan_allowed == "100-120"


def test_restrict_cannot_be_switched_on_while_a_network_lies_outside(customers, acme, superuser):
    acme.vxlan_restrict = False
    services.save(acme)
    services.save(network(customers, acme, vxlan_id=300))
    acme.vxlan_restrict = True
    with invalid("vxlan_allowed", "VXLAN 300"):
        services.save(acme)


# --- delegation: what a vDC admin may do --------------------------------------------------------

def test_vdc_admin_creates_a_network_inside_allowed_ranges(customers, acme, alice):
    saved = services.save_network(network(customers, acme), user=alice)
    assert saved.vdc == acme


def test_vdc_admin_cannot_create_network_outside_allowed_vxlans(customers, acme, alice):
    with invalid("vxlan_id", "300", "acme"):
        services.save_network(network(customers, acme, vxlan_id=300), user=alice)
    assert not VirtualNetwork.objects.exists()


def test_vdc_admin_cannot_create_network_outside_allowed_vlans(customers, acme, alice):
    with invalid("vlan_id", "30", "acme"):
        services.save_network(network(customers, acme, vlan_id=30), user=alice)


def test_vdc_admin_cannot_go_outside_the_range_even_when_restrict_is_off(customers, acme, alice):
    acme.vxlan_restrict = acme.vlan_restrict = False
    services.save(acme)
    with invalid("vxlan_id", "300"):
        services.save_network(network(customers, acme, vxlan_id=300), user=alice)
    with invalid("vlan_id", "30"):
        services.save_network(network(customers, acme, vlan_id=30), user=alice)


def test_vdc_admin_cannot_move_a_network_outside_allowed_vxlans(web, alice):
    web.vxlan_id = 300
    with invalid("vxlan_id", "300"):
        services.save_network(web, user=alice)
    web.refresh_from_db()
    assert web.vxlan_id == 100


def test_vdc_admin_cannot_create_a_network_in_another_vdc(customers, globex, alice, acme):
    with invalid("vdc", "do not administer"):
        services.save_network(network(customers, globex, vxlan_id=200, vlan_id=0), user=alice)


def test_vdc_admin_cannot_create_a_global_network(customers, alice, acme):
    with invalid("vdc", "global"):
        services.save_network(network(customers, None), user=alice)


def test_vdc_admin_cannot_change_another_vdcs_network(customers, globex, alice, acme):
    theirs = services.save(network(customers, globex, vxlan_id=200, vlan_id=0))
    theirs.vdc = acme
    theirs.vxlan_id, theirs.vlan_id = 100, 10
    with pytest.raises(PermissionDenied):
        services.save_network(theirs, user=alice)


def test_vdc_admin_cannot_use_the_admin_overlay_rule(cn01, acme, alice):
    overlay = services.admin_overlay_init(subnet="10.44.44.0/24")
    with invalid("overlay_rule", "admin overlay"):
        services.save_network(network(overlay.overlay_rule, acme), user=alice)


def test_anonymous_user_cannot_save_networks(customers, acme):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(PermissionDenied):
        services.save_network(network(customers, acme), user=AnonymousUser())


def test_vdc_admin_deletes_their_network_but_not_another_vdcs(web, globex, alice, customers):
    theirs = services.save(network(customers, globex, "theirs", vxlan_id=200, vlan_id=0))
    with pytest.raises(PermissionDenied):
        services.delete_network(theirs, user=alice)
    services.delete_network(web, user=alice)
    assert list(VirtualNetwork.objects.values_list("name", flat=True)) == ["theirs"]


def test_querysets_restrict_vdc_admins_to_their_own_vdcs(web, globex, alice, bob, superuser):
    assert list(Vdc.objects.restrict(alice)) == [web.vdc]
    assert list(VirtualNetwork.objects.restrict(bob)) == []
    assert VirtualNetwork.objects.restrict(superuser).count() == 1


# --- network limit ------------------------------------------------------------------------------

def test_network_limit_stops_the_network_beyond_it(customers, acme, alice):
    acme.network_limit = 1
    services.save(acme)
    services.save_network(network(customers, acme, "first"), user=alice)
    with invalid("vdc", "acme", "1", "limit"):
        services.save_network(network(customers, acme, "second", vlan_id=11,
                                      network="192.168.11.0/24"), user=alice)


def test_network_at_the_limit_can_still_be_changed(customers, acme):
    acme.network_limit = 1
    services.save(acme)
    first = services.save(network(customers, acme, "first"))
    first.description = "changed"
    assert services.save(first).description == "changed"


def test_network_limit_cannot_drop_below_the_networks_already_owned(web, acme, make_network):
    make_network("acme-db", vdc=acme, vlan_id=11, network="192.168.11.0/24", gateway=None)
    acme.network_limit = 1
    with invalid("network_limit", "2"):
        services.save(acme)


# --- overlaps and deletion ----------------------------------------------------------------------

@pytest.mark.django_db
def test_overlapping_ranges_between_vdcs_are_reported():
    vdc("a", vxlan_allowed="100-199", vlan_allowed="0-10")
    vdc("b", vxlan_allowed="150-250", vlan_allowed="20")
    assert range_overlaps() == [("a", "b", "VXLAN", "150-199")]


def test_vdc_owning_networks_is_not_deleted(web, acme):
    with refused("acme", "virtual network acme-web"):
        services.delete(acme)
    assert Vdc.objects.filter(name="acme").exists()
