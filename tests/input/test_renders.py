"""What is accepted renders: the import checks it, and the generators never let an ARP table
replace another managed file, whatever is in the database."""

from __future__ import annotations

import pytest

from nodes.models import Node
from overlays.models import OverlayRule
from overlays.rulestring import RuleStringError
from overlays.selectors import render_node_files
from overlays.statefile import importer
from tests.input.helpers import import_problems

pytestmark = pytest.mark.django_db


def test_the_import_refuses_a_state_whose_files_cannot_be_rendered(demo_cluster, demo_state,
                                                                     unchanged, monkeypatch):
    """The safety net behind the validators: were one to let a bad value through, the import
    would still refuse the file instead of leaving nodes that cannot be synced."""

    def broken(snapshot, node, paths, **kwargs):
        raise RuleStringError("arp_file", "files/config 'x' is not renderable.")

    monkeypatch.setattr(importer, "render_node", broken)
    demo_state["nodes"][0]["pdc"] = "brno"

    problems = import_problems(demo_state)

    assert set(problems) == {"$"}
    assert problems["$"][0] == ("the files of node cn01.prague cannot be rendered from this "
                                "state: files/config 'x' is not renderable.")
    assert len(problems["$"]) == Node.objects.count()
    unchanged()


def test_the_import_renders_the_demo_state(demo_cluster, demo_state):
    assert importer.render_problems() == []


@pytest.mark.parametrize("path", ["/usbkey/config", "/opt/custom/etc/ipsec/ike.preshared",
                                  "/opt/custom/etc/ipf.d/ipf.conf-090-administration"])
def test_an_arp_table_never_replaces_a_managed_file(demo_cluster, path):
    """A rule stored before the model checked the directory (or written around the models)
    fails to render, loudly, rather than turning /usbkey/config into "{}"."""
    OverlayRule.objects.filter(name="customers").update(arp_file=path)

    with pytest.raises(RuleStringError, match=f"files/config {path} of rule customers is the "
                                              "node's .* file; an ARP table cannot replace it"):
        render_node_files("cn01.prague")
