"""The data-plane proofs, as functions of a running lab that list what went wrong.

Each returns human-readable failures (empty when the proof holds), so a test
shows every broken pair at once, and the change scenarios replay the same
proofs on a lab built from newly rendered files.
"""

from __future__ import annotations

import itertools

from tests.dataplane.lab import Endpoint, Lab

FLOOD = 40  # packets per underlay-path measurement


def where(lab: Lab, a: Endpoint, b: Endpoint) -> str:
    if a.host == b.host:
        return "same node"
    pdc_a, pdc_b = lab.world.node(a.host).pdc, lab.world.node(b.host).pdc
    return f"same PDC {pdc_a}" if pdc_a == pdc_b else f"{pdc_a} -> {pdc_b}"


def crosses_pdcs(lab: Lab, a: Endpoint, b: Endpoint) -> bool:
    return lab.world.node(a.host).pdc != lab.world.node(b.host).pdc


def network_members(lab: Lab) -> tuple[dict[str, list[Endpoint]], list[str]]:
    """Endpoints of each network (VMs by network, node vNICs by rule); VMs left without a link."""
    members: dict[str, list[Endpoint]] = {}
    for endpoint in lab.endpoints.values():
        members.setdefault(endpoint.network, []).append(endpoint)
    missing = [f"{vm.name} on {vm.node}: no link ({lab.unattached.get(vm.name, 'not built')})"
               for vm in lab.world.vms if vm.name not in lab.endpoints]
    return members, missing


def same_network_pairs(lab: Lab) -> list[tuple[Endpoint, Endpoint]]:
    members, _ = network_members(lab)
    return [(a, b) for group in members.values() for a, b in itertools.permutations(group, 2)]


def reach_failures(lab: Lab, pairs: list[tuple[Endpoint, Endpoint]]) -> list[str]:
    """Pairs (both ways are listed separately) that do not answer pings, IPv4 and IPv6."""
    probes = [(a, b, b.ip) for a, b in pairs]
    probes += [(a, b, b.ip6) for a, b in pairs if a.ip6 and b.ip6]
    answered = lab.ping([(a, address) for a, _, address in probes])
    return [f"{a.name} -> {b.name} {address} ({where(lab, a, b)}) unanswered"
            for (a, b, address), ok in zip(probes, answered, strict=True) if not ok]


def vnic_reach_failures(lab: Lab) -> list[str]:
    """Every pair of vNICs on one network, both ways; VMs the lab could not attach."""
    _, missing = network_members(lab)
    return missing + reach_failures(lab, same_network_pairs(lab))


def admin_overlay_failures(lab: Lab, vnic: str = "adminoverlay_0") -> list[str]:
    """Every node's admin-overlay vNIC reaches every other one."""
    vnics = {e.host: e for e in lab.endpoints.values() if e.name == f"{vnic}@{e.host}"}
    missing = [f"{node.hostname} has no {vnic} in its /usbkey/config"
               for node in lab.world.nodes if node.hostname not in vnics]
    return missing + reach_failures(lab, list(itertools.permutations(vnics.values(), 2)))


def path_samples(lab: Lab) -> list[tuple[Endpoint, Endpoint]]:
    """Pairs on different nodes, one per network and kind of path, and one per PDC pair."""
    chosen: dict[tuple[str, str], tuple[Endpoint, Endpoint]] = {}
    for a, b in same_network_pairs(lab):
        if a.host == b.host:
            continue
        pdcs = (lab.world.node(a.host).pdc, lab.world.node(b.host).pdc)
        kind = "same" if pdcs[0] == pdcs[1] else "cross"
        chosen.setdefault((a.network, kind), (a, b))
        chosen.setdefault(pdcs, (a, b))
    return list(chosen.values())


def path_failures(lab: Lab, pairs: list[tuple[Endpoint, Endpoint]]) -> list[str]:
    """Traffic within a PDC leaves on admin0, across PDCs on external0 (interface counters).

    Pairs are measured in rounds in which no node takes part twice, so that each
    node's counters only see its own pair's requests.
    """
    failures, pending = [], list(pairs)
    while pending:
        busy: set[str] = set()
        batch, later = [], []
        for a, b in pending:
            if {a.host, b.host} & busy:
                later.append((a, b))
            else:
                batch.append((a, b))
                busy |= {a.host, b.host}
        pending = later
        before = {a.host: lab.link_counters(a.host) for a, _ in batch}
        lab.flood([(a, b.ip) for a, b in batch], FLOOD)
        for a, b in batch:
            after = lab.link_counters(a.host)
            sent = {link: after[link] - before[a.host].get(link, 0) for link in after}
            link, other = (("external0", "admin0") if crosses_pdcs(lab, a, b)
                           else ("admin0", "external0"))
            if sent.get(link, 0) < FLOOD or sent.get(other, 0) >= FLOOD // 4:
                failures.append(f"{a.name} on {a.host} -> {b.name} on {b.host} "
                                f"({where(lab, a, b)}): expected {FLOOD}+ packets out of "
                                f"{link}, sent {sent}")
    return failures


def isolation_failures(lab: Lab) -> list[str]:
    """No VM reaches a VM of another network (other VXLAN id, or same id and other VLAN)
    or another tenant, even sending straight to its MAC."""
    vms = [lab.endpoints[vm.name] for vm in lab.world.vms if vm.name in lab.endpoints]
    pairs = [(a, b) for a, b in itertools.combinations(vms, 2) if a.network != b.network]
    with lab.forced_paths(pairs):
        probes = [(a, b) for pair in pairs for a, b in (pair, pair[::-1])]
        answered = lab.ping([(a, b.ip) for a, b in probes], count=2, wait=1)
    networks = lab.world.networks
    return [f"{a.name} ({a.network}, tenant {networks[a.network].vdc}) reached {b.name} "
            f"({b.network}, tenant {networks[b.network].vdc})"
            for (a, b), ok in zip(probes, answered, strict=True) if ok]


def cross_pdc_pairs(lab: Lab) -> list[tuple[Endpoint, Endpoint]]:
    return [(a, b) for a, b in same_network_pairs(lab) if crosses_pdcs(lab, a, b)]


def same_pdc_pairs(lab: Lab) -> list[tuple[Endpoint, Endpoint]]:
    return [(a, b) for a, b in same_network_pairs(lab)
            if a.host != b.host and not crosses_pdcs(lab, a, b)]


def encrypted_failures(lab: Lab) -> list[str]:
    """Cross-PDC overlay traffic flows, and the internet bridge sees ESP and no VXLAN."""
    pairs = cross_pdc_pairs(lab)
    before = lab.wire_counters()
    failures = reach_failures(lab, pairs)
    after = lab.wire_counters()
    if not pairs:
        return ["no pair of vNICs across PDCs to test"]
    if after["vxlan"] != before["vxlan"]:
        failures.append(f"{after['vxlan'] - before['vxlan']} plaintext VXLAN packets "
                        "crossed the internet bridge")
    if after["esp"] - before["esp"] < len(pairs):
        failures.append(f"only {after['esp'] - before['esp']} ESP packets crossed the "
                        f"internet bridge for {len(pairs)} cross-PDC pings")
    return failures
