"""overlay verify: the rules a node loaded (last refresh) against those it should carry."""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from nodes.models import Node
from overlays.checks import check_cluster
from overlays.selectors import load_snapshot
from overlays.snapshot import ClusterSnapshot
from overlays.verify import (
    DIFFERS,
    OK,
    UNKNOWN,
    PropertyDiff,
    desired_rules,
    verify_cluster,
    verify_node,
)

CUSTOMERS = ("-e vxlan -p vxlan/listen_ip=0.0.0.0,vxlan/listen_port=4790 -s files "
             "-p files/config=/opt/custom/networking/customers_overlay.json -p mtu=1380")
# The same rule: other property order, repeated -p instead of a comma list.
CUSTOMERS_REORDERED = ("-s files -p mtu=1380 -p files/config=/opt/custom/networking/"
                       "customers_overlay.json -e vxlan -p vxlan/listen_port=4790 "
                       "-p vxlan/listen_ip=0.0.0.0")


def with_loaded(cluster: ClusterSnapshot, hostname: str,
                loaded: dict[str, str] | None) -> ClusterSnapshot:
    pairs = None if loaded is None else tuple(sorted(loaded.items()))
    nodes = tuple(replace(n, loaded_rules=pairs) if n.hostname == hostname else n
                  for n in cluster.nodes)
    return replace(cluster, nodes=nodes)


# ------------------------------------------------------------------- pure function


def test_order_and_comma_joining_do_not_matter():
    result = verify_node("cn01", {"customers": CUSTOMERS}, {"customers": CUSTOMERS_REORDERED})
    assert result.state == OK and not result.differs


def test_missing_extra_and_different_rules_are_named():
    result = verify_node(
        "cn01",
        {"customers": CUSTOMERS, "lab": CUSTOMERS.replace("customers", "lab")},
        {"customers": CUSTOMERS.replace("listen_port=4790", "listen_port=4791"),
         "old": CUSTOMERS.replace("customers", "old")},
    )
    assert result.state == DIFFERS
    assert result.missing == ("lab",) and result.extra == ("old",)
    (diff,) = result.different
    assert diff.rule == "customers"
    assert diff.properties == (PropertyDiff("vxlan/listen_port", "4790", "4791"),)
    assert "vxlan/listen_port 4791 loaded, 4790 expected" in result.summary()
    assert "missing rule(s) lab" in result.summary() and "extra rule(s) old" in result.summary()


def test_an_absent_port_is_the_platform_default():
    default = CUSTOMERS.replace("4790", "4789")
    assert verify_node("cn01", {"c": default},
                       {"c": default.replace(",vxlan/listen_port=4789", "")}).state == OK


def test_an_unreadable_loaded_string_is_different_with_the_reason():
    result = verify_node("cn01", {"customers": CUSTOMERS}, {"customers": "-e vxlan"})
    (diff,) = result.different
    assert result.differs and diff.error and "lacks -s files" in diff.error


def test_a_node_never_refreshed_is_unknown_not_all_missing():
    result = verify_node("cn01", {"customers": CUSTOMERS}, None)
    assert result.state == UNKNOWN and result.missing == () and not result.differs


def test_a_refreshed_node_with_nothing_loaded_misses_everything():
    result = verify_node("cn01", {"customers": CUSTOMERS}, {})
    assert result.missing == ("customers",)


def test_verify_cluster_uses_what_usbkey_config_gives_the_node(cluster):
    cn01 = cluster.nodes_by_hostname["cn01"]
    desired = desired_rules(cluster, cn01)
    assert set(desired) == {"adminoverlay", "customers", "lab"}
    snapshot = with_loaded(cluster, "cn01", desired)
    assert [r.state for r in verify_cluster(snapshot, ["cn01"])] == [OK]
    assert {r.state for r in verify_cluster(cluster)} == {UNKNOWN}


# ------------------------------------------------------------------- check finding


def test_check_warns_about_a_node_that_loaded_other_rules(cluster):
    cn01 = cluster.nodes_by_hostname["cn01"]
    loaded = desired_rules(cluster, cn01)
    del loaded["lab"]
    report = check_cluster(with_loaded(cluster, "cn01", loaded))
    (finding,) = [f for f in report.findings if f.code == "loaded-rules-differ"]
    assert (finding.severity, finding.node) == ("warning", "cn01")
    assert "missing rule(s) lab" in finding.message
    assert "refresh the node; if it persists, run overlay update" in finding.message.lower()
    assert "loaded-rules-differ" not in check_cluster(cluster).codes()  # unknown: no finding


# ------------------------------------------------------------------- command line


@pytest.mark.django_db
def test_overlay_verify_reports_differences_and_exits_1(demo_cluster):
    snapshot = load_snapshot()
    for node in snapshot.nodes:
        Node.objects.filter(pk=node.id).update(
            loaded_overlay_rules=desired_rules(snapshot, node), refreshed_at=timezone.now())
    out = io.StringIO()
    call_command("overlay", "verify", stdout=out)
    assert out.getvalue().count("as desired") == len(snapshot.nodes)

    node = Node.objects.get(hostname="cn21.brno")
    loaded = dict(node.loaded_overlay_rules)
    name = sorted(loaded)[0]
    loaded["stale"] = loaded[name]
    loaded[name] = re.sub(r"mtu=\d+", "mtu=1234", loaded[name])
    Node.objects.filter(pk=node.pk).update(loaded_overlay_rules=loaded)
    Node.objects.filter(hostname="cn01.prague").update(refreshed_at=None)

    out = io.StringIO()
    with pytest.raises(CommandError, match="differ on cn21.brno"):
        call_command("overlay", "verify", "cn21.brno", "cn01.prague", "--json", stdout=out)
    data = {item["node"]: item for item in json.loads(out.getvalue())["nodes"]}
    assert data["cn01.prague"]["state"] == "unknown"
    assert data["cn21.brno"]["extra"] == ["stale"]
    (diff,) = data["cn21.brno"]["different"]
    assert diff["rule"] == name and [p["property"] for p in diff["properties"]] == ["mtu"]
    assert diff["properties"][0]["loaded"] == "1234"

    with pytest.raises(CommandError, match="No node named nope"):
        call_command("overlay", "verify", "nope", stdout=io.StringIO())
