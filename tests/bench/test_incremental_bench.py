"""The sync-path benchmark (``overlay_bench --sync``) runs end to end at a small size, and
what it measures costs what it touches: a full update and one vNIC change take a fixed
number of queries per node synced, not a snapshot load per node."""

import json
from io import StringIO

import pytest
from django.core.management import call_command

# Queries a node's sync may take: its row, its deployed hashes, its request (claim,
# consume), the recording transaction. A snapshot load per node (8 more) exceeds it.
PER_NODE = 20


def run_bench(**params: int) -> dict:
    out = StringIO()
    call_command("overlay_bench", "--json", "--sync",
                 *(f"--{k}={v}" for k, v in params.items()), stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture(scope="module")
def runs() -> tuple[dict, dict]:
    return (run_bench(nodes=6, pdcs=2, rules=2, vnics=60),
            run_bench(nodes=12, pdcs=3, rules=2, vnics=120))


def test_every_node_ends_in_sync_and_one_vnic_syncs_the_nodes_it_affects(runs):
    for result in runs:
        update, one = result["update"], result["incremental"]
        assert update["nodes_in_sync"] == result["nodes"]
        assert update["peak_rss_mb"] >= update["baseline_rss_mb"] > 0
        # Every rule is on every node: the new vNIC is in the tables of all the others.
        assert one["affected_nodes"] == result["nodes"] - 1
        assert one["results"] == ["ok"]
        assert one["nodes_in_sync_before"] == result["nodes"]
        assert (one["nodes_not_in_sync"], one["pending_requests"]) == (0, 0)
        assert one["seconds"] > 0


def test_queries_grow_by_a_fixed_amount_per_node_synced(runs):
    small, large = runs
    grown = large["nodes"] - small["nodes"]
    assert large["update"]["queries"] - small["update"]["queries"] <= PER_NODE * grown
    assert large["incremental"]["queries"] - small["incremental"]["queries"] <= \
        PER_NODE * grown
