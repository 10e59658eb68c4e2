"""The administration file with the management server's sources: a reviewed golden copy, read
back line by line, and the pure choice of which sources count (configured, else learnt)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from overlays.generators import render_ipf_administration
from overlays.generators.ipf import management_sources
from overlays.snapshot import FirewallView
from tests.generators.parsers import IPF_RULE, content_lines
from tests.generators.scenario import build_scenario

GOLDEN = Path(__file__).parent / "golden" / "cn07-ipf.conf-090-administration"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


@pytest.fixture
def managed():
    """The generators' reviewed scenario, with the management server at two sources, one of
    them also an administrator source (listed once, as the management server's)."""
    cluster = build_scenario()
    firewall = FirewallView(enabled=True, allowed_sources=("192.0.2.0/24", "10.0.0.5"),
                            management_sources=("10.0.0.5", "198.18.0.0/30"))
    return replace(cluster, firewall=firewall)


def test_the_administration_file_with_management_sources_matches_its_golden_copy(managed):
    text = render_ipf_administration(managed, managed.nodes_by_hostname["cn07"])
    if UPDATE:
        GOLDEN.write_bytes(text.encode("ascii"))
    assert GOLDEN.read_bytes() == text.encode("ascii")


def test_the_administration_file_reads_back_management_first(managed):
    text = GOLDEN.read_text()
    lines = content_lines(text)
    assert all(IPF_RULE.match(line) for line in lines)
    sources = [line.split(" from ")[1].split(" to ")[0] for line in lines
               if line.startswith("pass in")]
    assert sources[:2] == ["10.0.0.5", "198.18.0.0/30"]  # the management server first
    assert sources.count("10.0.0.5") == 1
    assert "192.0.2.0/24" in sources
    assert lines[-2:] == ["pass out quick on external0 all keep state",
                          "block in quick on external0 all"]
    assert "# first the management server (10.0.0.5, 198.18.0.0/30): never locked out" in text


def test_without_management_sources_the_file_is_as_before(managed):
    """The existing golden files stay valid: no sources, no extra line."""
    plain = replace(managed, firewall=replace(managed.firewall, management_sources=()))
    assert "management server" not in render_ipf_administration(
        plain, plain.nodes_by_hostname["cn07"])


def test_configured_sources_win_over_learnt_ones():
    assert management_sources(["192.0.2.7"], ["10.0.0.5"]) == ("192.0.2.7",)


def test_learnt_sources_are_ipv4_unique_and_ordered():
    learnt = ["10.0.0.5", None, "::ffff:10.0.0.4", "10.0.0.5", "2001:db8::1", "9.9.9.9"]
    assert management_sources([], learnt) == ("9.9.9.9", "10.0.0.4", "10.0.0.5")
