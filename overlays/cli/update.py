"""overlay update [RULE] [--nodes ...]: push the desired files to the nodes.

With a broker (CELERY_BROKER_URL) the syncs are queued for the workers, unless
``--now``; without one (embedded defaults) they run here, one node after the other.
On a terminal the plan (``overlay plan``) is shown first and confirmation asked;
``--plan-only`` stops there, ``--yes`` skips it (``overlays.cli.plan.confirm_update``).
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from config.celery import app as celery_app
from overlays.cli import CliError
from overlays.cli._common import nodes_named, table
from overlays.cli.plan import confirm_update
from overlays.distribution.queue import request_syncs
from overlays.distribution.run import release_rollback_holds, sync_many
from overlays.filegroups import Scope, rule_groups
from overlays.models import OverlayRule

NAME = "update"
HELP = "Push the desired files to every node, the nodes carrying RULE, or --nodes."


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("rule", nargs="?", metavar="RULE",
                        help="Only this rule's files (its /usbkey/config line, ARP table and "
                             "ipf blocks) on the nodes carrying it.")
    parser.add_argument("--nodes", metavar="HOSTS",
                        help="Comma-separated host names (default: every node).")
    parser.add_argument("--verify", action="store_true",
                        help="Compare with the files on the nodes rather than the recorded "
                             "hashes: repairs hand edits and missing files.")
    parser.add_argument("--now", action="store_true",
                        help="Run the syncs in this process and wait, even with a broker. "
                             "A sync of the same node running elsewhere is waited for "
                             "(OVERLAY_SYNC_LOCK_WAIT), then this one runs.")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="Nodes synced at once when running here (default 1).")
    parser.add_argument("--force", metavar="HOSTS",
                        help="Comma-separated host names held after a rollback: release them "
                             "and push to them again (still under a revert timer). Without "
                             "--nodes, only these nodes are updated.")
    parser.add_argument("--plan-only", action="store_true",
                        help="Print the plan (as 'overlay plan') and apply nothing.")
    parser.add_argument("--yes", action="store_true",
                        help="Apply without showing the plan and asking (on a terminal the "
                             "plan is shown and confirmation asked; elsewhere it applies).")


def runs_here(options: dict[str, Any]) -> bool:
    """Run syncs in this process when asked to, or when Celery has no broker (eager)."""
    return bool(options.get("now")) or celery_app.conf.task_always_eager


def run(command: Any, options: dict[str, Any]) -> None:
    forced = nodes_named(options["force"]) if options.get("force") else []
    nodes = nodes_named(options.get("nodes") or [n.hostname for n in forced])
    scope: Scope = None
    reason = "overlay update"
    if options.get("rule"):
        rule = OverlayRule.objects.filter(name=options["rule"]).first()
        if rule is None:
            raise CliError(f"No overlay rule named {options['rule']}.")
        nodes = [n for n in nodes if rule.carries(n.hostname)]
        scope = rule_groups(rule.arp_file)
        reason = f"overlay update {rule.name}"
    if not nodes:
        command.stdout.write("no nodes to update")
        return
    if not confirm_update(command, options, nodes, scope):
        return
    released = set(release_rollback_holds([n.pk for n in forced]))
    for node in forced:
        command.stdout.write(f"{node.hostname}: " + (
            "released after its rollback; pushing again" if node.pk in released
            else "not held; updated as usual"))
    verify = bool(options.get("verify"))
    if not runs_here(options):
        # One request for all: the workers get them in batches sharing a snapshot.
        request_syncs([n.pk for n in nodes], scope=scope, reason=reason, verify=verify,
                      always_queue=True)
        command.stdout.write(f"queued sync of {len(nodes)} node(s): "
                             f"{', '.join(n.hostname for n in nodes)}")
        return
    outcomes = sync_many([n.pk for n in nodes], scope=scope, reason=reason, verify=verify,
                         jobs=max(1, options.get("jobs") or 1))
    rows = []
    failed = 0
    for node in nodes:
        outcome = outcomes[node.pk]
        deployments = [p.deployment for p in outcome.passes if p.deployment]
        if not deployments:
            busy = outcome.status == "busy"  # another sync kept the node's lock throughout
            failed += busy
            rows.append([node.hostname, outcome.status, "", "",
                         f"its sync lock is held by {outcome.holder}" if busy else ""])
            continue
        files = sum(len(d.files_changed) for d in deployments)
        commands = sum(len(d.commands) for d in deployments)
        last = deployments[-1]
        failed += last.result == "failed"
        rows.append([node.hostname, last.result, str(files), str(commands), last.error])
    command.stdout.write(table(rows, ["NODE", "RESULT", "FILES", "COMMANDS", "ERROR"]))
    if failed:
        raise CliError(f"{failed} node(s) failed; see the ERROR column and "
                       "'overlay drift'.")
