"""Overlay rules: name, port, MTU, ARP file and node list (DESIGN.md section 1)."""

from __future__ import annotations

import pytest

from overlays import services
from overlays.models import OverlayRule

from .helpers import invalid, refused


def rule(name: str = "customers", **fields: object) -> OverlayRule:
    return services.save(OverlayRule(name=name, **fields))


# --- name ---------------------------------------------------------------------------

@pytest.mark.django_db
@pytest.mark.parametrize("name", ["customers", "a", "Lab_2b", "_x", "a" * 19])
def test_rule_names_of_letters_digits_and_underscores_not_ending_in_a_digit_are_accepted(name):
    assert rule(name).name == name


@pytest.mark.django_db
def test_rule_name_ending_in_a_digit_is_rejected_because_the_vxlan_id_is_appended():
    with invalid("name", "customers2", "digit"):
        rule("customers2")


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["cust-omers", "cust omers", "it's", 'say"hi', "back\\slash",
                                  "dollar$", "čeština"])
def test_rule_name_with_characters_outside_letters_digits_underscore_is_rejected(name):
    with invalid("name", "letters"):
        rule(name)


@pytest.mark.django_db
def test_rule_name_of_twenty_characters_is_rejected_as_too_long():
    with invalid("name", "20"):
        rule("a" * 20)


@pytest.mark.django_db
def test_empty_rule_name_is_rejected():
    with invalid("name"):
        rule("")


@pytest.mark.django_db
def test_rule_name_is_unique(customers):
    with invalid("name", "already exists"):
        rule("customers", port=4800)


# --- port -------------------------------------------------------------------------------

@pytest.mark.django_db
def test_first_rule_without_a_port_gets_4790():
    assert rule("customers").port == 4790


@pytest.mark.django_db
def test_rule_without_a_port_gets_the_highest_used_port_plus_one():
    rule("a", port=4790)
    rule("b", port=5000)
    rule("c", port=4795)
    assert rule("d").port == 5001


@pytest.mark.django_db
def test_next_free_port_never_picks_4789_even_when_only_low_ports_are_used():
    rule("low", port=53)
    assert rule("next").port == 4790


@pytest.mark.django_db
def test_explicit_port_4789_is_allowed_and_the_next_free_port_goes_above_it():
    assert rule("iana", port=4789).port == 4789
    assert rule("other").port == 4790


@pytest.mark.django_db
def test_duplicate_port_is_rejected_on_port(customers):
    with invalid("port", "4790"):
        rule("other", port=customers.port)


@pytest.mark.django_db
@pytest.mark.parametrize("port", [0, 65536, 100000])
def test_port_outside_1_to_65535_is_rejected(port):
    with invalid("port"):
        rule("customers", port=port)


@pytest.mark.django_db
@pytest.mark.parametrize("port", [1, 65535])
def test_ports_at_the_bounds_are_accepted(port):
    assert rule("customers", port=port).port == port


@pytest.mark.django_db
def test_no_automatic_port_is_left_when_65535_is_taken():
    rule("top", port=65535)
    with invalid("port", "give one"):
        rule("next")


@pytest.mark.django_db
def test_saving_an_existing_rule_keeps_its_port(customers):
    rule("later")
    customers.mtu = 1380
    services.save(customers)
    customers.refresh_from_db()
    assert customers.port == 4790


# --- MTU ----------------------------------------------------------------------------------

@pytest.mark.django_db
def test_rule_mtu_defaults_to_1400():
    assert rule().mtu == 1400


@pytest.mark.django_db
@pytest.mark.parametrize("mtu", [575, 8901, 0])
def test_rule_mtu_outside_576_to_8900_is_rejected(mtu):
    with invalid("mtu", "576" if mtu < 576 else "8900"):
        rule(mtu=mtu)


@pytest.mark.django_db
@pytest.mark.parametrize("mtu", [576, 8900])
def test_rule_mtu_at_the_bounds_is_accepted(mtu):
    assert rule(mtu=mtu).mtu == mtu


# --- listen IP and ARP file -------------------------------------------------------------------

