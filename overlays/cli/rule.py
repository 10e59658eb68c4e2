"""overlay rule {list,create,update,delete}: manage overlay rules."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError

from overlays import services
from overlays.cli import CliError
from overlays.cli._common import table, validation_failure
from overlays.models import OverlayRule
from overlays.nodelist import nodes_value, parse_nodes_option
from overlays.rulestring import RuleStringError, parse_rule_args

NAME = "rule"
HELP = "List, create, update or delete overlay rules."


def add_arguments(parser: ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("list", help="List overlay rules with their /usbkey/config line.")
    for action in ("create", "update"):
        p = sub.add_parser(action, help=f"{action.capitalize()} an overlay rule.")
        p.add_argument("name", help="Rule name, e.g. customers.")
        p.add_argument("--raw", metavar="ARGS",
                       help='A whole dladm argument string, e.g. "-e vxlan -p '
                            'vxlan/listen_ip=0.0.0.0,vxlan/listen_port=4790 -s files '
                            '-p files/config=/opt/custom/networking/x_overlay.json -p mtu=1400".')
        p.add_argument("--port", type=int, help="UDP port (default: next free).")
        p.add_argument("--listen-ip", help="vxlan/listen_ip (default 0.0.0.0).")
        p.add_argument("--mtu", type=int, help="Overlay MTU (default 1400).")
        p.add_argument("--arp-file", help="files/config path (default: conventional path).")
        p.add_argument("--nodes", metavar="all|HOST,...",
                       help='The nodes carrying the rule: "all" or comma-separated host names.')
    p = sub.add_parser("delete", help="Delete an overlay rule no network uses.")
    p.add_argument("name")


def _apply(rule: OverlayRule, options: dict[str, Any]) -> None:
    if options.get("raw"):
        try:
            params = parse_rule_args(options["raw"])
        except RuleStringError as exc:
            raise CliError(f"--raw {exc.field}: {exc}") from exc
        rule.listen_ip, rule.port, rule.arp_file, rule.mtu = (
            params.listen_ip, params.port, params.arp_file, params.mtu)
    for option, attr in (("port", "port"), ("listen_ip", "listen_ip"), ("mtu", "mtu"),
                         ("arp_file", "arp_file")):
        if options.get(option) is not None:
            setattr(rule, attr, options[option])
    if options.get("nodes"):
        rule.all_nodes, rule.node_names = parse_nodes_option(options["nodes"])


def _nodes_text(rule: OverlayRule) -> str:
    nodes = nodes_value(rule.all_nodes, rule.node_names)
    return nodes if isinstance(nodes, str) else ",".join(nodes)


def run(command: Any, options: dict[str, Any]) -> None:
    action = options["action"]
    if action == "list":
        rows = [[r.name, str(r.port), r.listen_ip, str(r.mtu),
                 _nodes_text(r), r.arp_file]
                for r in OverlayRule.objects.all()]
        command.stdout.write(table(rows, ["NAME", "PORT", "LISTEN IP", "MTU", "NODES",
                                          "ARP FILE"]))
        return
    name = options["name"]
    rule = OverlayRule.objects.filter(name=name).first()
    if action == "create":
        if rule is not None:
            raise CliError(f"Overlay rule {name} already exists; use 'overlay rule update'.")
        rule = OverlayRule(name=name, port=None)
    elif rule is None:
        raise CliError(f"No overlay rule named {name}.")
    try:
        if action == "delete":
            services.delete(rule)
            command.stdout.write(f"deleted overlay rule {name}")
            return
        _apply(rule, options)
        services.save(rule)
    except ValidationError as exc:
        raise validation_failure(exc) from exc
    command.stdout.write(f"{action}d overlay rule {name}: {rule.config_line}")
