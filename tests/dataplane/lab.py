"""A data-plane lab: compute nodes and VMs as Linux network namespaces.

Topology (every name below lives inside namespaces this lab creates; the host's
own network namespace is never touched)::

    <prefix>fab      the wires: one bridge per PDC (``pdc<j>``, the admin
                     network) and one shared bridge ``internet``
    <prefix>n<i>     compute node i: ``admin0`` on its PDC's bridge, ``external0``
                     on ``internet``; per overlay (rule + VXLAN id) it needs, a
                     VXLAN device ``vx<r>.<vxlan id>`` in a bridge ``ov<r>.<vxlan id>``
                     with the ports of its VMs and its own vNICs; nftables table
                     ``ipf``; a strongSwan charon (kernel-libipsec: ``ipsec0``)
    <prefix>v<k>     VM k: ``eth0`` with the vNIC's MAC and IP, its other end a
                     port of its node's overlay bridge, tagged with the network's
                     VLAN (``vlan.py``)

Node addresses, PDCs and VM placement come from the ``World`` (the declared
state); everything else from the node's rendered files through ``translate``.
``close()`` removes it all (processes by pid, then namespaces), and
``remove_leftovers()`` removes what a killed run left behind.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.dataplane import translate
from tests.dataplane.world import World

PREFIX = "ovlab"
USBKEY = "/usbkey/config"
IKE_CONFIG = "/opt/custom/etc/ipsec/config"
IKE_PRESHARED = "/opt/custom/etc/ipsec/ike.preshared"
IPSEC_POLICY = "/opt/custom/etc/ipsec/ipsecinit.conf"
IPF_DIR = "/opt/custom/etc/ipf.d/"
CHARON = "/usr/lib/ipsec/charon"
VLAN_TOOL = Path(__file__).with_name("vlan.py")
ESP_PORT = 4500  # libipsec always encapsulates ESP in UDP
# iproute2, nftables and strongSwan's tools live in sbin directories, which some PATHs lack.
ENV = {**os.environ, "PATH": os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])}


class LabError(RuntimeError):
    pass


def run(args: Sequence[str], stdin: str | None = None, check: bool = True,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), input=stdin, capture_output=True, text=True,
                            timeout=120, env=env or ENV, check=False)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(args)} failed ({result.returncode}):\n"
                       f"{result.stderr.strip()}\n{(stdin or '')[:3000]}")
    return result


def namespaces() -> list[str]:
    return [line.split()[0] for line in run(["ip", "netns", "list"]).stdout.splitlines()]


def remove_leftovers() -> list[str]:
    """Delete the namespaces (and end the processes in them) of lab runs that died."""
    removed = []
    for name in namespaces():
        match = re.match(rf"^{PREFIX}(\d+)-", name)
        if match is None or Path(f"/proc/{match.group(1)}").exists():
            continue
        for pid in run(["ip", "netns", "pids", name], check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)
        run(["ip", "netns", "del", name], check=False)
        removed.append(name)
    return removed


@dataclass(frozen=True)
class Endpoint:
    """Something that pings: a VM or a node's own vNIC."""

    name: str
    host: str  # the compute node it is on
    namespace: str
    device: str  # its interface in that namespace
    ip: str
    ip6: str | None
    network: str  # network name, or the node vNIC's rule
    vlan: bool  # tagged inside the overlay
    port: str  # its port on the node's overlay bridge


@dataclass
class _Overlay:
    rule: translate.OverlayRule
    vxlan_id: int
    vxlan: str  # device names in the node's namespace
    bridge: str
    ports: dict[str, int] = field(default_factory=dict)  # port -> VLAN id


