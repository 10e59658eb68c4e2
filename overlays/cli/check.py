"""overlay check: the requirements report; exits 1 when it has errors."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from overlays.checks import check_cluster
from overlays.cli import CliError
from overlays.selectors import load_snapshot

NAME = "check"
HELP = "Check the cluster against the overlay requirements; exit status 1 on errors."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="Print the report as JSON.")


def run(command: Any, options: dict[str, Any]) -> None:
    report = check_cluster(load_snapshot())
    if options["json"]:
        command.stdout.write(json.dumps(report.to_dict(), indent=2))
    else:
        for finding in report.findings:
            where = finding.node or "cluster"
            command.stdout.write(f"{finding.severity.upper():7} {where}: {finding.message} "
                                 f"[{finding.code}]")
        command.stdout.write(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    if report.has_errors:
        raise CliError("The cluster does not meet the overlay requirements.")
