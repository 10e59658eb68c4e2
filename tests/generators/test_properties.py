"""Properties over random clusters: nodes in 1-3 PDCs, rules, vNICs, keys."""

from __future__ import annotations

import json
import random
from itertools import combinations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from overlays.generators import apply_managed_keys, read_managed_keys, render_node
from overlays.generators.ipsec import required_key_pairs
from overlays.snapshot import ClusterSnapshot, VnicView, pair_key

from .parsers import parse_ike_config, parse_ike_preshared, parse_ipsec_policy
from .scenario import make_node, make_rule

PDCS = ("prague", "brno", "ostrava")
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def spelled(mac_bytes: bytes, sloppy: bool) -> str:
    """A MAC as the database might hold it: padded lower case, or sysinfo-style."""
    if sloppy:
        return ":".join(f"{b:X}" for b in mac_bytes)
    return ":".join(f"{b:02x}" for b in mac_bytes)


def canonical(mac: str) -> str:
    return ":".join(part.zfill(2) for part in mac.lower().split(":"))


@st.composite
def clusters(draw, *, complete: bool = False) -> ClusterSnapshot:
    """A random cluster; ``complete`` gives every node an external IP and every pair a key."""
    count = draw(st.integers(1, 8))
    pdc_count = draw(st.integers(1, 3))
    nodes = []
    for i in range(count):
        pdc_index = draw(st.integers(0, pdc_count - 1))
        has_external = complete or draw(st.booleans())
        has_admin = draw(st.integers(0, 9)) > 0
        nodes.append(
            make_node(
                i + 1,
                f"cn{i + 1:02d}",
                PDCS[pdc_index],
                f"10.{pdc_index}.0.{i + 10}" if has_admin else None,
                f"203.0.113.{i + 10}" if has_external else None,
            )
        )
    hostnames = [n.hostname for n in nodes]
    rules = []
    for i in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            carriers = None
        else:
            carriers = frozenset(draw(st.lists(st.sampled_from(hostnames), max_size=count)))
            carriers |= {"cn99"}  # a node not installed yet
        listen_ip = draw(st.sampled_from(["0.0.0.0"] * 4 + ["10.0.0.10"]))
        rules.append(
            make_rule(i + 1, f"rule_{'abc'[i]}", 4790 + i, nodes=carriers, listen_ip=listen_ip)
        )
    vnics = []
    if rules:
        macs = draw(st.lists(st.binary(min_size=6, max_size=6), unique=True, max_size=30))
        for n, mac in enumerate(macs):
            ip6 = f"fd00::{n}" if draw(st.booleans()) else None
            vnics.append(
                VnicView(
                    spelled(mac, draw(st.booleans())),
                    f"192.168.{n // 200}.{n % 200 + 10}",
                    ip6,
                    draw(st.sampled_from(nodes)).id,
                    draw(st.sampled_from(rules)).id,
                    f"vm{n}",
                )
            )
    keys = {}
    for a, b in combinations(nodes, 2):
        if a.pdc != b.pdc and (complete or draw(st.integers(0, 4)) > 0):
            keys[pair_key(a.id, b.id)] = f"{a.id:02x}{b.id:02x}" * 16
    return ClusterSnapshot(
        nodes=tuple(nodes), rules=tuple(rules), vnics=tuple(vnics), ipsec_keys=keys
    )


def arp_tables(snapshot, node):
    rule_by_path = {r.arp_file: r for r in snapshot.rules}
    return {
        rule_by_path[f.path]: json.loads(f.content)
        for f in render_node(snapshot, node).files
        if f.reload == "varpd"
    }


@SETTINGS
@given(clusters())
def test_arp_tables_hold_exactly_the_reachable_vnics_of_other_carrying_nodes(snapshot):
    nodes = snapshot.nodes_by_id
    for node in snapshot.nodes:
        tables = arp_tables(snapshot, node)
        assert set(tables) == set(snapshot.rules_for(node))
        for rule, entries in tables.items():
            expected = {}
            for vnic in snapshot.vnics_by_rule.get(rule.id, ()):
                host = nodes[vnic.node_id]
                if host.id == node.id or not rule.carries(host.hostname):
                    continue
                if rule.listen_ip != "0.0.0.0":
                    ip = rule.listen_ip
                elif host.pdc == node.pdc:
                    ip = host.admin_ip
                else:
                    ip = host.external_ip
                if ip:
                    expected[canonical(vnic.mac)] = ip
            assert {mac: e["ip"] for mac, e in entries.items()} == expected
            own = {canonical(v.mac) for v in snapshot.vnics if v.node_id == node.id}
            assert not own & set(entries)
            assert all(type(e["port"]) is int and e["port"] == rule.port for e in entries.values())


