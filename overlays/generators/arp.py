"""Virtual ARP tables for varpd's ``files`` plugin (DESIGN 2.1).

One JSON object per rule and node, keyed by MAC, one entry per line::

    {
      "02:08:20:aa:00:01": {"arp": "192.168.10.11", "ip": "10.0.0.12", "port": 4790},
      "02:08:20:aa:00:02": {"arp": "192.168.10.12", "ip": "198.51.100.21", "port": 4790}
    }

An empty table is ``{}``. Keys are sorted, strings are 7-bit ASCII, ``port``
is a JSON integer.

Speed: the text of an entry depends only on the rule and on whether the
reading node is in the same PDC as the node hosting the vNIC. So entries are
rendered once per rule (at most two variants per vNIC), arranged per sender
PDC in MAC order, and a node's table is a join of those fragments minus its
own. An ``ArpCache`` holds that work for one snapshot; ``arp_cache_for``
returns the shared one, so callers that render node after node of the same
snapshot pay for it once.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from operator import itemgetter

from core.validators import normalize_mac
from overlays.generators.common import memoized
from overlays.rulestring import DEFAULT_LISTEN_IP
from overlays.snapshot import ClusterSnapshot, NodeView, RuleView

_ENCODE = json.JSONEncoder(sort_keys=True, ensure_ascii=True).encode


def has_specific_listen_ip(rule: RuleView) -> bool:
    return bool(rule.listen_ip) and rule.listen_ip != DEFAULT_LISTEN_IP


def _underlay_addresses(rule: RuleView, destination: NodeView) -> tuple[str | None, str | None]:
    """(address for a sender in the destination's PDC, address for a sender elsewhere)."""
    if has_specific_listen_ip(rule):
        return rule.listen_ip, rule.listen_ip
    return destination.admin_ip or None, destination.external_ip or None


def underlay_address(rule: RuleView, sender_pdc: str, destination: NodeView) -> str | None:
    """The underlay IP a node in ``sender_pdc`` sends this rule's packets to, or None.

    The routing rule: a destination in the sender's PDC is reached on its
    admin IP, one in another PDC on its external IP. A rule with a specific
    ``listen_ip`` (not 0.0.0.0) always uses that IP, for every sender and
    destination: the rule string is the same on every node that carries it,
    so the rule is pinned to that one underlay address (only a node owning it
    can listen; ``check_cluster`` warns "listen-ip-pinned"). None when the
    destination lacks the address: its vNICs are left out and
    ``check_cluster`` reports why.
    """
    same, other = _underlay_addresses(rule, destination)
    return same if destination.pdc == sender_pdc else other


def _entry(mac: str, underlay_ip: str | None, port: int, arp: str | None, ndp: str | None) -> str:
    """``"mac": {...}``, encoded by json in one call; "" when there is no underlay IP."""
    if underlay_ip is None:
        return ""
    value: dict[str, str | int] = {"ip": underlay_ip, "port": port}
    if arp:
        value["arp"] = arp
    if ndp:
        value["ndp"] = ndp
    return _ENCODE({mac: value})[1:-1]  # drop the braces of the one-key object


@dataclass(frozen=True)
class _RuleEntries:
    """A rule's routable vNICs in MAC order, each rendered for both kinds of sender."""

    host_ids: tuple[int, ...]
    host_pdcs: tuple[str, ...]
    same_pdc: tuple[str, ...]  # entry text for a sender in the host's PDC ("" = unroutable)
    other_pdc: tuple[str, ...]  # entry text for a sender in any other PDC


@dataclass(frozen=True)
class _SenderTable:
    """What a sender in one PDC sees for one rule, before its own vNICs are removed."""

    fragments: tuple[str, ...]
    own_positions: Mapping[int, tuple[int, ...]]  # node id -> indexes of its own entries


class ArpCache:
    """Pre-rendered ARP entries of one snapshot (see the module docstring).

    Bound to the snapshot it was made for; using it with another raises
    ``ValueError``.
    """

    def __init__(self, snapshot: ClusterSnapshot) -> None:
        self._snapshot = weakref.ref(snapshot)
        self._entries: dict[int, _RuleEntries] = {}
        self._tables: dict[tuple[int, str], _SenderTable] = {}

    def check(self, snapshot: ClusterSnapshot) -> None:
        if self._snapshot() is not snapshot:
            raise ValueError("this ArpCache was built for another snapshot")

    def rule_entries(self, snapshot: ClusterSnapshot, rule: RuleView) -> _RuleEntries:
        self.check(snapshot)
        entries = self._entries.get(rule.id)
        if entries is None:
            entries = self._entries[rule.id] = _build_rule_entries(snapshot, rule)
        return entries

    def sender_table(
        self, snapshot: ClusterSnapshot, rule: RuleView, sender_pdc: str
    ) -> _SenderTable:
        key = (rule.id, sender_pdc)
        table = self._tables.get(key)
        if table is None:
            entries = self.rule_entries(snapshot, rule)
            table = self._tables[key] = _build_sender_table(entries, sender_pdc)
        else:
            self.check(snapshot)
        return table


def _build_rule_entries(snapshot: ClusterSnapshot, rule: RuleView) -> _RuleEntries:
    nodes = snapshot.nodes_by_id
    port = int(rule.port)
    rows: list[tuple[str, str, str, int, str, str, str]] = []
    for vnic in snapshot.vnics_by_rule.get(rule.id, ()):
        host = nodes.get(vnic.node_id)
        if host is None or not rule.carries(host.hostname):
            continue  # reported by check_cluster ("vnic-on-node-without-rule")
        mac = normalize_mac(vnic.mac)
        if mac is None:
            continue  # reported by check_cluster ("invalid-mac")
        same_ip, other_ip = _underlay_addresses(rule, host)
        same = _entry(mac, same_ip, port, vnic.ip, vnic.ip6)
        other = same if other_ip == same_ip else _entry(mac, other_ip, port, vnic.ip, vnic.ip6)
        rows.append((mac, host.hostname, vnic.owner, host.id, host.pdc, same, other))
    rows.sort(key=itemgetter(0, 1, 2))
    # One entry per MAC: a duplicate is a configuration error ("mac-collision"),
    # and the table must stay unambiguous, so the first in sort order wins.
    kept = [row for i, row in enumerate(rows) if i == 0 or row[0] != rows[i - 1][0]]
    return _RuleEntries(
        host_ids=tuple(row[3] for row in kept),
        host_pdcs=tuple(row[4] for row in kept),
        same_pdc=tuple(row[5] for row in kept),
        other_pdc=tuple(row[6] for row in kept),
    )


def _build_sender_table(entries: _RuleEntries, sender_pdc: str) -> _SenderTable:
    chosen = [
        same if pdc == sender_pdc else other
        for pdc, same, other in zip(
            entries.host_pdcs, entries.same_pdc, entries.other_pdc, strict=True
        )
    ]
    fragments: list[str] = []
    positions: dict[int, list[int]] = {}
    for host_id, text in zip(entries.host_ids, chosen, strict=True):
        if text:  # "" when the host has no address this sender can reach
            positions.setdefault(host_id, []).append(len(fragments))
            fragments.append(text)
    return _SenderTable(
        fragments=tuple(fragments),
        own_positions={node_id: tuple(idx) for node_id, idx in positions.items()},
    )


def arp_cache_for(snapshot: ClusterSnapshot) -> ArpCache:
    """The shared ``ArpCache`` of ``snapshot``; forgotten when the snapshot is."""
    return memoized(snapshot, "arp", lambda: ArpCache(snapshot))


def format_arp_table(fragments: list[str] | tuple[str, ...]) -> str:
    """Wrap entry fragments into the file text: one entry per line, ``{}`` when empty."""
    if not fragments:
        return "{}\n"
    pieces = list(fragments)
    # Brace the first and last pieces rather than the joined text: one copy, not two.
    pieces[0] = "{\n  " + pieces[0]
    pieces[-1] = pieces[-1] + "\n}\n"
    return ",\n  ".join(pieces)


def render_arp_table(
    snapshot: ClusterSnapshot,
    node: NodeView,
    rule: RuleView,
    *,
    cache: ArpCache | None = None,
) -> str:
    """The virtual ARP table ``node`` needs for ``rule``.

    Every vNIC of the rule hosted on another node that carries the rule and
    that ``node`` can reach; never ``node``'s own vNICs.
    """
    if cache is None:
        cache = arp_cache_for(snapshot)
    table = cache.sender_table(snapshot, rule, node.pdc)
    own = table.own_positions.get(node.id, ())
    if not own:
        return format_arp_table(table.fragments)
    selected: list[str] = []
    start = 0
    for index in own:
        selected.extend(table.fragments[start:index])
        start = index + 1
    selected.extend(table.fragments[start:])
    return format_arp_table(selected)
