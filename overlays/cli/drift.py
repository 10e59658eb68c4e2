"""overlay drift [HOST ...]: compare the files on nodes with what was deployed there and
with what they should hold."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from nodes.models import Deployment
from overlays.cli import CliError
from overlays.cli._common import nodes_named, table
from overlays.distribution.drift import check_drift
from overlays.selectors import load_snapshot

NAME = "drift"
HELP = ("Read the managed files of the named nodes (default: all) and report hand edits, "
        "missing files and files older than they should be; changes nothing (repair with "
        "'overlay update --verify').")


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("hosts", nargs="*", metavar="HOST", help="Host names (default: all).")
    parser.add_argument("--all-files", action="store_true",
                        help="List files that are as deployed too.")


def run(command: Any, options: dict[str, Any]) -> None:
    nodes = nodes_named(options.get("hosts"))
    drifted_nodes = []
    behind_nodes = []
    unreachable = []
    snapshot = load_snapshot()  # once for every node
    for node in nodes:
        report = check_drift(node.pk, snapshot=snapshot)
        last = Deployment.objects.filter(node=node).first()
        last_text = (f"last deployment {last.started_at:%Y-%m-%d %H:%M:%S} {last.result}"
                     if last else "never deployed")
        command.stdout.write(f"{node.hostname}: {node.get_sync_status_display()}, {last_text}")
        if report.error:
            unreachable.append(node.hostname)
            command.stdout.write(f"  cannot read the node: {report.error}")
            continue
        items = [i for i in report.items if options.get("all_files") or i.state != "ok"]
        if items:
            rows = [[i.path, i.state, i.detail] for i in items]
            text = table(rows, ["PATH", "STATE", "DETAIL"])
            command.stdout.write("\n".join("  " + line for line in text.splitlines()))
        if report.drifted:
            drifted_nodes.append(node.hostname)
        if report.behind:
            behind_nodes.append(node.hostname)
    if drifted_nodes or behind_nodes or unreachable:
        parts = []
        if drifted_nodes:
            parts.append(f"drift on {', '.join(drifted_nodes)}")
        if behind_nodes:
            parts.append(f"not yet holding their desired files: {', '.join(behind_nodes)} "
                         "(a sync is pending or failed)")
        if unreachable:
            parts.append(f"could not read {', '.join(unreachable)}")
        raise CliError("; ".join(parts) + ".")
    command.stdout.write(f"no drift on {len(nodes)} node(s)")
