"""overlay plan [HOST ...]: what a sync would change on each node, read from the nodes.

Also the plan ``overlay update`` shows (``--plan-only``, or before it asks on a terminal):
``show_plan`` and ``confirm_update`` are used by ``overlays.cli.update``.
"""

from __future__ import annotations

import json
import sys
from argparse import ArgumentParser
from typing import Any

from nodes.models import Node
from overlays.cli import CliError
from overlays.cli._common import nodes_named
from overlays.distribution.preview import (
    CHANGES,
    FAILED,
    UNREADABLE,
    NodePreview,
    plan_document,
    preview_nodes,
)
from overlays.filegroups import Scope

NAME = "plan"
HELP = ("Show, for each node (default: all), every file a sync would change as a unified "
        "diff between what the node holds and what would be written, and the reload actions "
        "that would run; pre-shared keys are never shown. Changes nothing.")


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("hosts", nargs="*", metavar="HOST", help="Host names (default: all).")
    parser.add_argument("--json", action="store_true",
                        help="Print the plan as JSON: {nodes: [{hostname, state, message, "
                             "files: [{path, action, diff, reload, key_changes}], reloads: "
                             "[{action, commands}], drift: [{path, detail}]}], changes}.")
    parser.add_argument("--verify", action="store_true",
                        help="Plan 'overlay update --verify': also rewrite files changed by "
                             "hand since they were deployed.")


def render_text(previews: list[NodePreview]) -> str:
    """The plan as an operator reads it: per node, its files' diffs and the reloads."""
    out: list[str] = []
    for preview in previews:
        head = f"== {preview.hostname}: {preview.state}"
        out.append(head + (f" ({preview.message})" if preview.message else ""))
        for item in preview.files:
            verb = "remove" if item.action == "remove" else "change"
            out.append(f"-- {verb} {item.path}" + (f" (reload: {item.reload})"
                                                    if item.reload else ""))
            out.extend(f"   {sentence}" for sentence in item.key_changes)
            if item.diff:
                out.append(item.diff.rstrip("\n"))
        for reload in preview.reloads:
            out.append(f"-- reload {reload.action}: " + "; ".join(reload.commands))
        for note in preview.drift:
            out.append(f"-- drift {note.path}: {note.detail}")
    changed = [p for p in previews if p.state == CHANGES]
    files = sum(len(p.files) for p in changed)
    out.append(f"{files} file(s) to change on {len(changed)} of {len(previews)} node(s)")
    return "\n".join(out)


def show_plan(command: Any, nodes: list[Node], *, scope: Scope = None, verify: bool = False,
              as_json: bool = False) -> list[NodePreview]:
    """Compute the plan of these nodes and print it; returns it."""
    previews = preview_nodes(nodes, scope=scope, verify=verify)
    if as_json:
        command.stdout.write(json.dumps(plan_document(previews), indent=2))
    else:
        command.stdout.write(render_text(previews))
    return previews


def confirm_update(command: Any, options: dict[str, Any], nodes: list[Node],
                   scope: Scope) -> bool:
    """Whether ``overlay update`` goes on: the plan-only and confirmation flow.

    ``--plan-only``: print the plan, apply nothing. On a terminal without ``--yes``: print
    the plan and ask. Not on a terminal: apply without asking, as before (scripts and cron
    give ``--yes`` to say so; a sync only pushes what the database already holds, which
    automatic syncs push anyway).
    """
    verify = bool(options.get("verify"))
    if options.get("plan_only"):
        show_plan(command, nodes, scope=scope, verify=verify)
        return False
    if options.get("yes") or not sys.stdin.isatty():
        return True
    previews = show_plan(command, nodes, scope=scope, verify=verify)
    if not any(p.state in (CHANGES, UNREADABLE, FAILED) for p in previews):
        return True  # nothing to ask about; the sync still records the nodes in line
    answer = input("Apply this plan? [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise CliError("Nothing was applied.")
    return True


def run(command: Any, options: dict[str, Any]) -> None:
    nodes = nodes_named(options.get("hosts"))
    if not nodes:
        command.stdout.write("no nodes")
        return
    previews = show_plan(command, nodes, verify=bool(options.get("verify")),
                         as_json=bool(options.get("json")))
    problems = [p.hostname for p in previews if p.state in (UNREADABLE, FAILED)]
    if problems:
        raise CliError(f"Could not plan {', '.join(problems)}.")
