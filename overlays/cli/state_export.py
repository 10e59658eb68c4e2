"""overlay export: print the cluster state file."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from overlays.statefile import export_state

NAME = "export"
HELP = "Print the whole overlay configuration as a version 2 cluster state file (no secrets)."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--indent", type=int, default=2, help="JSON indentation (default 2).")


def run(command: Any, options: dict[str, Any]) -> None:
    command.stdout.write(json.dumps(export_state(), indent=options["indent"]))
