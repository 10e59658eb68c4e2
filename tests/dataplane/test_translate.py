"""The translation from rendered files to Linux objects, and the IPSec facts by parsing.

These need neither root nor the lab: they pin down the correspondence the lab
relies on (DESIGN.md section 2 formats in, iproute2 / nftables / swanctl out),
and check on the rendered clusters what the lab's IPSec proof assumes: every
pair of nodes in different PDCs has each other as peers with one shared key,
and pairs within a PDC have no IPSec at all.
"""

from __future__ import annotations

import ipaddress
import itertools

import pytest

from tests.dataplane import lab, translate, world

USBKEY = """\
admin_nic=00:0c:29:00:00:01
overlay_rule_customers="-e vxlan -p vxlan/listen_ip=0.0.0.0,vxlan/listen_port=4790 -s files \
-p files/config=/opt/custom/networking/customers_overlay.json -p mtu=1380"
overlay_rule_lab='-e vxlan -p vxlan/listen_ip=10.0.0.11 -p vxlan/listen_port=4791 -s files \
-p files/config=/opt/custom/networking/lab_overlay.json'
adminoverlay_0_ip="10.44.44.11"
adminoverlay_0_mac="2:E5:DC:D5:D4:1"
adminoverlay_0_netmask="255.255.255.0"
adminoverlay_0_vlan_id="2"
adminoverlay_0_vxlan_id="2"
"""


def test_overlay_rule_lines_become_vxlan_parameters():
    rules = translate.overlay_rules(USBKEY)
    assert rules == {
        "customers": translate.OverlayRule("customers", 4790, "0.0.0.0", 1380,
                                           "/opt/custom/networking/customers_overlay.json"),
        "lab": translate.OverlayRule("lab", 4791, "10.0.0.11", 1400,
                                     "/opt/custom/networking/lab_overlay.json"),
    }


def test_node_vnic_keys_become_a_vnic_on_the_named_rule():
    assert translate.node_vnics(USBKEY) == []  # adminoverlay is not a rule this node carries
    usbkey = USBKEY + 'overlay_rule_adminoverlay="-e vxlan -p vxlan/listen_ip=0.0.0.0,' \
                      'vxlan/listen_port=4793 -s files -p files/config=/x.json -p mtu=1300"\n'
    assert translate.node_vnics(usbkey) == [translate.NodeVnic(
        "adminoverlay_0", "adminoverlay", "10.44.44.11", "255.255.255.0", "02:e5:dc:d5:d4:01",
        2, 2)]


def test_arp_entries_become_fdb_and_neighbour_entries_and_unusable_ones_are_dropped():
    table = """{
      "02:08:20:aa:00:01": {"arp": "192.168.10.11", "ip": "10.0.0.12", "port": 4790},
      "2:8:20:AA:0:2": {"arp": "192.168.10.12", "ip": "198.51.100.21", "port": 4790,
                        "ndp": "fd00:10::12"},
      "02:08:20:aa:00:03": {"arp": "192.168.10.13", "ip": "10.0.0.13", "port": "4790"},
      "02:08:20:aa:00:04": {"arp": "192.168.10.14", "port": 4790},
      "02:08:20:aa:00:05": {"arp": "172.16.0.5", "ip": "10.0.0.14", "port": 4790}
    }"""
    entries = translate.arp_table(table)
    assert [entry.mac for entry in entries] == [
        "02:08:20:aa:00:01", "02:08:20:aa:00:02", "02:08:20:aa:00:05"]
    assert translate.fdb_commands("vx0.100", entries[:2]) == [
        "fdb append 02:08:20:aa:00:01 dev vx0.100 dst 10.0.0.12 port 4790 self permanent",
        "fdb append 02:08:20:aa:00:02 dev vx0.100 dst 198.51.100.21 port 4790 self permanent",
    ]
    address = ipaddress.IPv4Interface("192.168.10.11/24")
    assert translate.neighbour_commands(
        "eth0", entries, address, ipaddress.IPv6Interface("fd00:10::11/64")) == [
        "neigh replace 192.168.10.12 lladdr 02:08:20:aa:00:02 dev eth0 nud permanent",
        "neigh replace fd00:10::12 lladdr 02:08:20:aa:00:02 dev eth0 nud permanent",
    ]  # its own address and another subnet's are not asked for


IPF_OVERLAYS = """\
# rule customers
block out log quick on external0 proto udp from 203.0.113.11 to any port = 4790
block in log quick on external0 proto udp from any to 203.0.113.11 port = 4790
"""
IPF_ADMIN = """\
pass in quick on external0 from 198.51.100.0/24 to 203.0.113.11 keep state
pass out quick on external0 all keep state
block in quick on external0 all
"""


def test_ipf_rules_become_nft_chains_in_the_same_order():
    assert translate.nft_ruleset([IPF_OVERLAYS, IPF_ADMIN]).splitlines() == [
        "table inet ipf {",
        "  chain in {",
        "    type filter hook input priority 0; policy accept;",
        "    ct state established,related accept",
        '    iifname "external0" meta l4proto udp ip daddr 203.0.113.11 udp dport 4790 counter'
        ' drop comment "block in log quick on external0 proto udp from any to 203.0.113.11'
        ' port = 4790"',
        '    iifname "external0" ip saddr 198.51.100.0/24 ip daddr 203.0.113.11 counter accept'
        ' comment "pass in quick on external0 from 198.51.100.0/24 to 203.0.113.11 keep state"',
        '    iifname "external0" counter drop comment "block in quick on external0 all"',
        "  }",
        "  chain out {",
        "    type filter hook output priority 0; policy accept;",
        "    ct state established,related accept",
        '    oifname "external0" meta l4proto udp ip saddr 203.0.113.11 udp dport 4790 counter'
        ' drop comment "block out log quick on external0 proto udp from 203.0.113.11 to any'
        ' port = 4790"',
        '    oifname "external0" counter accept comment "pass out quick on external0 all keep'
        ' state"',
        "  }",
        "}",
    ]


