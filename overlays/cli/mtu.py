"""overlay mtu RULE: how a rule's MTU compares with what its paths carry unfragmented."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from overlays.cli import CliError
from overlays.models import OverlayRule
from overlays.mtu import mtu_report

NAME = "mtu"
HELP = "Show the largest unfragmented inner MTU per path for a rule, with warnings."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("rule", help="Overlay rule name.")
    parser.add_argument("--underlay", type=int, default=1500,
                        help="Underlay (physical) MTU, default 1500.")
    parser.add_argument("--ipv6", action="store_true", help="The underlay is IPv6.")


def run(command: Any, options: dict[str, Any]) -> None:
    rule = OverlayRule.objects.filter(name=options["rule"]).first()
    if rule is None:
        raise CliError(f"No overlay rule named {options['rule']}.")
    try:
        report = mtu_report(rule.mtu, options["underlay"], ipv6=options["ipv6"])
    except ValueError as exc:
        raise CliError(f"--underlay: {exc}.") from exc
    command.stdout.write(
        f"rule {rule.name}: MTU {rule.mtu} on a {report.underlay_mtu}-byte "
        f"{'IPv6' if report.ipv6 else 'IPv4'} underlay\n"
        f"  same PDC (VXLAN):                {report.plain}\n"
        f"  same PDC (VXLAN + VLAN):         {report.plain_vlan}\n"
        f"  across PDCs (VXLAN + ESP):       {report.ipsec}\n"
        f"  across PDCs (VXLAN + VLAN + ESP): {report.ipsec_vlan}"
    )
    for warning in report.warnings:
        command.stdout.write(f"warning: {warning}")