@pytest.mark.django_db
def test_listen_ip_defaults_to_all_interfaces():
    assert rule().listen_ip == "0.0.0.0"


@pytest.mark.django_db
@pytest.mark.parametrize("listen_ip", ["10.0.0.300", "fd00::1", "all"])
def test_listen_ip_must_be_an_ipv4_address(listen_ip):
    with invalid("listen_ip", "IPv4"):
        rule(listen_ip=listen_ip)


@pytest.mark.django_db
def test_arp_file_defaults_to_the_conventional_path():
    assert rule("customers").arp_file == "/opt/custom/networking/customers_overlay.json"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["relative/file.json", "/opt/with space.json", "/opt/a'b.json",
                                  "/opt/a,b.json", "/opt/dir/", "/opt/../etc/passwd"])
def test_arp_file_must_be_an_absolute_file_path_without_shell_or_list_characters(path):
    with invalid("arp_file", path):
        rule(arp_file=path)


@pytest.mark.django_db
def test_two_rules_cannot_share_an_arp_file(customers):
    with invalid("arp_file", "customers", customers.arp_file):
        rule("other", arp_file=customers.arp_file)


@pytest.mark.django_db
def test_config_line_is_the_usbkey_config_line(customers):
    assert customers.config_line == (
        'overlay_rule_customers="-e vxlan -p vxlan/listen_ip=0.0.0.0,vxlan/listen_port=4790 '
        '-s files -p files/config=/opt/custom/networking/customers_overlay.json -p mtu=1400"'
    )


# --- node list ---------------------------------------------------------------------------------

@pytest.mark.django_db
def test_rule_on_all_nodes_carries_every_host_and_keeps_no_list():
    saved = rule(all_nodes=True, node_names=["cn01.prague"])
    assert saved.node_names == []
    assert saved.carries("anything.example")


@pytest.mark.django_db
def test_rule_node_list_may_name_hosts_not_installed_yet(cn01):
    saved = rule("lab", all_nodes=False, node_names=["cn09.prague", "cn01.prague", "cn09.prague"])
    assert saved.node_names == ["cn01.prague", "cn09.prague"]
    assert saved.carries("cn09.prague")
    assert not saved.carries("cn02.prague")


@pytest.mark.django_db
def test_rule_node_list_rejects_names_that_are_not_host_names():
    with invalid("node_names", "not a host"):
        rule("lab", all_nodes=False, node_names=["cn01.prague", "not a host"])


@pytest.mark.django_db
def test_rule_not_on_all_nodes_needs_at_least_one_node():
    with invalid("node_names", "at least one"):
        rule("lab", all_nodes=False, node_names=[])


@pytest.mark.django_db
def test_rule_node_list_must_be_a_list_of_names():
    with invalid("node_names", "list"):
        rule("lab", all_nodes=False, node_names="cn01.prague")


# --- deletion ---------------------------------------------------------------------------

@pytest.mark.django_db
def test_unused_rule_can_be_deleted(customers):
    services.delete(customers)
    assert not OverlayRule.objects.exists()


@pytest.mark.django_db
def test_rule_used_by_a_network_is_not_deleted_and_the_refusal_names_the_network(web):
    with refused("customers", "acme-web"):
        services.delete(web.overlay_rule)
    assert OverlayRule.objects.filter(name="customers").exists()


@pytest.mark.django_db
def test_admin_overlay_rule_is_not_deleted_while_the_admin_overlay_uses_it(cn01):
    overlay = services.admin_overlay_init(subnet="10.44.44.0/24")
    with refused("adminoverlay"):
        services.delete(overlay.overlay_rule)
    assert OverlayRule.objects.filter(name="adminoverlay").exists()


def test_a_rule_that_networks_use_cannot_be_renamed(customers, make_network):
    make_network("global-web")
    customers.name = "tenants"
    with invalid("name", "Networks use this rule"):
        services.save(customers)


def test_a_rule_no_network_uses_can_be_renamed(customers):
    customers.name = "tenants"
    assert services.save(customers).name == "tenants"
