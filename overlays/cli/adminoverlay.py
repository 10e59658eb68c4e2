"""overlay adminoverlay {init,update,info}: the virtual admin network on every node."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError

from nodes.models import Node
from overlays import services
from overlays.cli import CliError
from overlays.cli._common import table, validation_failure
from overlays.models import (
    ADMIN_OVERLAY_MTU,
    ADMIN_OVERLAY_RULE,
    ADMIN_OVERLAY_VLAN_ID,
    ADMIN_OVERLAY_VXLAN_ID,
    AdminOverlay,
)

NAME = "adminoverlay"
HELP = "Create, change or show the admin overlay (rule, subnet, per-node adminoverlay_0)."


def add_arguments(parser: ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (("init", "Create the admin overlay and address every node."),
                         ("update", "Change the admin overlay or one node's address.")):
        p = sub.add_parser(action, help=text)
        p.add_argument("--subnet", help="IPv4 subnet, e.g. 10.44.44.0/24 (init default: a "
                                        "random 10.x.y.0/24).")
        p.add_argument("--overlay-rule", metavar="NAME",
                       help=f"Overlay rule name (init default: {ADMIN_OVERLAY_RULE}).")
        p.add_argument("--port", type=int, help="UDP port of a new rule (default: next free).")
        p.add_argument("--mtu", type=int, default=ADMIN_OVERLAY_MTU,
                       help=f"MTU of a new rule (default {ADMIN_OVERLAY_MTU}).")
        p.add_argument("--vxlan-id", type=int,
                       help=f"VXLAN id (init default: {ADMIN_OVERLAY_VXLAN_ID}).")
        p.add_argument("--vlan-id", type=int,
                       help=f"VLAN id (init default: {ADMIN_OVERLAY_VLAN_ID}).")
        p.add_argument("--node", action="append", default=[], metavar="HOST[=IP[,MAC]]",
                       help="Set a node's address and/or MAC; repeatable.")
    sub.add_parser("info", help="Show the admin overlay and every node's address.")


def _addresses(specs: list[str]) -> dict[str, dict[str, str | None]]:
    found: dict[str, dict[str, str | None]] = {}
    for spec in specs:
        host, _, rest = spec.partition("=")
        ip, _, mac = rest.partition(",")
        found[host] = {"ip": ip or None, "mac": mac or None}
    return found


def run(command: Any, options: dict[str, Any]) -> None:
    action = options["action"]
    overlay = AdminOverlay.objects.select_related("overlay_rule").first()
    if action == "info":
        if overlay is None:
            raise CliError("There is no admin overlay; create it with 'overlay adminoverlay init'.")
        rule = overlay.overlay_rule
        command.stdout.write(f"rule {rule.name} (port {rule.port}, "
                             f"MTU {rule.mtu}), overlay {rule.name}"
                             f"{overlay.vxlan_id}, VLAN {overlay.vlan_id}, subnet {overlay.subnet}")
        rows = [[a.node.hostname, a.ip, a.mac]
                for a in overlay.addresses.select_related("node")]
        missing = Node.objects.filter(admin_overlay_address__isnull=True)
        rows += [[n.hostname, "-", "- (missing: run 'overlay adminoverlay update')"]
                 for n in missing]
        command.stdout.write(table(rows, ["NODE", "IP", "MAC"]))
        return
    if action == "init" and overlay is not None:
        raise CliError("The admin overlay exists already; use 'overlay adminoverlay update'.")
    if action == "update" and overlay is None:
        raise CliError("There is no admin overlay yet; use 'overlay adminoverlay init'.")
    try:
        overlay = services.admin_overlay_init(
            subnet=options["subnet"], overlay_rule=options["overlay_rule"], port=options["port"],
            mtu=options["mtu"], vxlan_id=options["vxlan_id"], vlan_id=options["vlan_id"],
            addresses=_addresses(options["node"]))
    except ValidationError as exc:
        raise validation_failure(exc) from exc
    command.stdout.write(f"admin overlay {overlay}: {overlay.addresses.count()} node address(es)")