class Lab:
    """One cluster's lab: build(), then configure() firewall and IPSec, probe, close()."""

    def __init__(self, name: str, world: World, files: dict[str, dict[str, str]],
                 workdir: Path) -> None:
        self.prefix = f"{PREFIX}{os.getpid()}-{name}-"
        self.world, self.files, self.workdir = world, files, workdir
        self.fabric = self.prefix + "fab"
        hosts = sorted(node.hostname for node in world.nodes)
        self.node_ns = {host: f"{self.prefix}n{i}" for i, host in enumerate(hosts)}
        self.vm_ns = {vm.name: f"{self.prefix}v{k}" for k, vm in enumerate(world.vms)}
        self.created: list[str] = []
        self.endpoints: dict[str, Endpoint] = {}
        self.unattached: dict[str, str] = {}  # VM -> why it has no link
        self.overlays: dict[str, dict[tuple[str, int], _Overlay]] = {}
        self.charons: dict[str, subprocess.Popen[bytes]] = {}
        # charon's control sockets: a Unix socket path must stay under 108 bytes, which a
        # pytest tmp_path (deeper still under xdist) plus a namespace name can exceed.
        self.socket_dir = Path(tempfile.mkdtemp(prefix=PREFIX + "-vici-"))
        self.expected_children: dict[str, int] = {}
        self.firewall = self.ipsec = False
        self._macs: dict[str, str] = {}

    # ------------------------------------------------------------------ build

    def ip(self, namespace: str, lines: Iterable[str], tool: str = "ip") -> None:
        batch = "".join(line + "\n" for line in lines)
        if batch:
            run([tool, "-n", namespace, "-batch", "-"], stdin=batch)

    def sysctl(self, namespace: str, *settings: str) -> None:
        run(["ip", "netns", "exec", namespace, "sysctl", "-q", "-w", *settings])

    def build(self) -> Lab:
        names = [self.fabric, *self.node_ns.values(), *self.vm_ns.values()]
        self.created = names
        run(["ip", "-batch", "-"], stdin="".join(f"netns add {n}\n" for n in names))
        no_ipv6 = ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
        self.sysctl(self.fabric, *no_ipv6)
        for namespace in self.node_ns.values():
            # A node answers ARP only for addresses of the link asked on, so a packet
            # sent to the wrong underlay address is not rescued by the other link.
            self.sysctl(namespace, *no_ipv6, "net.ipv4.conf.all.arp_ignore=1")
        for vm in self.world.vms:
            if vm.ip6 is None:
                self.sysctl(self.vm_ns[vm.name], *no_ipv6)
        self._wires()
        for node in self.world.nodes:
            self._node(node.hostname)
        self._bridge_counters()
        return self

    def _wires(self) -> None:
        pdcs = {pdc: f"pdc{j}" for j, pdc in enumerate(self.world.pdcs)}
        lines = [f"link add {bridge} type bridge" for bridge in [*pdcs.values(), "internet"]]
        lines += [f"link set {bridge} up" for bridge in [*pdcs.values(), "internet"]]
        for i, node in enumerate(sorted(self.world.nodes, key=lambda n: n.hostname)):
            namespace = self.node_ns[node.hostname]
            lines += [f"link add a{i} type veth peer name admin0 netns {namespace}",
                      f"link set a{i} master {pdcs[node.pdc]} up"]
            if node.external_ip:
                lines += [f"link add x{i} type veth peer name external0 netns {namespace}",
                          f"link set x{i} master internet up"]
        self.ip(self.fabric, lines)

    def _node(self, host: str) -> None:
        """One compute node: its underlay links, then its overlays as its files say."""
        node, namespace = self.world.node(host), self.node_ns[host]
        usbkey = self.files.get(host, {}).get(USBKEY, "")
        rules = translate.overlay_rules(usbkey)
        self.overlays[host] = {}
        lines = ["link set lo up", f"addr add {node.admin} dev admin0", "link set admin0 up"]
        # The PDC's admin network is one segment, whatever netmask a node declares.
        lines += [f"route add {peer.admin.ip}/32 dev admin0" for peer in self.world.nodes
                  if peer.pdc == node.pdc and peer.admin.ip not in node.admin.network]
        if node.external_ip:
            lines += [f"addr add {node.external_ip}/32 dev external0", "link set external0 up",
                      "route add default dev external0"]
        vm_lines: dict[str, list[str]] = {}
        for k, vm in enumerate(self.world.vms):
            network = self.world.networks[vm.network]
            if vm.node != host:
                continue
            if network.rule not in rules:
                self.unattached[vm.name] = f"{host} does not carry rule {network.rule}"
                continue
            found = self._overlay(host, rules, network.rule, network.vxlan_id, lines)
            port, vm_namespace = f"vm{k}", self.vm_ns[vm.name]
            found.ports[port] = network.vlan_id
            mtu = min(network.mtu, found.rule.mtu)  # a VNIC is no larger than its overlay
            lines += [f"link add {port} mtu {mtu} type veth peer name eth0 netns {vm_namespace}",
                      f"link set {port} master {found.bridge} up"]
            address = ipaddress.IPv4Interface(f"{vm.ip}/{network.subnet.prefixlen}")
            address6 = ipaddress.IPv6Interface(f"{vm.ip6}/64") if vm.ip6 else None
            vm_lines[vm_namespace] = [
                "link set lo up", f"link set eth0 address {vm.mac} mtu {mtu} up",
                f"addr add {address} dev eth0",
                *([f"addr add {address6} dev eth0 nodad"] if address6 else []),
                *translate.neighbour_commands("eth0", self._table(host, found.rule),
                                              address, address6)]
            self.endpoints[vm.name] = Endpoint(vm.name, host, vm_namespace, "eth0", vm.ip,
                                               vm.ip6, vm.network, network.vlan_id != 0, port)
        for j, vnic in enumerate(translate.node_vnics(usbkey)):
            found = self._overlay(host, rules, vnic.rule, vnic.vxlan_id, lines)
            device, port = (vnic.name if len(vnic.name) < 16 else f"ovnic{j}"), f"nv{j}"
            found.ports[port] = vnic.vlan_id
            address = ipaddress.IPv4Interface(f"{vnic.ip}/{vnic.netmask}")
            lines += [f"link add {device} mtu {found.rule.mtu} type veth peer name {port}",
                      f"link set {port} mtu {found.rule.mtu} master {found.bridge} up",
                      f"link set {device} address {vnic.mac} up",
                      f"addr add {address} dev {device}",
                      *translate.neighbour_commands(device, self._table(host, found.rule),
                                                    address)]
            name = f"{vnic.name}@{host}"
            self.endpoints[name] = Endpoint(name, host, namespace, device, vnic.ip, None,
                                            vnic.rule, vnic.vlan_id != 0, port)
        self.ip(namespace, lines)
        for vm_namespace, commands in vm_lines.items():
            self.ip(vm_namespace, commands)
        overlays = self.overlays[host].values()
        self.ip(namespace, [line for found in overlays for line in
                            translate.fdb_commands(found.vxlan, self._table(host, found.rule))],
                tool="bridge")
        ports = [f"{port}={vid}" for found in overlays for port, vid in found.ports.items()]
        if ports:
            run(["ip", "netns", "exec", namespace, sys.executable, str(VLAN_TOOL), *ports])

    def _overlay(self, host: str, rules: dict[str, translate.OverlayRule], rule_name: str,
                 vxlan_id: int, lines: list[str]) -> _Overlay:
        """The node's overlay (rule + VXLAN id), created on first use as the platform does."""
        overlays = self.overlays[host]
        if (rule_name, vxlan_id) not in overlays:
            rule, r = rules[rule_name], sorted(rules).index(rule_name)
            found = _Overlay(rule, vxlan_id, f"vx{r}.{vxlan_id}", f"ov{r}.{vxlan_id}")
            local = "" if rule.listen_ip == "0.0.0.0" else f" local {rule.listen_ip}"
            lines += [f"link add {found.bridge} type bridge", f"link set {found.bridge} up",
                      # no learning, no default destination: unknown MACs are dropped
                      f"link add {found.vxlan} type vxlan id {vxlan_id} dstport {rule.port}"
                      f"{local} nolearning df set",
                      f"link set {found.vxlan} mtu {rule.mtu} master {found.bridge} up"]
            overlays[rule_name, vxlan_id] = found
        return overlays[rule_name, vxlan_id]

    def _table(self, host: str, rule: translate.OverlayRule) -> list[translate.ArpEntry]:
        text = self.files.get(host, {}).get(rule.arp_file)
        return translate.arp_table(text) if text is not None else []

    # ------------------------------------------------------------- wire counters

    def _bridge_counters(self) -> None:
        """Count, on the internet bridge, plaintext overlay packets and ESP packets."""
        ports = {4789} | {rule.port for files in self.files.values()
                          for rule in translate.overlay_rules(files.get(USBKEY, "")).values()}
        script = (
            "table bridge wire {\n  counter plain_overlay {}\n  counter encrypted {}\n"
            "  chain forward {\n    type filter hook forward priority 0; policy accept;\n"
            f'    iifname "x*" udp dport {{ {", ".join(map(str, sorted(ports)))} }} '
            'counter name "plain_overlay"\n'
            # ESP in UDP: the 4 bytes after the UDP header are the SPI (IKE puts zeros there)
            f'    iifname "x*" udp dport {ESP_PORT} @th,64,32 != 0 counter name "encrypted"\n'
            '    iifname "x*" meta l4proto esp counter name "encrypted"\n  }\n}\n')
        run(["ip", "netns", "exec", self.fabric, "nft", "-f", "-"], stdin=script)

    def wire_counters(self) -> dict[str, int]:
        """Packets seen so far on the internet bridge: ``vxlan`` (plaintext) and ``esp``."""
        out = run(["ip", "netns", "exec", self.fabric, "nft", "-j", "list", "counters"]).stdout
        counters = {item["counter"]["name"]: item["counter"]["packets"]
                    for item in json.loads(out)["nftables"] if "counter" in item}
        return {"vxlan": counters["plain_overlay"], "esp": counters["encrypted"]}

    def device_counters(self, host: str, device: str) -> dict[str, int]:
        """Packets a device of the node has sent and dropped so far."""
        out = run(["ip", "-n", self.node_ns[host], "-s", "-j", "link", "show", device]).stdout
        tx = json.loads(out)[0]["stats64"]["tx"]
        return {"sent": tx["packets"], "dropped": tx["dropped"]}

    def vxlan_device(self, endpoint: Endpoint) -> str:
        """The VXLAN device of the overlay the endpoint is attached to."""
        return next(found.vxlan for found in self.overlays[endpoint.host].values()
                    if endpoint.port in found.ports)

    def link_counters(self, host: str) -> dict[str, int]:
        """Packets sent so far by the node on each underlay link (admin0, external0)."""
        out = run(["ip", "-n", self.node_ns[host], "-s", "-j", "link", "show"]).stdout
        return {link["ifname"]: link["stats64"]["tx"]["packets"] for link in json.loads(out)
                if link["ifname"] in ("admin0", "external0")}

    # ------------------------------------------------------- firewall and IPSec

    def configure(self, *, firewall: bool, ipsec: bool) -> None:
        """Apply (or withdraw) the nodes' ipf rules and IPSec mesh as rendered."""
        if ipsec != self.ipsec:
            self._start_ipsec() if ipsec else self._stop_ipsec()
            self.ipsec = ipsec
        if firewall != self.firewall:
            for host, namespace in self.node_ns.items():
                if firewall:
                    files = self.files.get(host, {})
                    texts = [files[path] for path in sorted(files) if path.startswith(IPF_DIR)]
                    run(["ip", "netns", "exec", namespace, "nft", "-f", "-"],
                        stdin=translate.nft_ruleset(texts))
                else:
                    run(["ip", "netns", "exec", namespace, "nft", "delete", "table", "inet",
                         "ipf"])
            self.firewall = firewall

    def firewall_drops(self, host: str) -> int:
        """Packets the node's translated ipf 'block' rules have dropped so far."""
        out = run(["ip", "netns", "exec", self.node_ns[host], "nft", "-j", "list", "table",
                   "inet", "ipf"]).stdout
        drops = 0
        for item in json.loads(out)["nftables"]:
            expr = item.get("rule", {}).get("expr", [])
            if {"drop": None} in expr:
                drops += next(e["counter"]["packets"] for e in expr if "counter" in e)
        return drops

    def _charon_dir(self, host: str) -> Path:
        directory = self.workdir / self.node_ns[host]
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    def _swanctl(self, host: str, *args: str) -> list[str]:
        return ["swanctl", *args, "--uri", self._vici(host)]

    def _vici(self, host: str) -> str:
        return f"unix://{self.socket_dir}/{self.node_ns[host].rsplit('-', 1)[1]}.vici"

    def _start_ipsec(self) -> None:
        """A charon per node with IPSec peers, its translated configuration loaded once every
        charon runs; then the lower address of each pair starts the exchange."""
        initiate: dict[str, list[str]] = {}
        for host, namespace in self.node_ns.items():
            files, directory = self.files.get(host, {}), self._charon_dir(host)
            if not self.world.node(host).external_ip or IKE_CONFIG not in files:
                continue
            swanctl = translate.swanctl_conf(
                files[IKE_CONFIG], files.get(IKE_PRESHARED, ""), files.get(IPSEC_POLICY, ""))
            if not swanctl.children:
                continue
            (directory / "swanctl.conf").write_text(swanctl.conf)
            (directory / "strongswan.conf").write_text(STRONGSWAN_CONF.format(
                vici=self._vici(host), log=directory / "charon.log"))
            env = {**ENV, "STRONGSWAN_CONF": str(directory / "strongswan.conf")}
            with open(directory / "charon.out", "wb") as out:
                # A private /run per charon: its pid file path is fixed (/var/run/charon.pid).
                self.charons[host] = subprocess.Popen(
                    ["ip", "netns", "exec", namespace, "sh", "-c",
                     f"mount -t tmpfs lab /run && exec {CHARON}"],
                    env=env, stdout=out, stderr=subprocess.STDOUT)
            self.expected_children[host] = swanctl.children
            initiate[host] = swanctl.initiate
        for host in self.charons:
            load = self._swanctl(host, "--load-all", "--noprompt", "--file",
                                 str(self._charon_dir(host) / "swanctl.conf"))
            # A deadline, not a delay: 30 s leaves room for a busy machine (parallel workers).
            self._wait(lambda load=load: run(load, check=False).returncode == 0, 30,
                       f"charon of {host} to take its configuration")
        starting = [subprocess.Popen(self._swanctl(host, "--initiate", "--child", child,
                                                   "--timeout", "5"),
                                     env=ENV, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
                    for host, children in initiate.items() for child in children]
        for process in starting:
            process.wait()
        # Wait (bounded) for the CHILD_SAs; a pair that cannot agree is for the tests to find.
        with contextlib.suppress(LabError):
            self._wait(lambda: all(self.installed_children(h) >= n
                                   for h, n in self.expected_children.items()), 10, "IPSec")

    def installed_children(self, host: str) -> int:
        out = run(self._swanctl(host, "--list-sas", "--raw"), check=False).stdout
        return out.count("state=INSTALLED")

    def _stop_ipsec(self) -> None:
        for charon in self.charons.values():
            charon.terminate()
        for charon in self.charons.values():
            try:
                charon.wait(10)
            except subprocess.TimeoutExpired:
                charon.kill()
                charon.wait()
        self.charons.clear()
        self.expected_children.clear()

    @staticmethod
    def _wait(condition: object, seconds: float, what: str) -> None:
        deadline = time.monotonic() + seconds
        while not condition():  # type: ignore[operator]
            if time.monotonic() > deadline:
                raise LabError(f"timed out waiting for {what}")
            time.sleep(0.1)

    # ------------------------------------------------------------------ probes

    def ping(self, pairs: Sequence[tuple[Endpoint, str]], *, count: int = 2,
             size: int | None = None, interval: float = 0.05, wait: float = 1) -> list[bool]:
        """Ping each (source, destination address) pair, all at once; True where answered."""
        processes = []
        for source, address in pairs:
            args = ["ip", "netns", "exec", source.namespace, "ping", "-n", "-q",
                    "-c", str(count), "-i", str(interval), "-W", str(wait)]
            if size is not None:
                args += ["-M", "do", "-s", str(size)]
            processes.append(subprocess.Popen([*args, address], env=ENV,
                                              stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL))
        return [process.wait(30) == 0 for process in processes]

    def flood(self, pairs: Sequence[tuple[Endpoint, str]], count: int) -> None:
        """Send ``count`` quick pings per pair, all pairs at once: traffic to count on links."""
        processes = [subprocess.Popen(
            ["ip", "netns", "exec", source.namespace, "ping", "-n", "-q", "-c", str(count),
             "-i", "0.002", "-W", "0.2", address],  # requests are what is counted
            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for source, address in pairs]
        for process in processes:
            process.wait(30)

    @contextlib.contextmanager
    def forced_paths(self, pairs: Iterable[tuple[Endpoint, Endpoint]]) -> Iterator[None]:
        """Make each side of each pair send straight to the other's MAC, as a hostile VM could.

        Each side gets a host route and a permanent neighbour entry for the other,
        so only the overlay (VXLAN id, VLAN tag, tables) can keep them apart.
        """
        add: dict[str, list[str]] = {}
        remove: dict[str, list[str]] = {}
        for a, b in pairs:
            for src, dst in ((a, b), (b, a)):
                add.setdefault(src.namespace, []).extend([
                    f"route replace {dst.ip}/32 dev {src.device}",
                    f"neigh replace {dst.ip} lladdr {self._mac(dst)} dev {src.device} "
                    "nud permanent"])
                remove.setdefault(src.namespace, []).extend([
                    f"route del {dst.ip}/32 dev {src.device}",
                    f"neigh del {dst.ip} dev {src.device}"])
        try:
            for namespace, lines in add.items():
                self.ip(namespace, dict.fromkeys(lines))
            yield
        finally:
            for namespace, lines in remove.items():
                batch = "".join(line + "\n" for line in dict.fromkeys(lines))
                run(["ip", "-force", "-n", namespace, "-batch", "-"], stdin=batch, check=False)

    @contextlib.contextmanager
    def static_neighbour(self, source: Endpoint, ip: str, mac: str) -> Iterator[None]:
        """``source`` sends packets for ``ip`` to ``mac`` (a host route and a neighbour entry)."""
        self.ip(source.namespace, [f"route replace {ip}/32 dev {source.device}",
                                   f"neigh replace {ip} lladdr {mac} dev {source.device} "
                                   "nud permanent"])
        try:
            yield
        finally:
            run(["ip", "-force", "-n", source.namespace, "-batch", "-"], check=False,
                stdin=f"route del {ip}/32 dev {source.device}\n"
                      f"neigh del {ip} dev {source.device}\n")

    def _mac(self, endpoint: Endpoint) -> str:
        if endpoint.name not in self._macs:
            out = run(["ip", "-n", endpoint.namespace, "-j", "link", "show",
                       endpoint.device]).stdout
            self._macs[endpoint.name] = json.loads(out)[0]["address"]
        return self._macs[endpoint.name]

    @contextlib.contextmanager
    def wide_overlay(self, endpoints: Iterable[Endpoint], mtu: int = 9000) -> Iterator[None]:
        """Raise the MTUs on the endpoints' paths (their links, ports and VXLAN devices),
        so that only the underlay limits."""
        changed: list[tuple[str, str, int]] = []
        for endpoint in endpoints:
            node_namespace = self.node_ns[endpoint.host]
            devices = [(endpoint.namespace, endpoint.device), (node_namespace, endpoint.port)]
            devices += [(node_namespace, found.vxlan) for found in
                        self.overlays[endpoint.host].values() if endpoint.port in found.ports]
            for namespace, device in devices:
                out = run(["ip", "-n", namespace, "-j", "link", "show", device]).stdout
                changed.append((namespace, device, json.loads(out)[0]["mtu"]))
                run(["ip", "-n", namespace, "link", "set", device, "mtu", str(mtu)])
        try:
            yield
        finally:
            for namespace, device, old in reversed(changed):
                run(["ip", "-n", namespace, "link", "set", device, "mtu", str(old)], check=False)

    # ------------------------------------------------------------------ cleanup

    def close(self) -> None:
        """Stop the charons, then delete every namespace (and so every link) of the lab."""
        with contextlib.suppress(Exception):
            self._stop_ipsec()
        for charon in self.charons.values():
            with contextlib.suppress(Exception):
                charon.kill()
        for name in self.created:
            run(["ip", "netns", "del", name], check=False)
        self.created = []
        shutil.rmtree(self.socket_dir, ignore_errors=True)


STRONGSWAN_CONF = """\
charon {{
  load_modular = no
  # kernel-libipsec first: its ESP (userspace) must win over the kernel xfrm of kernel-netlink
  load = random nonce aes sha1 sha2 hmac kdf gmp socket-default kernel-libipsec kernel-netlink vici
  # A peer that cannot agree is given up on in seconds (the tests then say which).
  retransmit_timeout = 1
  retransmit_tries = 2
  plugins {{
    kernel-libipsec {{
      allow_peer_ts = yes  # the tunnel's traffic selector is the IKE peer itself
      mtu = 1500  # the underlay's: larger ESP packets fragment, as on SmartOS
    }}
    # IKE and ESP packets are marked and bypass the tunnel's routing table (220).
    kernel-netlink {{
      fwmark = !0x42
    }}
    socket-default {{
      fwmark = 0x42
    }}
    vici {{
      socket = {vici}
    }}
  }}
  filelog {{
    lab {{
      path = {log}
      default = 1
      time_format = %T
    }}
  }}
}}
"""


@contextlib.contextmanager
def running(name: str, world: World, files: dict[str, dict[str, str]],
            workdir: Path) -> Iterator[Lab]:
    """A lab of ``world`` built from ``files``, firewall and IPSec on; removed on exit,
    whatever happens."""
    lab = Lab(name, world, files, workdir)
    try:
        lab.build()
        lab.configure(firewall=True, ipsec=True)
        yield lab
    finally:
        lab.close()