@SETTINGS
@given(clusters(complete=True))
def test_every_cross_pdc_pair_appears_once_on_each_side(snapshot):
    cross = {pair_key(a.id, b.id) for a, b in combinations(snapshot.nodes, 2) if a.pdc != b.pdc}
    assert required_key_pairs(snapshot) == cross
    by_external = {n.external_ip: n for n in snapshot.nodes}
    seen: dict[tuple[int, int], list[str]] = {pair: [] for pair in cross}
    keys: dict[tuple[int, int], set[str]] = {pair: set() for pair in cross}
    for node in snapshot.nodes:
        files = {f.path.rsplit("/", 1)[1]: f.content for f in render_node(snapshot, node).files}
        _, rules = parse_ike_config(files["config"])
        blocks = parse_ike_preshared(files["ike.preshared"])
        _, policy = parse_ipsec_policy(files["ipsecinit.conf"])
        assert len({r["label"] for r in rules}) == len(rules)
        remotes = [r["remote_addr"] for r in rules]
        assert remotes == [b["remoteid"] for b in blocks] == [raddr for _, raddr in policy]
        for remote, block in zip(remotes, blocks, strict=True):
            pair = pair_key(node.id, by_external[remote].id)
            seen[pair].append(node.hostname)
            keys[pair].add(block["key"])
    for pair, sides in seen.items():
        assert sorted(sides) == sorted(snapshot.nodes_by_id[i].hostname for i in pair)
        assert len(keys[pair]) == 1


@SETTINGS
@given(clusters())
def test_the_three_ipsec_files_always_agree(snapshot):
    for node in snapshot.nodes:
        files = {f.path.rsplit("/", 1)[1]: f.content for f in render_node(snapshot, node).files}
        _, rules = parse_ike_config(files["config"])
        blocks = parse_ike_preshared(files["ike.preshared"])
        _, policy = parse_ipsec_policy(files["ipsecinit.conf"])
        remotes = [r["remote_addr"] for r in rules]
        assert remotes == [b["remoteid"] for b in blocks] == [raddr for _, raddr in policy]


@SETTINGS
@given(clusters(), st.randoms(use_true_random=False))
def test_output_is_deterministic_whatever_the_input_order(snapshot, rnd: random.Random):
    def shuffled(items):
        items = list(items)
        rnd.shuffle(items)
        return tuple(items)

    reordered = ClusterSnapshot(
        nodes=shuffled(snapshot.nodes),
        rules=shuffled(snapshot.rules),
        vnics=shuffled(snapshot.vnics),
        ipsec_keys=dict(shuffled(snapshot.ipsec_keys.items())),
    )
    for node in snapshot.nodes:
        first = render_node(snapshot, node)
        assert render_node(snapshot, node) == first
        assert render_node(reordered, node) == first


LINES = st.one_of(
    st.sampled_from(["", "# comment", "  indented=1", "admin_ip=10.0.0.1", "x='$y'"]),
    st.builds(
        lambda k, v: f"{k}={v}",
        st.sampled_from(["overlay_rule_a", "overlay_rule_b", "adminoverlay_0_ip", "other"]),
        st.sampled_from(['"1"', "'2'", "3", ""]),
    ),
)
MANAGED = st.dictionaries(
    st.sampled_from(
        ["overlay_rule_a", "overlay_rule_c", "adminoverlay_0_ip", "adminoverlay_0_mac"]
    ),
    st.sampled_from(["v1", "-e vxlan -p mtu=1400", "10.44.44.11"]),
)


@SETTINGS
@given(st.lists(LINES, max_size=12), st.sampled_from(["\n", "\r\n"]), st.booleans(), MANAGED)
def test_apply_managed_keys_is_idempotent_and_keeps_other_lines(lines, eol, final_eol, managed):
    text = eol.join(lines) + (eol if final_eol and lines else "")
    once = apply_managed_keys(text, managed)
    assert apply_managed_keys(once, managed) == once
    assert read_managed_keys(once) == dict(managed)

    def unmanaged(t):
        return [
            line.rstrip("\r\n")
            for line in t.splitlines(keepends=True)
            if not line.lstrip().startswith(("overlay_rule_", "adminoverlay_0_"))
        ]

    assert unmanaged(once) == unmanaged(text)
