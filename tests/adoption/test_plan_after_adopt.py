"""After adopting, the plan (``overlay plan``) shows only this application's headers, its
ordering and its formatting: every fact a node holds stays (issue 11, the promise).

The plan is read from the nodes (``distribution.preview``); then the nodes are synced and
each file the plan listed is compared, as facts, before and after.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from nodes.models import Node
from overlays.adoption import apply_adoption, plan_adoption, read_cluster
from overlays.adoption.parsers import parse_ike_preshared, parse_usbkey_config
from overlays.distribution.preview import CHANGES, preview_nodes
from overlays.distribution.run import run_sync
from overlays.models.management import management_sources
from tests.adoption.test_adopt_cluster import build_reference

pytestmark = pytest.mark.django_db(transaction=True)


def facts_of(path: str, text: str) -> object:
    """What a file means, leaving out comments, order and layout."""
    if path.endswith(".json"):
        return json.loads(text)
    if path == "/usbkey/config":
        found = parse_usbkey_config(text)
        return ({name: vars(rule.value) for name, rule in found.rules.items()},
                {key: value.value for key, value in found.admin.items()},
                [line for line in text.splitlines()
                 if not line.startswith(("overlay_rule_", "adminoverlay_0_"))])
    if path.endswith("ike.preshared"):
        return {peer: key.value for peer, key in parse_ike_preshared(text).items()}
    return Counter(line.strip() for line in text.splitlines()
                   if line.strip() and not line.lstrip().startswith("#"))


def changed_lines(diff: str) -> tuple[Counter, Counter]:
    """The removed and the added lines of a unified diff, comments and blanks left out."""
    removed, added = Counter(), Counter()
    for line in diff.splitlines():
        if line.startswith(("---", "+++")):
            continue
        body = line[1:].strip()
        if not body or body.startswith("#"):
            continue
        if line.startswith("-"):
            removed[body] += 1
        elif line.startswith("+"):
            added[body] += 1
    return removed, added


def test_after_adopting_the_plan_shows_only_headers_and_ordering(testnode_cluster,
                                                                 ssh_transport):
    ref = build_reference(testnode_cluster)
    apply_adoption(plan_adoption(read_cluster()), actor="test")
    nodes = list(Node.objects.order_by("hostname"))

    plan = {p.hostname: p for p in preview_nodes(nodes)}
    before = {}
    for hostname, preview in plan.items():
        assert preview.state == CHANGES, (hostname, preview.state, preview.message)
        for change in preview.files:
            assert change.action == "write", (hostname, change.path)
            assert change.key_changes == (), (hostname, change.path)
            if not change.path.endswith((".json", "/usbkey/config")):
                removed, added = changed_lines(change.diff)
                assert removed == added, (hostname, change.path, change.diff)
            before[hostname, change.path] = ref.nodes[hostname].path(change.path).read_text()

    for node in nodes:
        assert run_sync(node.pk, reason="after adoption").status == "done"
    # The one line a sync adds: the management server's own source, learnt at the sync
    # (the application always lets it in; the plan above could not know it yet).
    own = tuple(f" from {source} " for source in management_sources())
    for (hostname, path), text in before.items():
        after = ref.nodes[hostname].path(path).read_text()
        if path.endswith("ipf.conf-090-administration"):
            after = "\n".join(line for line in after.splitlines()
                               if not any(source in line for source in own))
        assert facts_of(path, after) == facts_of(path, text), (hostname, path)
    assert {path for _, path in before} >= {
        "/usbkey/config", "/opt/custom/etc/ipsec/ike.preshared",
        "/opt/custom/networking/customers_overlay.json"}
