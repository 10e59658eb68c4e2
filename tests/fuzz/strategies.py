"""What the fuzzers write: any JSON value, and values near the edge of each field's rules.

A body or a state file made of random JSON only ever tests refusals. So each field draws
from three pools: good values (so that writes are accepted and the accepted state is
checked to render), values at or just past a rule's edge (bounds, names with a trailing
newline, paths outside the ARP directory, shell characters, host keys that are not keys),
and any JSON value at all (nesting, unicode, huge integers, floats, booleans, null).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

# --- any JSON value -------------------------------------------------------------------------

ODD_TEXT = [
    "", " ", "\n", "cn01.prague\n", " cn01.prague", "acme-web\n", "x\x00y", "\ud800",
    "$(id)", "`reboot`", "a'b", 'a"b', "a\\b", "a,b", "a=b", "../../etc/shadow",
    "/usbkey/config", "/opt/custom/networking/$(id).json", "é", "Ⅻ", "\u202eevil", "🙂",
    "a" * 300, "0", "-1", "1e3", "true", "null", "all", "ALL", "192.168.10.300",
    "10.0.0.1/33", "::1", "02:00:00:00:00:01\n", "ff:ff:ff:ff:ff:ff",
]
HUGE_INTEGERS = [2**31 - 1, 2**31, 2**32, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**30]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(HUGE_INTEGERS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(ODD_TEXT),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=8,
)


def deep(depth: int, leaf: Any = 1) -> Any:
    """``leaf`` inside ``depth`` lists, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


nested = st.integers(min_value=20, max_value=60).map(deep)  # around the parser's limit of 32
anything = st.one_of(json_values, nested)


@dataclass(frozen=True)
class Field:
    """The values a fuzzer writes into one field: ``good`` ones (accepted alone) and ``bad``
    ones (at or past the edge of the field's rules, or any JSON value)."""

    good: st.SearchStrategy
    bad: st.SearchStrategy

    @property
    def mixed(self) -> st.SearchStrategy:
        """Mostly good, often bad: for a mutation that sets one value."""
        return st.sampled_from([True] * 3 + [False] * 2).flatmap(
            lambda good: self.good if good else self.bad)


def field(good: list[Any], edge: list[Any] | None = None,
          more: st.SearchStrategy | None = None) -> Field:
    """A field's good values, and its bad ones: the edge cases given (half the time), ``more``,
    anything."""
    bad = [st.sampled_from(edge)] * 2 if edge else []
    if more is not None:
        bad.append(more)
    return Field(good=st.sampled_from(good), bad=st.one_of(*bad, anything))


# --- values of each kind of field -------------------------------------------------------------

ARP = "/opt/custom/networking"
arp_file_text = st.text(alphabet="abz09._-/$`'\" ,=\n", min_size=1, max_size=24)

HOSTNAMES = ["cn01.prague", "cn02.prague", "cn21.brno"]  # in the demo cluster
NEW_HOSTNAMES = ["cn79.prague", "cn80.brno", "new-node"]
HOSTNAME_EDGE = ["cn79.prague\n", "-bad", "bad-", "a" * 64 + ".x", "a..b", "a_b", ".",
                 "cn09.prague"]
NAME_EDGE = ["x\n", "-x", "x" * 64, "x" * 65, "x/y", "x y", "é"]
IPS = ["10.0.0.11", "10.0.0.99", "203.0.113.99", "198.51.100.30", "0.0.0.0"]
IP_EDGE = ["10.0.0.256", "10.0.0", "::1", "010.0.0.1", " 10.0.0.1", "10.0.0.1\n"]
MACS = ["02:00:00:00:0f:01", "02:00:00:00:0f:02", "2:0:0:0:f:3", "02-00-00-00-0F-04"]
MAC_EDGE = ["01:00:5e:00:00:01", "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "02:00:00:00:00",
            "02:00:00:00:00:01\n", "00:e5:dc:d5:d4:cf"]
PORTS = [4800, 4801, 4802, 65535, 1]
PORT_EDGE = [0, 65536, -1, 4790, 4791, True, 4801.5, 4801.0, "4801"]
MTUS = [576, 1300, 1400, 8900]
MTU_EDGE = [575, 8901, 0, 1400.0, True, "1400"]
VXLANS = [100, 150, 199, 200, 7, 16777215, 1]
VXLAN_EDGE = [0, 16777216, -1, True, 100.5]
VLANS = [0, 10, 12, 20, 4095]
VLAN_EDGE = [-1, 4096, False, 12.0]
NETWORKS = ["192.168.50.0/24", "192.168.51.0/25", "10.99.0.0/16", "172.16.20.0/24"]
NETWORK_EDGE = ["192.168.50.1/24", "192.168.50.0", "192.168.50.0/33", "0.0.0.0/0"]
SOURCES = ["192.0.2.0/28", "198.51.100.7", "2001:db8::/32", "10.0.0.0/8"]
SOURCE_EDGE = ["192.0.2.1/28", "10.0.0.0/33", "", "any", 5, True]
RANGES = ["100-199", "1-16777215", "10-20", "0-4095", "500", "100-150,160"]
RANGE_EDGE = ["", "199-100", "1-99999999999", "0", "a-b", "100-199\n", "-5"]


