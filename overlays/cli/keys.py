"""overlay keys {list,rotate}: IPSec pair keys, their age, and coordinated rotation.

Never prints a secret: pairs, dates and outcomes only.
"""

from __future__ import annotations

import getpass
import json
from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError

from nodes.models import Node
from overlays import services
from overlays.cli import CliError
from overlays.cli._common import table, validation_failure
from overlays.nodelist import split_hostnames
from overlays.secretbox import SecretsKeyError
from overlays.tasks import rotate_keys

NAME = "keys"
HELP = "List IPSec pair keys with their age, or rotate them (both ends reachable, or deferred)."


def add_arguments(parser: ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="Pairs, key age, last rotation and last attempt; never "
                                    "the key.")
    p.add_argument("--json", action="store_true", help="Print the list as JSON.")
    p = sub.add_parser("rotate", help="Give pairs new keys: only pairs whose two ends answer "
                                      "now; the others are deferred and reported.")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--pair", metavar="A,B", help="The pair of these two host names.")
    which.add_argument("--node", metavar="HOST", help="Every pair of this node.")
    which.add_argument("--all", action="store_true", help="Every pair.")
    p.add_argument("--older-than", type=float, metavar="DAYS",
                   help="Only keys at least this many days old.")
    p.add_argument("--json", action="store_true", help="Print the outcome as JSON.")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="Nodes pushed at once (default 1).")


def _list(command: Any, options: dict[str, Any]) -> None:
    rows = services.key_rows()
    if options.get("json"):
        command.stdout.write(json.dumps({"keys": rows}, indent=2))
        return
    lines = []
    for row in rows:
        attempt = row["last_attempt"]
        lines.append([
            f"{row['node_a']} <-> {row['node_b']}", f"{row['pdc_a']}/{row['pdc_b']}",
            f"{row['age_days']:g}", row["created_at"][:19],
            (row["rotated_at"] or "never")[:19],
            f"{attempt['outcome']} {attempt['at'][:19]}" if attempt else "-"])
    command.stdout.write(table(lines, ["PAIR", "PDCS", "AGE (DAYS)", "CREATED", "LAST ROTATION",
                                       "LAST ATTEMPT"]))
    command.stdout.write(f"{len(rows)} pair key(s)")


def _rotate(command: Any, options: dict[str, Any]) -> None:
    pair = None
    if options.get("pair"):
        names = split_hostnames(options["pair"])
        if len(names) != 2:
            raise CliError("--pair takes two host names: A,B.")
        pair = (names[0], names[1])
    try:
        keys = services.select_keys(pair=pair, node=options.get("node"),
                                    every=bool(options.get("all")),
                                    older_than_days=options.get("older_than"))
    except ValidationError as exc:
        raise validation_failure(exc) from exc
    if not keys:
        command.stdout.write("No pair key matches; nothing rotated.")
        return
    actor = options.get("actor") or getpass.getuser()
    try:
        # Pushed from here at once, right after the probe, and waited for.
        report = rotate_keys(keys, requested_by=actor, entry_point="cli", now=True,
                             jobs=options.get("jobs") or 1)
    except SecretsKeyError as exc:
        raise CliError(str(exc)) from exc
    if options.get("json"):
        command.stdout.write(json.dumps(report.as_dict(), indent=2))
    else:
        rows = [[f"{r.node_a} <-> {r.node_b}", r.outcome, r.reason] for r in report.results]
        command.stdout.write(table(rows, ["PAIR", "OUTCOME", "REASON"]))
        pushed = services.pushed_nodes(report)
        states = Node.objects.filter(pk__in=pushed).order_by("hostname")
        for node in states:
            command.stdout.write(f"{node.hostname}: {node.get_sync_status_display()}"
                                 + (f" ({node.sync_message})" if node.sync_message else ""))
        command.stdout.write(f"{len(report.done)} rotated, {len(report.deferred)} deferred")
    if report.deferred:
        raise CliError(f"{len(report.deferred)} pair(s) deferred: an end could not be reached; "
                       "they keep their key. Rotate them again once both ends answer.")


def run(command: Any, options: dict[str, Any]) -> None:
    if options["action"] == "list":
        _list(command, options)
    else:
        _rotate(command, options)
