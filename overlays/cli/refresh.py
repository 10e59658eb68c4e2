"""overlay refresh [HOST ...]: read nodes' facts over SSH and record them."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from overlays.cli import CliError
from overlays.cli._common import nodes_named, table
from overlays.cli.update import runs_here
from overlays.tasks import refresh_node, run_refresh

NAME = "refresh"
HELP = ("Read sysinfo, NIC tags, loaded rules and the default route of the named nodes "
        "(default: all) and record them; nodes that changed trigger syncs.")


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("hosts", nargs="*", metavar="HOST", help="Host names (default: all).")
    parser.add_argument("--now", action="store_true",
                        help="Refresh in this process and wait, even with a broker.")


def run(command: Any, options: dict[str, Any]) -> None:
    nodes = nodes_named(options.get("hosts"))
    if not nodes:
        command.stdout.write("no nodes")
        return
    if not runs_here(options):
        for node in nodes:
            refresh_node.delay(node.pk)
        command.stdout.write(f"queued refresh of {len(nodes)} node(s)")
        return
    rows = []
    failed = 0
    for node in nodes:
        result = run_refresh(node.pk)
        failed += not result.ok
        detail = result.error or "; ".join(result.warnings)
        changed = ", ".join(result.changed) or "-"
        rows.append([result.hostname, "ok" if result.ok else "failed", changed,
                     "yes" if result.sync_requested else "", detail])
    command.stdout.write(table(rows, ["NODE", "RESULT", "CHANGED", "SYNC", "DETAIL"]))
    if failed:
        raise CliError(f"{failed} node(s) could not be refreshed.")
