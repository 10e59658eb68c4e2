"""overlay verify [HOST ...]: the overlay rules each node has loaded (last refresh) against
the rules it should carry; exits 1 when a node differs."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from overlays.cli import CliError
from overlays.selectors import load_snapshot
from overlays.verify import verify_cluster

NAME = "verify"
HELP = ("Compare the overlay rules the named nodes (default: all) loaded, as their last "
        "refresh saw, with the rules they should carry: missing, extra and different rules; "
        "exit status 1 when a node differs.")


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("hosts", nargs="*", metavar="HOST", help="Host names (default: all).")
    parser.add_argument("--json", action="store_true", help="Print the results as JSON.")


def run(command: Any, options: dict[str, Any]) -> None:
    snapshot = load_snapshot()
    names = list(dict.fromkeys(options.get("hosts") or [])) or None
    unknown = [name for name in names or () if name not in snapshot.nodes_by_hostname]
    if unknown:
        raise CliError(f"No node named {', '.join(unknown)}.")
    results = verify_cluster(snapshot, names)
    if options["json"]:
        command.stdout.write(json.dumps({"nodes": [r.to_dict() for r in results]}, indent=2))
    else:
        for result in results:
            command.stdout.write(f"{result.hostname}: {result.summary()}")
    differing = [r.hostname for r in results if r.differs]
    if differing:
        raise CliError(f"Loaded overlay rules differ on {', '.join(differing)}: refresh the "
                       "node; if it persists, run overlay update.")
