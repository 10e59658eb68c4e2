"""Rendered SmartOS node files -> the Linux objects that do the same job in the lab.

Written from the file formats (DESIGN.md section 2), not from the generators: it
imports nothing of the project, so a generator bug shows up as a lab failure
instead of being shared by both sides. Each function reads one kind of file and
says what it becomes:

================================================  ===========================================
rendered on the node (SmartOS)                    in the lab (Linux)
================================================  ===========================================
``/usbkey/config`` ``overlay_rule_<name>="..."``  one VXLAN device per VXLAN id used on the
(``dladm create-overlay`` arguments)              node: ``dstport`` = ``vxlan/listen_port``,
                                                  ``local`` = ``vxlan/listen_ip`` (unless
                                                  0.0.0.0), ``mtu`` = ``mtu``
varpd ``files`` table entry ``MAC: {ip, port}``   static FDB entry on each of that rule's
                                                  VXLAN devices: ``MAC dst ip port port``
a MAC missing from the table                      no FDB entry, no default destination and
                                                  ``nolearning``: the frame is dropped, as
                                                  varpd's failed lookup drops it
entry ``"arp"`` / ``"ndp"``                       permanent neighbour entry (IP -> MAC) in
                                                  each VM of the rule on that node: what
                                                  varpd answers to the VM's ARP / NDP query
``<tag>_<n>_{ip,netmask,mac,vxlan_id,vlan_id}``   the node's own vNIC (``adminoverlay_0``):
                                                  a veth in the node's namespace on overlay
                                                  ``<tag>`` + ``vxlan_id``
ipf rules (``ipf.conf-*``, in file-name order)    nftables ``input``/``output`` chains, same
                                                  order; ``quick`` = first match wins;
                                                  ``keep state`` = conntrack, consulted
                                                  before the rules as ipf consults its
                                                  state table
IKE rule + pre-shared key + ``ipsecinit.conf``    strongSwan (swanctl) connection per IKE
policy line                                       rule: IKEv1, PSK looked up by the pair of
                                                  addresses, one CHILD_SA per ``ipsec``
                                                  policy line of that pair
================================================  ===========================================

Entries varpd could not use (a port that is not a JSON integer, a missing
``ip``) are skipped, because on a node they make the lookup fail. Anything the
translation does not understand raises ``ValueError``: a lab built from a file
it misread would prove nothing.
"""

from __future__ import annotations

import ipaddress
import json
import re
import shlex
from dataclasses import dataclass

# ----------------------------------------------------------------- /usbkey/config


