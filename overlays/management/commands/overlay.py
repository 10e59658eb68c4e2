"""``manage.py overlay SUBCOMMAND``: the operator's command line.

Each subcommand lives in its own module of ``overlays.cli`` (found automatically)
with ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(command, options)``.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

from django.core.management.base import BaseCommand, CommandError, CommandParser

import overlays.cli
from config.audit import cli_context


def _subcommands() -> dict[str, ModuleType]:
    found = {}
    for info in pkgutil.iter_modules(overlays.cli.__path__):
        module = importlib.import_module(f"overlays.cli.{info.name}")
        if hasattr(module, "NAME"):
            found[module.NAME] = module
    return dict(sorted(found.items()))


class Command(BaseCommand):
    help = "Manage overlay rules, the admin overlay, the firewall, state files and node files."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--actor", default=None,
                            help="Who the audit trail names for this run's changes "
                            "(default: the OS user).")
        sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND",
                                    parser_class=type(parser))
        sub.required = True
        for name, module in _subcommands().items():
            child = sub.add_parser(name, help=module.HELP, description=module.HELP,
                                   called_from_command_line=getattr(
                                       parser, "called_from_command_line", False))
            module.add_arguments(child)

    def handle(self, *args: object, **options: object) -> None:
        module = _subcommands()[options["subcommand"]]
        try:
            with cli_context(options.get("actor")):
                module.run(self, options)
        except overlays.cli.CliError as exc:
            raise CommandError(str(exc), returncode=exc.returncode) from exc
