"""The IPSec mesh between PDCs: IKE config, pre-shared keys, policy (DESIGN 2.2-2.4).

Every pair of nodes in different PDCs talks over ESP between their external
IPs, keyed by a secret unique to the pair. The three files of a node list
the same peers, chosen once by ``ipsec_peers``: each node in another PDC, by
hostname, provided both ends have an external IP and the pair has a key.
Peers left out for lack of either are reported by ``check_cluster``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import combinations

from overlays.generators.common import header_lines, memoized, text_from_lines
from overlays.snapshot import ClusterSnapshot, NodeView, pair_key

# Phase 1: pre-shared key, MODP group 5, SHA-256, AES (valid groups: 1-5, 14-26).
IKE_P1_XFORM = "p1_xform { auth_method preshared oakley_group 5 auth_alg sha256 encr_alg aes }"
IKE_GLOBALS = (
    "p1_lifetime_secs 900",
    "p2_lifetime_secs 300",
    "p2_softlife_secs 150",
    IKE_P1_XFORM,
    "p2_pfs 2",
)
IKE_RULE_P2_PFS = 5  # valid: 0, 1, 2, 5, 14, 15, 16
IPSEC_ALGORITHMS = "encr_algs aes encr_auth_algs sha512 sa shared"

_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_HEX_KEY = re.compile(r"(?:[0-9a-fA-F]{2})+")  # fullmatch: "$" passes a final newline


def sanitize_label_part(text: str) -> str:
    """Hostname as it may appear in an IKE label or a comment: letters, digits, ``._-``."""
    return _LABEL_UNSAFE.sub("_", text) or "_"


def is_valid_key(key: str | None) -> bool:
    """A pre-shared key must be a non-empty, even-length hex string."""
    return bool(key) and _HEX_KEY.fullmatch(key) is not None


def cross_pdc_pairs(snapshot: ClusterSnapshot) -> set[tuple[int, int]]:
    """``pair_key`` of every two nodes whose PDC names differ."""
    return {pair_key(a.id, b.id) for a, b in combinations(snapshot.nodes, 2) if a.pdc != b.pdc}


def required_key_pairs(snapshot: ClusterSnapshot) -> set[tuple[int, int]]:
    """The node pairs that need a pre-shared key: every pair across PDCs.

    The key service creates what is missing and may drop keys of other pairs.
    """
    return cross_pdc_pairs(snapshot)


@dataclass(frozen=True)
class IpsecPeer:
    """One remote-PDC peer of a node, with everything the three files need."""

    node: NodeView
    label: str
    local_addr: str
    remote_addr: str
    key: str


def _nodes_by_hostname(snapshot: ClusterSnapshot) -> tuple[tuple[NodeView, str], ...]:
    """Every node with its label-safe hostname, by hostname."""
    ordered = sorted(snapshot.nodes, key=lambda n: (n.hostname, n.id))
    return tuple((n, sanitize_label_part(n.hostname)) for n in ordered)


def _usable_key(snapshot: ClusterSnapshot, pair: tuple[int, int]) -> str | None:
    """The pair's key lower-cased, None when it has none or an invalid one (reported by
    ``check_cluster``). Looked up pair by pair: the snapshot may decrypt keys on first
    use, and a node needs only its own pairs' keys, not the cluster's."""
    key = snapshot.ipsec_keys.get(pair)
    return key.lower() if key is not None and is_valid_key(key) else None


def ipsec_peers(snapshot: ClusterSnapshot, node: NodeView) -> tuple[IpsecPeer, ...]:
    """The peers ``node`` has an IPSec rule for, by hostname.

    A node in another PDC is left out when either end lacks an external IP or
    the pair has no valid key; the three files stay consistent with each other.
    """
    if not node.external_ip:
        return ()
    by_hostname = memoized(snapshot, "ipsec-nodes", lambda: _nodes_by_hostname(snapshot))
    peers: list[IpsecPeer] = []
    used_labels: set[str] = set()
    own = sanitize_label_part(node.hostname)
    for other, other_label in by_hostname:
        if other.pdc == node.pdc or other.id == node.id:
            continue
        if not other.external_ip:
            continue
        key = _usable_key(snapshot, pair_key(node.id, other.id))
        if key is None:
            continue
        label = f"{own}-{other_label}"
        if label in used_labels:  # only when sanitising made two hostnames alike
            label = f"{label}-{other.id}"
        used_labels.add(label)
        peers.append(
            IpsecPeer(
                node=other,
                label=label,
                local_addr=node.external_ip,
                remote_addr=other.external_ip,
                key=key,
            )
        )
    return tuple(peers)


def _peers(
    snapshot: ClusterSnapshot, node: NodeView, peers: tuple[IpsecPeer, ...] | None
) -> tuple[IpsecPeer, ...]:
    return ipsec_peers(snapshot, node) if peers is None else peers


def render_ike_config(
    snapshot: ClusterSnapshot, node: NodeView, *, peers: tuple[IpsecPeer, ...] | None = None
) -> str:
    """in.iked configuration: global lines, then one rule per remote-PDC peer."""
    lines = header_lines(
        f"IKE rules of {sanitize_label_part(node.hostname)}: one per peer node in another PDC."
    )
    lines.extend(IKE_GLOBALS)
    lines.extend(
        f'{{ label "{peer.label}" local_addr {peer.local_addr} remote_addr {peer.remote_addr} '
        f"{IKE_P1_XFORM} p2_pfs {IKE_RULE_P2_PFS} }}"
        for peer in _peers(snapshot, node, peers)
    )
    return text_from_lines(lines)


def render_ike_preshared(
    snapshot: ClusterSnapshot, node: NodeView, *, peers: tuple[IpsecPeer, ...] | None = None
) -> str:
    """in.iked pre-shared keys: one block per remote-PDC peer, the pair's key in hex."""
    lines = header_lines(
        f"Pre-shared keys of {sanitize_label_part(node.hostname)}: one per node pair."
    )
    for peer in _peers(snapshot, node, peers):
        lines.extend(
            (
                f"# {peer.label}",
                "{",
                "    localidtype IP",
                f"    localid {peer.local_addr}",
                "    remoteidtype IP",
                f"    remoteid {peer.remote_addr}",
                f"    key {peer.key}",
                "}",
            )
        )
    return text_from_lines(lines)


def render_ipsec_policy(
    snapshot: ClusterSnapshot, node: NodeView, *, peers: tuple[IpsecPeer, ...] | None = None
) -> str:
    """ipsecinit.conf: bypass on the admin address, then ESP to each remote-PDC peer."""
    lines = header_lines(
        f"IPSec policy of {sanitize_label_part(node.hostname)}: plain on the admin network,",
        "ESP between external addresses of nodes in different PDCs.",
    )
    if node.admin_ip:
        lines.append(f"{{ laddr {node.admin_ip} dir both }} bypass {{}}")
    lines.extend(
        f"{{ ulp udp laddr {peer.local_addr} raddr {peer.remote_addr} }} "
        f"ipsec {{ {IPSEC_ALGORITHMS} }}"
        for peer in _peers(snapshot, node, peers)
    )
    return text_from_lines(lines)