def _host_keys() -> Field:
    """A real ed25519 key as ssh-keyscan and .pub files print it, and lines that are not keys."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    key = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key()
    line = key.public_bytes(serialization.Encoding.OpenSSH,
                            serialization.PublicFormat.OpenSSH).decode()
    return field([line, f"{line} root@cn01\n", f"[127.0.0.1]:2201 {line}", ""],
                 ["ssh-ed25519 $(reboot)", line[:-6], f"{line}\n{line}", "ssh-dss AAAA",
                  "ssh-rsa " + line.split()[1], line.replace("AAAA", "AAA=", 1)])


arp_files = field([f"{ARP}/fuzz.json", f"{ARP}/f-1_b.json", ""],
                  [f"{ARP}/{shell}.json" for shell in ("$(id)", "`id`", "$HOME", "a$b", "x`")]
                  + ["/usbkey/config", f"{ARP}/customers_overlay.json", f"{ARP}/.x.json",
                     f"{ARP}/x.conf", f"{ARP}/a/b.json", "/etc/shadow",
                     "/opt/custom/etc/ipsec/ike.preshared", f"{ARP}/../x.json",
                     f"{ARP}//x.json"],
                  arp_file_text.map(lambda text: f"{ARP}/{text}"))
node_lists = field(["all", ["cn01.prague"], ["cn01.prague", "cn09.prague"], []],
                   [["cn01.prague\n"], ["a b"], "some", [5], [["cn01.prague"]]])

RESOURCES: dict[str, dict[str, Field]] = {
    "overlay_rules": {
        "name": field(["fz", "fuzz_rule", "b" * 19], NAME_EDGE + ["x1", "a" * 20, "lab"]),
        "port": field(PORTS, PORT_EDGE),
        "listen_ip": field(IPS, IP_EDGE),
        "mtu": field(MTUS, MTU_EDGE),
        "arp_file": arp_files,
        "nodes": node_lists,
        "description": field(["", "a rule"], ODD_TEXT),
    },
    "networks": {
        "name": field(["fz-net", "acme-new"], NAME_EDGE + ["acme-web", "lab-net"]),
        "vdc": field(["acme"], ["globex", None, "nothere", "acme\n"]),
        "overlay_rule": field(["customers"], ["lab", "adminoverlay", "nothere"]),
        "vxlan_id": field([150, 199, 100], VXLANS + VXLAN_EDGE),  # acme's: 100-199
        "vlan_id": field([12, 13, 20], VLANS + VLAN_EDGE),  # acme's: 10-20
        "network": field(NETWORKS[:3], NETWORK_EDGE + NETWORKS[3:]),
        "gateway": field([None, ""], ["192.168.50.1", "192.168.50.0", "192.168.50.255"]),
        "mtu": field([1400, 1300], MTU_EDGE + MTUS),
        "description": field(["", "a network"], ODD_TEXT),
    },
    "vnics": {
        "vm_name": field(["vm1", "web01"], ODD_TEXT),
        "vm_uuid": field([None, "5a1c8e0e-7d8e-4b8e-9d4e-0a1b2c3d4e5f"], ["not-a-uuid", 5]),
        "node": field(HOSTNAMES, HOSTNAME_EDGE + NEW_HOSTNAMES),
        "network": field(["acme-web"], ["acme-db", "globex-app", "lab-net", "nothere"]),
        "mac": field(MACS, MAC_EDGE),
        "ip": field(["192.168.10.90", "192.168.10.91"],
                    IP_EDGE + ["192.168.11.90", "172.16.20.90", "192.168.10.1",
                               "192.168.10.11", "192.168.10.0", "192.168.10.255"]),
        "ip6": field([None, "2001:db8::90"], ["10.0.0.1", "fe80::1%eth0"]),
    },
    "nodes": {
        "hostname": field(NEW_HOSTNAMES, HOSTNAME_EDGE + HOSTNAMES),
        "pdc": field(["prague", "brno", "ostrava"], ["", " ", "prague\nbrno", 1]),
        "admin_ip": field(IPS + [None], IP_EDGE),
        "admin_netmask": field(["255.255.255.0", "255.255.0.0"], ["255.0.255.0", "24"]),
        "external_ip": field(IPS + [None], IP_EDGE),
        "nic_tags": field([["admin", "external"], []], [[""], "admin", [5]]),
        "default_route_nic": field(["external0", ""], ODD_TEXT),
        "status": field(["online", "maintenance"], ["gone"]),
        "ssh_host": field(["127.0.0.1", "", "cn01.prague"], ["a b", "host\n"]),
        "ssh_port": field([22, 2201], [0, 65536, True]),
        "ssh_user": field(["root", "admin"], ["root\n", "a b", ""]),
        "ssh_host_key": _host_keys(),
    },
    "vdcs": {
        "name": field(["initech", "hooli"], NAME_EDGE + ["acme", "globex"]),
        "description": field(["", "tenant"], ODD_TEXT),
        "admins": field([["alice"], [], ["bob", "alice"]], [["nobody"], "alice", [5]]),
        "vxlan_allowed": field(RANGES, RANGE_EDGE),
        "vlan_allowed": field(RANGES, RANGE_EDGE),
        "vxlan_restrict": field([True, False], [1, "yes"]),
        "vlan_restrict": field([True, False], [0, "no"]),
        "network_limit": field([None, 0, 5, 100], [-1, 2.5, True, 2**63]),
    },
    "admin_overlay": {
        "overlay_rule": field(["adminoverlay", "admin_b"], ["customers", "x\n"]),
        "subnet": field(["10.44.44.0/24", "10.45.0.0/16"], ["10.44.44.1/24", "10.44.44.0/30"]),
        "port": field([4799, None], PORT_EDGE),
        "mtu": field([1300], MTU_EDGE),
        "vxlan_id": field([2, 3], VXLAN_EDGE),
        "vlan_id": field([2, 0], VLAN_EDGE),
        "addresses": field([{}, {"cn01.prague": {"ip": "10.44.44.50"}},
                            {"cn01.prague": {"mac": "02:00:00:00:aa:01"}},
                            {"cn01.prague": {"ip": "10.44.44.12", "mac": "02:e5:dc:d5:d4:02"}}],
                           [{"nobody": {}}, {"cn01.prague": {"ip": "10.0.0.1"}},
                            {"cn01.prague": {"mac": "00:e5:dc:d5:d4:cf"}},
                            {"cn01.prague": "10.44.44.50"}]),
    },
    "firewall": {
        "enabled": field([True, False], [1, "yes", None]),
        "allowed_sources": field([["192.0.2.0/28"], [], SOURCES], [SOURCE_EDGE, "10.0.0.0/8"]),
    },
}


# The fields an object cannot be created without; the others are drawn or left out.
REQUIRED = {
    "overlay_rules": ("name",),
    "networks": ("name", "overlay_rule", "vxlan_id", "network"),
    "vnics": ("vm_name", "node", "network", "mac", "ip"),
    "nodes": ("hostname", "pdc"),
    "vdcs": ("name",),
    "admin_overlay": (),
    "firewall": ("enabled", "allowed_sources"),
}


def bodies(resource: str) -> st.SearchStrategy[dict[str, Any]]:
    """A JSON object for ``resource``: good values, with (usually) one field spoiled.

    One bad value at a time finds the value a rule lets through: with several, the first
    refusal hides the others. The required fields are usually all there (so that creates
    can succeed), sometimes any subset; now and then an unknown or read-only key is added.
    """
    fields = RESOURCES[resource]
    names = sorted(fields)
    required = {name: fields[name].good for name in REQUIRED[resource]}
    optional = {name: f.good for name, f in fields.items() if name not in required}
    complete = st.fixed_dictionaries(required, optional=optional)
    partial = st.fixed_dictionaries({}, optional={name: f.good for name, f in fields.items()})
    base = st.sampled_from([complete] * 4 + [partial]).flatmap(lambda strategy: strategy)
    # (hypothesis draws the first elements of a list more often: the spoiled fields first)
    spoiled = st.sampled_from(names * 2 + [None]).flatmap(
        lambda name: st.just({}) if name is None else fields[name].bad.map(
            lambda value: {name: value}))
    extra = st.sampled_from([False] * 9 + [True]).flatmap(lambda add: st.dictionaries(
        st.sampled_from(["id", "unknown", "created_at", "config_line"]), anything,
        min_size=1, max_size=1) if add else st.just({}))
    return st.builds(lambda body, bad, more: {**more, **body, **bad}, base, spoiled, extra)
