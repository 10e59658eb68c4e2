"""overlay adopt [HOST ...]: take over overlays the reference tool configured (issue 11)."""

from __future__ import annotations

import getpass
import json
import sys
from argparse import ArgumentParser
from typing import Any

from django.contrib.auth import get_user_model

from nodes.transports import TransportError
from overlays.adoption import (
    AdoptionRefused,
    apply_adoption,
    plan_adoption,
    read_cluster,
    result_document,
)
from overlays.cli import CliError

NAME = "adopt"
HELP = ("Read the overlay configuration running on known nodes and import it, all or nothing "
        "(pair keys both ends share are kept).")


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("hosts", nargs="*", metavar="HOST",
                        help="Host names of known nodes to read (default: every node).")
    parser.add_argument("--dry-run", action="store_true",
                        help="Print the state file and the report; change nothing.")
    parser.add_argument("--json", action="store_true",
                        help="Print the state file and report as one JSON document.")
    parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")


def run(command: Any, options: dict[str, Any]) -> None:
    try:
        adoption = plan_adoption(read_cluster(options["hosts"] or None))
    except (ValueError, TransportError) as exc:
        raise CliError(f"Cannot read the cluster: {exc}") from exc
    if options["json"]:
        command.stdout.write(json.dumps(result_document(adoption), indent=2, sort_keys=True))
    else:
        command.stdout.write(json.dumps(adoption.state, indent=2, sort_keys=True))
        for finding in adoption.conflicts:
            command.stderr.write(f"conflict: {finding}")
        for finding in adoption.notes:
            command.stdout.write(f"note: {finding}")
    if options["dry_run"]:
        if adoption.conflicts:
            raise CliError(f"{len(adoption.conflicts)} conflict(s); adopting would change "
                           "nothing.", returncode=1)
        return
    if adoption.conflicts:
        raise CliError(f"{len(adoption.conflicts)} conflict(s); nothing was changed.")
    if not options["yes"]:
        if not sys.stdin.isatty():
            raise CliError("Not on a terminal: give --yes to adopt, or --dry-run to look.")
        if input("Adopt this configuration? [y/N] ").strip().lower() not in ("y", "yes"):
            raise CliError("Nothing was changed.")
    try:
        actor = options.get("actor") or getpass.getuser()
        account = get_user_model().objects.filter(username=actor).first()
        result = apply_adoption(adoption, user=account, actor=actor, entry_point="cli")
    except AdoptionRefused as exc:
        for finding in exc.adoption.conflicts:
            command.stderr.write(f"conflict: {finding}")
        raise CliError(f"{exc}.") from exc
    for change in result.changes:
        command.stdout.write(change)
    command.stdout.write(f"Adopted: {len(result.changes)} change(s), "
                         f"{result.keys_adopted} pair key(s) kept from the nodes "
                         f"(adoption record {result.record.pk if result.record else '-'}).")
