"""overlay firewall {enable,disable,update,info}: the global external0 allow-list."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError

from overlays import services
from overlays.cli._common import validation_failure
from overlays.models import FirewallSettings
from overlays.models.management import management_pdc, sources_origin

NAME = "firewall"
HELP = "Enable, disable or change the global allow-list on external0."


def add_arguments(parser: ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action in ("enable", "update"):
        p = sub.add_parser(action, help=f"{action.capitalize()} the allow-list.")
        p.add_argument("--allow", action="append", metavar="SOURCE",
                       help="Administrator address or network; repeatable; replaces the list.")
    sub.add_parser("disable", help="Disable the allow-list (plaintext overlay traffic on "
                                   "external0 stays blocked).")
    sub.add_parser("info", help="Show the firewall settings.")


def run(command: Any, options: dict[str, Any]) -> None:
    action = options["action"]
    if action != "info":
        enabled = {"enable": True, "disable": False}.get(action)
        try:
            services.firewall_update(enabled=enabled, allowed_sources=options.get("allow"))
        except ValidationError as exc:
            raise validation_failure(exc) from exc
    fw = FirewallSettings.load()
    command.stdout.write(f"allow-list {'enabled' if fw.enabled else 'disabled'}; "
                         f"administrator sources: {', '.join(fw.allowed_sources) or 'none'}")
    managers = fw.management_sources
    command.stdout.write(f"management server (always let in): {', '.join(managers) or 'unknown'}"
                         f" ({sources_origin()}); its PDC: {management_pdc() or 'unknown'}")