def usbkey_values(text: str) -> dict[str, str]:
    """Every ``key=value`` assignment of a /usbkey/config text, shell-unquoted (last wins)."""
    values = {}
    for line in text.splitlines():
        match = re.match(r"^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if match:
            words = shlex.split(match.group(2), comments=True)
            values[match.group(1)] = words[0] if words else ""
    return values


@dataclass(frozen=True)
class OverlayRule:
    """One ``overlay_rule_<name>`` line: what every overlay of the rule is created with."""

    name: str
    port: int
    listen_ip: str
    mtu: int
    arp_file: str


def overlay_rules(usbkey_text: str) -> dict[str, OverlayRule]:
    """The rules a node carries, by name, from its /usbkey/config."""
    rules = {}
    for key, value in usbkey_values(usbkey_text).items():
        if not key.startswith("overlay_rule_"):
            continue
        name = key.removeprefix("overlay_rule_")
        words, props = shlex.split(value), {}
        for flag, argument in zip(words[::2], words[1::2], strict=True):
            if flag == "-p":
                props.update(item.split("=", 1) for item in argument.split(","))
            elif (flag, argument) not in (("-e", "vxlan"), ("-s", "files")):
                raise ValueError(f"{key}: unexpected {flag} {argument}")
        rules[name] = OverlayRule(
            name=name,
            port=int(props["vxlan/listen_port"]),
            listen_ip=props["vxlan/listen_ip"],
            mtu=int(props.get("mtu", 1400)),
            arp_file=props["files/config"],
        )
    return rules


@dataclass(frozen=True)
class NodeVnic:
    """A vNIC of the node itself: ``adminoverlay_0`` is on the overlay of rule adminoverlay."""

    name: str
    rule: str
    ip: str
    netmask: str
    mac: str
    vxlan_id: int
    vlan_id: int


def node_vnics(usbkey_text: str) -> list[NodeVnic]:
    """The ``<tag>_<n>_*`` vNICs whose tag is an overlay rule the node carries."""
    values = usbkey_values(usbkey_text)
    rules = overlay_rules(usbkey_text)
    names = {m.group(1) for key in values if (m := re.match(r"^(\w+_\d+)_vxlan_id$", key))}
    vnics = []
    for name in sorted(names):
        rule = name.rsplit("_", 1)[0]
        if rule not in rules:
            continue  # the platform could not create it either
        get = {field: values[f"{name}_{field}"] for field in
               ("ip", "netmask", "mac", "vxlan_id", "vlan_id")}
        vnics.append(NodeVnic(name=name, rule=rule, ip=get["ip"], netmask=get["netmask"],
                              mac=normal_mac(get["mac"]), vxlan_id=int(get["vxlan_id"]),
                              vlan_id=int(get["vlan_id"])))
    return vnics


def normal_mac(mac: str) -> str:
    """``2:8:20:AA:1:2`` -> ``02:08:20:aa:01:02`` (varpd and iproute2 read both)."""
    parts = mac.split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {mac!r}")
    return ":".join(f"{int(part, 16):02x}" for part in parts)


# ----------------------------------------------------------------- varpd files table


@dataclass(frozen=True)
class ArpEntry:
    mac: str
    underlay_ip: str  # where the VXLAN packet for this MAC is sent
    port: int  # and to which UDP port
    ip: str | None  # the vNIC's IPv4 ("arp")
    ip6: str | None  # and IPv6 ("ndp")


def arp_table(text: str) -> list[ArpEntry]:
    """The entries varpd can use, from a rule's virtual ARP table (JSON keyed by MAC)."""
    entries = []
    for mac, value in json.loads(text).items():
        if not isinstance(value, dict) or not isinstance(value.get("ip"), str):
            continue
        port = value.get("port")
        if type(port) is not int or not 0 < port < 65536:
            continue  # varpd: a non-integer port makes the lookup fail, the frame is dropped
        entries.append(ArpEntry(mac=normal_mac(mac), underlay_ip=value["ip"], port=port,
                                ip=value.get("arp"), ip6=value.get("ndp")))
    return entries


def fdb_commands(device: str, entries: list[ArpEntry]) -> list[str]:
    """``bridge -batch`` lines: each entry is where frames for its MAC are tunnelled to."""
    return [f"fdb append {e.mac} dev {device} dst {e.underlay_ip} port {e.port} self permanent"
            for e in entries]


def neighbour_commands(device: str, entries: list[ArpEntry],
                       address: ipaddress.IPv4Interface,
                       address6: ipaddress.IPv6Interface | None = None) -> list[str]:
    """``ip -batch`` lines for a vNIC on ``address``: varpd's answers to its ARP/NDP queries."""
    lines = []
    for e in entries:
        if e.ip and ipaddress.ip_address(e.ip) in address.network and e.ip != str(address.ip):
            lines.append(f"neigh replace {e.ip} lladdr {e.mac} dev {device} nud permanent")
        if e.ip6 and address6 and ipaddress.ip_address(e.ip6) in address6.network:
            lines.append(f"neigh replace {e.ip6} lladdr {e.mac} dev {device} nud permanent")
    return lines


# ----------------------------------------------------------------- ipfilter -> nftables


@dataclass(frozen=True)
class IpfRule:
    action: str  # pass | block
    direction: str  # in | out
    quick: bool
    interface: str | None
    proto: str | None
    source: str  # "any" or an address/prefix
    destination: str
    port: int | None  # destination port
    keep_state: bool
    text: str


def ipf_rules(text: str) -> list[IpfRule]:
    """Parse ``action in|out [log] [quick] [on IF] [proto P] from A to B [port = N]
    [keep state]`` lines (DESIGN 2.5)."""
    rules = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        fields = {"action": words[0], "direction": words[1], "quick": False, "interface": None,
                  "proto": None, "source": "any", "destination": "any", "port": None,
                  "keep_state": False}
        if fields["action"] not in ("pass", "block") or fields["direction"] not in ("in", "out"):
            raise ValueError(f"ipf rule not understood: {line}")
        rest = words[2:]
        while rest:
            word = rest.pop(0)
            if word == "log":
                pass  # ipmon logging; the lab counts matches instead
            elif word == "quick":
                fields["quick"] = True
            elif word == "on":
                fields["interface"] = rest.pop(0)
            elif word == "proto":
                fields["proto"] = rest.pop(0)
            elif word == "all":
                pass  # from any to any
            elif word in ("from", "to"):
                fields["source" if word == "from" else "destination"] = rest.pop(0)
            elif word == "port" and rest[:1] == ["="]:
                fields["port"] = int(rest[1])
                del rest[:2]
            elif word == "keep" and rest[:1] == ["state"]:
                fields["keep_state"] = True
                rest.pop(0)
            else:
                raise ValueError(f"ipf rule not understood at {word!r}: {line}")
        rules.append(IpfRule(text=line, **fields))
    return rules


def nft_ruleset(ipf_texts: list[str], table: str = "ipf") -> str:
    """An ``nft -f`` script doing what the ipf files (in this order) do on the node."""
    rules = [rule for text in ipf_texts for rule in ipf_rules(text)]
    chains: dict[str, list[str]] = {"in": [], "out": []}
    if any(rule.keep_state for rule in rules):
        for lines in chains.values():
            lines.append("ct state established,related accept")
    for rule in rules:
        if not rule.quick:
            raise ValueError(f"only 'quick' ipf rules are translated (last match wins "
                             f"otherwise): {rule.text}")
        match = []
        if rule.interface:
            match.append(f'{"iifname" if rule.direction == "in" else "oifname"} '
                         f'"{rule.interface}"')
        if rule.proto:
            match.append(f"meta l4proto {rule.proto}")
        if rule.source != "any":
            match.append(f"ip saddr {rule.source}")
        if rule.destination != "any":
            match.append(f"ip daddr {rule.destination}")
        if rule.port is not None:
            match.append(f"{rule.proto or 'th'} dport {rule.port}")
        verdict = "accept" if rule.action == "pass" else "drop"
        chains[rule.direction].append(
            " ".join([*match, "counter", verdict, f'comment "{rule.text}"']))
    hooks = {"in": "input", "out": "output"}
    body = "".join(
        f"  chain {direction} {{\n    type filter hook {hooks[direction]} priority 0; "
        f"policy accept;\n" + "".join(f"    {line}\n" for line in lines) + "  }\n"
        for direction, lines in chains.items())
    return f"table inet {table} {{\n{body}}}\n"


# ----------------------------------------------------------------- IKE / IPSec -> strongSwan

OAKLEY_GROUPS = {1: "modp768", 2: "modp1024", 5: "modp1536", 14: "modp2048", 15: "modp3072",
                 16: "modp4096", 17: "modp6144", 18: "modp8192", 22: "modp1024s160",
                 23: "modp2048s224", 24: "modp2048s256"}
ENCRYPTION = {"aes": "aes128", "aes-cbc": "aes128", "3des": "3des"}
INTEGRITY = {"md5": "md5", "sha1": "sha1", "sha": "sha1", "sha256": "sha256",
             "sha384": "sha384", "sha512": "sha512"}  # ESP sha512 = HMAC-SHA-512/256 on both


def _tokens(text: str) -> list[str]:
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return re.findall(r'"[^"]*"|[{}]|[^\s{}]+', text)


def _block(tokens: list[str]) -> list[tuple[str | None, object]]:
    """``key value``, ``key { ... }`` and anonymous ``{ ... }`` items, up to a closing brace."""
    items: list[tuple[str | None, object]] = []
    while tokens:
        token = tokens.pop(0)
        if token == "}":
            return items
        if token == "{":
            items.append((None, _block(tokens)))
        elif tokens and tokens[0] == "{":
            tokens.pop(0)
            items.append((token, _block(tokens)))
        else:
            items.append((token, tokens.pop(0).strip('"')))
    return items


@dataclass(frozen=True)
class IkeRule:
    label: str
    local: str
    remote: str
    ike_proposal: str  # strongSwan spelling, e.g. aes128-sha256-modp1536
    pfs_group: str | None
    lifetimes: dict[str, int]


def ike_rules(text: str) -> list[IkeRule]:
    """The per-peer rules of an in.iked config, with the global defaults applied."""
    items = _block(_tokens(text))
    defaults = {key: value for key, value in items if key is not None}
    rules = []
    for key, body in items:
        if key is not None:
            continue
        rule = {**defaults, **dict(body)}
        xform = dict(rule["p1_xform"])
        if xform.get("auth_method") != "preshared":
            raise ValueError(f"only pre-shared keys are translated: {rule['label']}")
        proposal = "-".join([ENCRYPTION[xform["encr_alg"]], INTEGRITY[xform["auth_alg"]],
                             OAKLEY_GROUPS[int(xform["oakley_group"])]])
        pfs = int(rule.get("p2_pfs", 0))
        rules.append(IkeRule(
            label=rule["label"], local=rule["local_addr"], remote=rule["remote_addr"],
            ike_proposal=proposal, pfs_group=OAKLEY_GROUPS[pfs] if pfs else None,
            lifetimes={k: int(v) for k, v in rule.items()
                       if k in ("p1_lifetime_secs", "p2_lifetime_secs", "p2_softlife_secs")}))
    return rules


def preshared_keys(text: str) -> dict[tuple[str, str], str]:
    """(local id, remote id) -> hex key, from ike.preshared."""
    keys = {}
    for key, body in _block(_tokens(text)):
        entry = dict(body) if key is None else {}
        if entry.get("localidtype") == entry.get("remoteidtype") == "IP":
            keys[entry["localid"], entry["remoteid"]] = entry["key"]
    return keys


@dataclass(frozen=True)
class IpsecPolicy:
    local: str
    remote: str
    ulp: str | None  # upper-layer protocol the policy covers (udp)
    esp_proposal: str


def ipsec_policies(text: str) -> list[IpsecPolicy]:
    """The ``ipsec`` lines of ipsecinit.conf; ``bypass`` lines need nothing in the lab.

    (Without a matching CHILD_SA, libipsec routes nothing into its tunnel: traffic
    from the admin address stays plain, which is what the bypass line asks for.)
    """
    policies = []
    for line in text.splitlines():
        match = re.match(r"^\{(?P<sel>[^}]*)\}\s*(?P<action>\w+)\s*\{(?P<props>[^}]*)\}\s*$",
                         line.strip())
        if match is None or match["action"] != "ipsec":
            continue
        words, props = match["sel"].split(), match["props"].split()
        selectors = dict(zip(words[::2], words[1::2], strict=True))
        wanted = dict(zip(props[::2], props[1::2], strict=True))
        policies.append(IpsecPolicy(
            local=selectors["laddr"], remote=selectors["raddr"], ulp=selectors.get("ulp"),
            esp_proposal=f"{ENCRYPTION[wanted['encr_algs']]}-"
                         f"{INTEGRITY[wanted['encr_auth_algs']]}"))
    return policies


@dataclass(frozen=True)
class Swanctl:
    conf: str  # swanctl.conf
    children: int  # CHILD_SAs the node should end up with
    initiate: list[str]  # the CHILD_SAs this node starts (once every node has its conf)


def swanctl_conf(ike_text: str, preshared_text: str, policy_text: str) -> Swanctl:
    """The node's IKE rules, keys and ESP policies as a strongSwan configuration.

    libipsec does ESP in tunnel mode only; a tunnel between the two external
    addresses, restricted to the policy's protocol, carries the same packets as
    illumos' transport-mode SA. Both ends could start the exchange (in.iked
    does); here the lower address starts it so that each pair negotiates once.
    """
    keys = preshared_keys(preshared_text)
    policies = ipsec_policies(policy_text)
    connections, secrets, children, initiate = [], [], 0, []
    for index, rule in enumerate(ike_rules(ike_text)):
        name = f"peer{index}"
        child_lines = []
        for policy in policies:
            if (policy.local, policy.remote) != (rule.local, rule.remote):
                continue
            ulp = f"[{policy.ulp}]" if policy.ulp else ""
            esp = policy.esp_proposal + (f"-{rule.pfs_group}" if rule.pfs_group else "")
            child = f"{name}c{len(child_lines)}"
            if ipaddress.ip_address(rule.local) < ipaddress.ip_address(rule.remote):
                initiate.append(child)
            life = rule.lifetimes
            child_lines.append(
                f"      {child} {{\n        mode = tunnel\n"
                f"        local_ts = {rule.local}/32{ulp}\n"
                f"        remote_ts = {rule.remote}/32{ulp}\n"
                f"        esp_proposals = {esp}\n"
                f"        rekey_time = {life.get('p2_softlife_secs', 3600)}s\n"
                "        rand_time = 0s\n"  # at the soft lifetime, as in.iked does
                f"        life_time = {life.get('p2_lifetime_secs', 4000)}s\n      }}\n")
        children += len(child_lines)
        connections.append(
            f"  {name} {{  # {rule.label}\n    version = 1\n"
            f"    local_addrs = {rule.local}\n    remote_addrs = {rule.remote}\n"
            f"    proposals = {rule.ike_proposal}\n"
            f"    rekey_time = {rule.lifetimes.get('p1_lifetime_secs', 14400)}s\n"
            f"    local {{\n      auth = psk\n      id = {rule.local}\n    }}\n"
            f"    remote {{\n      auth = psk\n      id = {rule.remote}\n    }}\n"
            f"    children {{\n{''.join(child_lines)}    }}\n  }}\n")
        key = keys.get((rule.local, rule.remote))
        if key is not None:
            secrets.append(f"  ike-{name} {{\n    id-1 = {rule.local}\n"
                           f"    id-2 = {rule.remote}\n    secret = 0x{key}\n  }}\n")
    text = f"connections {{\n{''.join(connections)}}}\nsecrets {{\n{''.join(secrets)}}}\n"
    return Swanctl(text, children, initiate)
