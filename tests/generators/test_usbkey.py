from __future__ import annotations

from dataclasses import replace

import pytest

from overlays.generators import apply_managed_keys, managed_keys, read_managed_keys
from overlays.rulestring import parse_rule_args

from .scenario import CN02, EXISTING_USBKEY_CONFIG

RULE = "-e vxlan -p vxlan/listen_ip=0.0.0.0,vxlan/listen_port=4790 -s files -p mtu=1400"


def test_managed_keys_of_a_node(cluster, host):
    keys = managed_keys(cluster, host("cn01"))
    assert list(keys) == [
        "overlay_rule_adminoverlay",
        "overlay_rule_customers",
        "overlay_rule_lab",
        "adminoverlay_0_vxlan_id",
        "adminoverlay_0_vlan_id",
        "adminoverlay_0_ip",
        "adminoverlay_0_netmask",
        "adminoverlay_0_mac",
    ]
    assert keys["adminoverlay_0_ip"] == "10.44.44.11"
    assert keys["adminoverlay_0_netmask"] == "255.255.255.0"
    assert keys["adminoverlay_0_mac"] == "02:e5:dc:d5:d4:01"
    params = parse_rule_args(keys["overlay_rule_lab"])
    assert (params.port, params.mtu, params.listen_ip) == (4791, 1400, "0.0.0.0")
    assert params.arp_file == "/opt/custom/networking/lab_overlay.json"


def test_no_admin_keys_without_an_address(cluster, host):
    admin = cluster.admin_overlay
    addresses = {k: v for k, v in admin.addresses.items() if k != CN02}
    snapshot = replace(cluster, admin_overlay=replace(admin, addresses=addresses))
    assert not any(k.startswith("adminoverlay_0_") for k in managed_keys(snapshot, host("cn02")))


def test_no_admin_keys_without_an_admin_overlay(cluster, host):
    snapshot = replace(cluster, admin_overlay=None)
    assert set(managed_keys(snapshot, host("cn01"))) == {
        "overlay_rule_adminoverlay",
        "overlay_rule_customers",
        "overlay_rule_lab",
    }


def test_unrelated_lines_are_kept_byte_for_byte():
    text = "# comment\n\n  odd = spacing\nadmin_ip=10.0.0.11\r\nroot_shadow='$5$x'\n"
    result = apply_managed_keys(text, {"overlay_rule_a": RULE})
    assert result == text + f'overlay_rule_a="{RULE}"\n'


def test_managed_lines_are_replaced_in_place():
    text = "a=1\noverlay_rule_a='old'\nb=2\n"
    assert (
        apply_managed_keys(text, {"overlay_rule_a": RULE}) == f'a=1\noverlay_rule_a="{RULE}"\nb=2\n'
    )


def test_missing_keys_are_appended_and_a_missing_final_newline_is_added():
    result = apply_managed_keys("a=1", {"adminoverlay_0_ip": "10.44.44.11"})
    assert result == 'a=1\nadminoverlay_0_ip="10.44.44.11"\n'


def test_a_replaced_last_line_keeps_having_no_newline():
    result = apply_managed_keys("a=1\nadminoverlay_0_ip=1.2.3.4", {"adminoverlay_0_ip": "5.6.7.8"})
    assert result == 'a=1\nadminoverlay_0_ip="5.6.7.8"'


def test_family_lines_not_managed_any_more_are_removed():
    text = 'overlay_rule_gone="x"\nkeep=1\nadminoverlay_0_mac="02:00:00:00:00:01"\n'
    assert apply_managed_keys(text, {}) == "keep=1\n"


def test_duplicate_managed_lines_collapse_to_the_first():
    text = 'overlay_rule_a="1"\nx=1\noverlay_rule_a="2"\n'
    assert apply_managed_keys(text, {"overlay_rule_a": "3"}) == 'overlay_rule_a="3"\nx=1\n'


def test_commented_out_managed_keys_are_not_touched():
    text = '#overlay_rule_a="old"\n# adminoverlay_0_ip=1.2.3.4\n'
    assert apply_managed_keys(text, {}) == text


def test_crlf_line_endings_are_kept_on_replaced_lines():
    assert apply_managed_keys("overlay_rule_a=x\r\n", {"overlay_rule_a": "y"}) == (
        'overlay_rule_a="y"\r\n'
    )


def test_applying_twice_equals_applying_once(cluster, host):
    managed = managed_keys(cluster, host("cn07"))
    once = apply_managed_keys(EXISTING_USBKEY_CONFIG, managed)
    assert apply_managed_keys(once, managed) == once
    assert apply_managed_keys("", managed) == apply_managed_keys(
        apply_managed_keys("", managed), managed
    )


def test_read_back_gives_the_managed_keys(cluster, host):
    managed = managed_keys(cluster, host("cn01"))
    assert read_managed_keys(apply_managed_keys(EXISTING_USBKEY_CONFIG, managed)) == managed


def test_read_managed_keys_ignores_other_keys_and_strips_quotes():
    text = (
        "admin_ip=1.2.3.4\noverlay_rule_a='x y'\nadminoverlay_0_ip=10.44.44.11\n#overlay_rule_b=1\n"
    )
    assert read_managed_keys(text) == {"overlay_rule_a": "x y", "adminoverlay_0_ip": "10.44.44.11"}


@pytest.mark.parametrize(
    "managed",
    [
        {"admin_ip": "10.0.0.1"},
        {"overlay_rule_a": 'has "quotes"'},
        {"overlay_rule_a": "$(reboot)"},
        {"overlay_rule_a": "two\nlines"},
    ],
)
def test_unsafe_keys_or_values_are_refused(managed):
    with pytest.raises(ValueError):
        apply_managed_keys("", managed)