@pytest.mark.parametrize("rule", [
    "block in on external0 all",  # not quick: the last match would win
    "pass in quick on external0 from any to any port 22",
    "allow in quick all",
])
def test_ipf_rules_the_translation_does_not_understand_are_refused(rule):
    with pytest.raises(ValueError):
        translate.nft_ruleset([rule])


IKE = """\
# comment
p1_lifetime_secs 900
p2_lifetime_secs 300
p2_softlife_secs 150
p1_xform { auth_method preshared oakley_group 5 auth_alg sha256 encr_alg aes }
p2_pfs 2
{ label "cn01-cn07" local_addr 203.0.113.11 remote_addr 198.51.100.21 p1_xform { auth_method \
preshared oakley_group 14 auth_alg sha256 encr_alg aes } p2_pfs 5 }
{ label "cn01-cn08" local_addr 203.0.113.11 remote_addr 203.0.113.99 }
"""
PRESHARED = """\
# cn01-cn07
{
    localidtype IP
    localid 203.0.113.11
    remoteidtype IP
    remoteid 198.51.100.21
    key 5fa1
}
"""
POLICY = """\
{ laddr 10.0.0.11 dir both } bypass {}
{ ulp udp laddr 203.0.113.11 raddr 198.51.100.21 } ipsec { encr_algs aes encr_auth_algs sha512 \
sa shared }
{ ulp udp laddr 203.0.113.11 raddr 203.0.113.99 } ipsec { encr_algs aes encr_auth_algs sha512 \
sa shared }
"""


def test_ike_rules_keys_and_policies_become_strongswan_connections():
    swanctl = translate.swanctl_conf(IKE, PRESHARED, POLICY)
    conf = swanctl.conf
    assert swanctl.children == 2
    # the higher address waits for the peer; the lower one starts
    assert swanctl.initiate == ["peer1c0"]
    for expected in (
        "peer0 {  # cn01-cn07", "version = 1", "local_addrs = 203.0.113.11",
        "remote_addrs = 198.51.100.21", "proposals = aes128-sha256-modp2048",
        "rekey_time = 900s", "local_ts = 203.0.113.11/32[udp]",
        "remote_ts = 198.51.100.21/32[udp]", "esp_proposals = aes128-sha512-modp1536",
        "rekey_time = 150s", "life_time = 300s",
        # the second rule takes the global p1_xform and p2_pfs
        "proposals = aes128-sha256-modp1536", "esp_proposals = aes128-sha512-modp1024",
        "id-1 = 203.0.113.11", "id-2 = 198.51.100.21", "secret = 0x5fa1",
    ):
        assert expected in conf
    assert conf.count("secret =") == 1  # no key for cn01-cn08: IKE cannot authenticate it


def test_the_lab_reads_the_files_where_the_design_puts_them():
    assert (lab.USBKEY, lab.IKE_CONFIG, lab.IKE_PRESHARED, lab.IPSEC_POLICY, lab.IPF_DIR) == (
        "/usbkey/config", "/opt/custom/etc/ipsec/config",
        "/opt/custom/etc/ipsec/ike.preshared", "/opt/custom/etc/ipsec/ipsecinit.conf",
        "/opt/custom/etc/ipf.d/")


# ------------------------------------------------- IPSec facts of the rendered clusters


@pytest.mark.django_db
@pytest.mark.parametrize("cluster", ["demo", "generated"])
def test_ipsec_peers_are_exactly_the_cross_pdc_pairs_with_one_key_per_pair(render, cluster):
    doc = {"demo": world.demo_state, "generated": world.generated_state}[cluster]()
    (files,) = render(doc)
    nodes = world.world_from_state(doc).nodes
    ike = {n.hostname: translate.swanctl_conf(files[n.hostname][lab.IKE_CONFIG],
                                              files[n.hostname][lab.IKE_PRESHARED],
                                              files[n.hostname][lab.IPSEC_POLICY])
           for n in nodes}
    keys = {n.hostname: translate.preshared_keys(files[n.hostname][lab.IKE_PRESHARED])
            for n in nodes}
    wrong = []
    for a, b in itertools.permutations(nodes, 2):
        key = keys[a.hostname].get((a.external_ip, b.external_ip))
        peer = f"remote_addrs = {b.external_ip}\n" in ike[a.hostname].conf
        if a.pdc == b.pdc and (peer or key):
            wrong.append(f"{a.hostname} has IPSec with {b.hostname} of its own PDC")
        if a.pdc != b.pdc and not (peer and key):
            wrong.append(f"{a.hostname} lacks an IKE rule or key for {b.hostname}")
        if a.pdc != b.pdc and key != keys[b.hostname].get((b.external_ip, a.external_ip)):
            wrong.append(f"{a.hostname} and {b.hostname} hold different keys")
    all_keys = [key for found in keys.values() for key in found.values()]
    assert wrong == []
    assert len(set(all_keys)) == len(all_keys) // 2  # one key per pair, never reused
    assert all(len(key) >= 64 for key in all_keys)  # 256 bits at least
