"""A cluster as the reference tool (esdc-overlay) leaves it, played by loopback test nodes.

``ReferenceCluster`` holds the facts (nodes, rules, admin overlay, VMs, pair keys, admin
sources) and writes, on each node, what that tool would have written: /usbkey/config
with the platform's own lines, the ARP tables, the IKE config, ike.preshared,
ipsecinit.conf, both ipf files, and the VMs the stub ``vmadm`` prints.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from itertools import combinations

from tests.harness.testnodes import TestNode

PLATFORM_LINES = (
    "# /usbkey/config written by the SmartOS installer\n"
    "admin_nic=00:0c:29:00:00:01\n"
    "admin_ip=dhcp\n"
    "hostname={hostname}\n"
    "root_shadow='$6$abc$notarealhash'\n"
    "\n"
    "ntp_hosts=pool.ntp.org\n"
)
ARP_DIR = "/opt/custom/networking"


@dataclass
class Vm:
    alias: str
    node: str
    rule: str
    vxlan_id: int
    vlan_id: int
    mac: str
    ip: str
    netmask: str = "255.255.255.0"
    gateway: str | None = None
    mtu: int = 1400


@dataclass
class ReferenceCluster:
    nodes: dict[str, TestNode]
    rules: dict[str, tuple[int, int, list[str] | None]]  # name -> (port, mtu, nodes or None)
    admin: dict[str, tuple[str, str]]  # host -> (ip, mac) of adminoverlay_0 (VXLAN 2, VLAN 2)
    vms: list[Vm]
    sources: list[str] = field(default_factory=lambda: ["192.0.2.0/28"])
    keys: dict[tuple[str, str], str] = field(default_factory=dict)
    admin_netmask: str = "255.255.255.0"

    def carriers(self, rule: str) -> list[str]:
        listed = self.rules[rule][2]
        return sorted(self.nodes) if listed is None else sorted(listed)

    def pdc(self, host: str) -> str:
        return self.nodes[host].facts["pdc"]

    def underlay(self, sender: str, host: str) -> str:
        facts = self.nodes[host].facts
        return facts["admin_ip"] if self.pdc(sender) == self.pdc(host) else facts["external_ip"]

    def pair_key(self, a: str, b: str) -> str:
        return self.keys[tuple(sorted((a, b)))]

    def write(self) -> None:
        for a, b in combinations(sorted(self.nodes), 2):
            if self.pdc(a) != self.pdc(b):
                self.keys.setdefault((a, b), secrets.token_hex(32))
        for host, node in self.nodes.items():
            node.write("/usbkey/config", self.usbkey(host))
            for rule in self.rules:
                if host in self.carriers(rule):
                    node.write(f"{ARP_DIR}/{rule}_overlay.json",
                               json.dumps(self.arp_table(host, rule), sort_keys=True), 0o400)
            peers = [p for p in sorted(self.nodes) if self.pdc(p) != self.pdc(host)]
            node.write("/opt/custom/etc/ipsec/ike.preshared", self.preshared(host, peers), 0o400)
            node.write("/opt/custom/etc/ipsec/ipsecinit.conf", self.policy(host, peers), 0o640)
            node.write("/opt/custom/etc/ipsec/config", self.ike_config(host, peers), 0o640)
            node.write("/opt/custom/etc/ipf.d/ipf.conf-020-overlays", self.ipf_overlays(host),
                       0o640)
            node.write("/opt/custom/etc/ipf.d/ipf.conf-090-administration",
                       self.ipf_admin(host), 0o640)
            node.set_vms(self.vm_objects(host))

    def usbkey(self, host: str) -> str:
        lines = PLATFORM_LINES.format(hostname=host)
        for rule, (port, mtu, _) in sorted(self.rules.items()):
            if host in self.carriers(rule):
                lines += (f'overlay_rule_{rule}="-e vxlan -p vxlan/listen_ip=0.0.0.0,'
                          f'vxlan/listen_port={port} -s files -p files/config='
                          f'{ARP_DIR}/{rule}_overlay.json -p mtu={mtu}"\n')
        ip, mac = self.admin[host]
        lines += ("adminoverlay_0_vxlan_id=2\nadminoverlay_0_vlan_id=2\n"
                  f"adminoverlay_0_ip={ip}\nadminoverlay_0_netmask={self.admin_netmask}\n"
                  f"adminoverlay_0_mac={mac}\n")
        return lines + "dns_domain=example.com\n"

    def arp_table(self, host: str, rule: str) -> dict[str, dict]:
        port = self.rules[rule][0]
        entries = [(vm.node, vm.mac, vm.ip) for vm in self.vms if vm.rule == rule]
        if rule == "adminoverlay":
            entries += [(h, mac, ip) for h, (ip, mac) in self.admin.items()]
        return {mac: {"arp": ip, "ip": self.underlay(host, other), "port": port}
                for other, mac, ip in entries
                if other != host and other in self.carriers(rule)}

    def preshared(self, host: str, peers: list[str]) -> str:
        me = self.nodes[host].facts["external_ip"]
        text = "# ike.preshared written by esdc-overlay\n"
        for peer in peers:
            text += ("{\n    localidtype IP\n    localid " + me + "\n    remoteidtype IP\n"
                     f"    remoteid {self.nodes[peer].facts['external_ip']}\n"
                     f"    key {self.pair_key(host, peer)}\n}}\n")
        return text

    def ike_config(self, host: str, peers: list[str]) -> str:
        me = self.nodes[host].facts["external_ip"]
        xform = "p1_xform { auth_method preshared oakley_group 5 auth_alg sha256 encr_alg aes }"
        text = (f"p1_lifetime_secs 900\np2_lifetime_secs 300\np2_softlife_secs 150\n{xform}\n"
                "p2_pfs 2\n")
        for peer in peers:
            label = f"{host}-{peer}"
            text += (f'{{ label "{label}" local_addr {me} remote_addr '
                     f"{self.nodes[peer].facts['external_ip']} {xform} p2_pfs 5 }}\n")
        return text

    def policy(self, host: str, peers: list[str]) -> str:
        facts = self.nodes[host].facts
        text = f"{{ laddr {facts['admin_ip']} dir both }} bypass {{}}\n"
        for peer in peers:
            text += (f"{{ ulp udp laddr {facts['external_ip']} raddr "
                     f"{self.nodes[peer].facts['external_ip']} }} ipsec "
                     "{ encr_algs aes encr_auth_algs sha512 sa shared }\n")
        return text

    def ipf_overlays(self, host: str) -> str:
        me = self.nodes[host].facts["external_ip"]
        text = ""
        for rule in sorted(self.rules):
            if host in self.carriers(rule):
                port = self.rules[rule][0]
                text += (f"block out log quick on external0 proto udp from {me} to any "
                         f"port = {port}\nblock in log quick on external0 proto udp from any "
                         f"to {me} port = {port}\n")
        return text

    def ipf_admin(self, host: str) -> str:
        me = self.nodes[host].facts["external_ip"]
        others = [self.nodes[h].facts["external_ip"] for h in sorted(self.nodes) if h != host]
        text = "".join(f"pass in quick on external0 from {src} to {me} keep state\n"
                       for src in [*self.sources, *others])
        return text + "pass out quick on external0 all keep state\n" \
                      "block in quick on external0 all\n"

    def vm_objects(self, host: str) -> list[dict]:
        vms = []
        for vm in self.vms:
            if vm.node != host:
                continue
            nic = {"interface": "net0", "nic_tag": f"{vm.rule}/{vm.vxlan_id}", "mac": vm.mac,
                   "ip": vm.ip, "netmask": vm.netmask, "vlan_id": vm.vlan_id, "mtu": vm.mtu}
            if vm.gateway:
                nic["gateway"] = vm.gateway
            vms.append({"uuid": f"00000000-0000-4000-8000-{abs(hash(vm.alias)) % 10**12:012d}",
                        "alias": vm.alias, "state": "running", "brand": "kvm",
                        "nics": [nic, {"interface": "net1", "nic_tag": "external",
                                       "mac": "90:b8:d0:00:00:01", "ip": "198.51.100.99",
                                       "netmask": "255.255.255.0"}]})
        return vms
