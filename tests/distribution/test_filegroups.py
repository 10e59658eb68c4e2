"""The file-group vocabulary: paths, groups and scopes (pure)."""

from __future__ import annotations

import pytest

from overlays.filegroups import (
    DEFAULT_PATHS,
    IPF_ADMIN,
    IPF_OVERLAYS,
    IPSEC,
    USBKEY,
    arp_group,
    describe_scope,
    group_of,
    in_scope,
    merge_paths,
    merge_scopes,
    rule_groups,
    scope_from,
    scope_tokens,
)

ARP = "/opt/custom/networking/lab_overlay.json"


def test_settings_override_only_the_paths_they_name():
    merged = merge_paths({"ike_config": "/tmp/ike"})
    assert merged["ike_config"] == "/tmp/ike"
    assert {k: v for k, v in merged.items() if k != "ike_config"} == {
        k: v for k, v in DEFAULT_PATHS.items() if k != "ike_config"}


def test_an_unknown_path_key_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="ipf_administration.*known: .*ipf_admin"):
        merge_paths({"ipf_administration": "/x"})


def test_each_path_belongs_to_its_group_and_any_other_is_an_arp_table():
    groups = {group_of(path, {}) for path in DEFAULT_PATHS.values()}
    assert groups == {USBKEY, IPSEC, IPF_OVERLAYS, IPF_ADMIN}
    assert group_of(DEFAULT_PATHS["ipf_admin"], {}) == IPF_ADMIN
    assert group_of(ARP, {}) == arp_group(ARP) == f"arp:{ARP}"
    assert group_of("/tmp/ike", {"ike_config": "/tmp/ike"}) == IPSEC


def test_scopes_merge_spell_and_describe():
    assert merge_scopes(frozenset({USBKEY}), frozenset({IPSEC})) == {USBKEY, IPSEC}
    assert merge_scopes(frozenset({USBKEY}), None) is None
    assert scope_from(scope_tokens(frozenset({IPSEC, USBKEY}))) == {IPSEC, USBKEY}
    assert scope_from(scope_tokens(None)) is None
    assert describe_scope(None) == "all"
    assert describe_scope(frozenset({USBKEY, IPSEC})) == "ipsec,usbkey"
    assert in_scope(ARP, rule_groups(ARP), {})
    assert not in_scope(DEFAULT_PATHS["ipf_admin"], rule_groups(ARP), {})
    assert in_scope(DEFAULT_PATHS["ipf_admin"], None, {})
