"""The requirements report as a page: every finding of ``overlay check`` with its severity
and what to do, and each rule's MTU against every path its packets take.

The findings and their sentences are ``overlays.checks``'s own; this page adds a short
instruction per finding code, and the per-path MTU table (``overlays.mtu``) of each rule,
marking the paths the rule really uses (IPSec paths only when its nodes span PDCs, VLAN
paths only when one of its networks is tagged).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from overlays import checks, mtu
from overlays.pages.access import operator_required
from overlays.selectors import load_snapshot
from overlays.snapshot import ClusterSnapshot, RuleView

# What to do about each finding, in a few words (the finding's own sentence says why).
WHAT_TO_DO = {
    "missing-pdc": "Set the node's 'Datacenter Name' (sysinfo), then refresh it.",
    "missing-external-tag": "Add the 'external' NIC tag to the node's internet-facing NIC.",
    "missing-external-ip": "Configure a public IPv4 on external0 and record it on the node.",
    "external-ip-not-public": "Use an internet-routable IPv4 as the node's external IP.",
    "default-route-not-external": "Move the node's default route to external0.",
    "admin-overlay-missing": "Initialise the admin overlay (overlay adminoverlay init).",
    "pdc-shares-admin-subnet": "Give nodes on one admin network the same PDC name.",
    "pdc-split-admin-subnet": "Give nodes that cannot reach each other different PDC names.",
    "missing-admin-ip": "Record the node's admin IP, or give it a PDC of its own.",
    "port-collision": "Give each overlay rule its own UDP port.",
    "arp-file-collision": "Give each overlay rule its own ARP table file.",
    "invalid-rule": "Fix the rule; its nodes cannot be synchronised until then.",
    "mtu-exceeds-ipsec-path": "Lower the rule's MTU to the IPSec limit in the table below.",
    "listen-ip-pinned": "Set the rule's listen IP to 0.0.0.0 unless one address is meant.",
    "admin-overlay-rule-missing": "Recreate the admin overlay's rule.",
    "admin-overlay-invalid-subnet": "Set the admin overlay subnet in CIDR form.",
    "admin-overlay-missing-node": "Give the node an admin overlay address on the admin rule.",
    "admin-overlay-address-outside-subnet": "Assign the node an address from the subnet.",
    "admin-overlay-ip-collision": "Give each node its own admin overlay address.",
    "vnic-unknown-rule": "Move the vNIC's network to an existing rule.",
    "invalid-mac": "Correct the vNIC's MAC address.",
    "vnic-on-node-without-rule": "Add the node to the rule's node list, or move the VM.",
    "mac-collision": "Give each vNIC on the rule its own MAC address.",
    "missing-ipsec-key": "Create the missing pair keys (IPSec keys: reconcile).",
    "invalid-ipsec-key": "Rotate the pair's IPSec key.",
    "invalid-allowed-source": "Correct the firewall source (CIDR, e.g. 198.51.100.0/24).",
    "loaded-rules-differ": "Refresh the node; if it persists, sync it.",
}
UNDERLAYS = (1500, 9000)


@dataclass(frozen=True)
class PathLimit:
    name: str
    limit: int
    used: bool  # the rule's packets take this path
    exceeded: bool


@dataclass(frozen=True)
class RuleMtu:
    rule: RuleView
    pdcs: tuple[str, ...]
    tagged: bool
    paths: tuple[PathLimit, ...]

    @property
    def largest_safe(self) -> int:
        """The largest MTU that fragments on none of the paths the rule uses."""
        return min(p.limit for p in self.paths if p.used)

    @property
    def problem(self) -> bool:
        return any(p.used and p.exceeded for p in self.paths)


def rule_mtus(snapshot: ClusterSnapshot, underlay: int = mtu.DEFAULT_UNDERLAY_MTU
              ) -> list[RuleMtu]:
    """Each rule's MTU against the four paths, from the snapshot (no query)."""
    rows = []
    admin = snapshot.admin_overlay
    for rule in sorted(snapshot.rules, key=lambda r: r.name):
        pdcs = tuple(sorted({n.pdc for n in snapshot.nodes if rule.carries(n.hostname)}))
        vlan_ids = [net.vlan_id for net in snapshot.networks if net.rule_id == rule.id]
        if admin is not None and admin.rule_id == rule.id:
            vlan_ids.append(admin.vlan_id)
        tagged = not vlan_ids or any(vlan_ids)  # unknown: assume tagged, as the check does
        report = mtu.mtu_report(rule.mtu, underlay)
        crosses = len(pdcs) > 1
        paths = (
            ("within a PDC", report.plain, True),
            ("within a PDC, VLAN-tagged", report.plain_vlan, tagged),
            ("across PDCs (IPSec)", report.ipsec, crosses),
            ("across PDCs (IPSec), VLAN-tagged", report.ipsec_vlan, crosses and tagged),
        )
        rows.append(RuleMtu(rule=rule, pdcs=pdcs, tagged=tagged, paths=tuple(
            PathLimit(name, limit, used, rule.mtu > limit) for name, limit, used in paths)))
    return rows


@operator_required
@require_GET
def requirements(request: HttpRequest) -> HttpResponse:
    try:
        underlay = int(request.GET.get("underlay", mtu.DEFAULT_UNDERLAY_MTU))
    except ValueError:
        underlay = mtu.DEFAULT_UNDERLAY_MTU
    if underlay not in UNDERLAYS:
        underlay = mtu.DEFAULT_UNDERLAY_MTU
    snapshot = load_snapshot()
    report = checks.check_cluster(snapshot)
    findings = [(f, WHAT_TO_DO.get(f.code, "See the finding.")) for f in report.findings]
    return render(request, "ops/requirements.html", {
        "findings": findings,
        "errors": len(report.errors),
        "warnings": len(report.warnings),
        "rules": rule_mtus(snapshot, underlay),
        "underlay": underlay,
        "underlays": UNDERLAYS,
    })
