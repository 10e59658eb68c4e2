"""overlay audit-prune: delete audit log entries older than the retention period."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.conf import settings

from config.audit import prune

NAME = "audit-prune"
HELP = ("Delete audit log entries older than AUDIT_RETENTION_DAYS (run it daily, e.g. from "
        "cron); 0 keeps every entry.")


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("--days", type=int, default=None,
                        help="Keep this many days instead of AUDIT_RETENTION_DAYS.")


def run(command: Any, options: dict[str, Any]) -> None:
    days = settings.AUDIT_RETENTION_DAYS if options["days"] is None else options["days"]
    if days <= 0:
        command.stdout.write("Retention is 0 days: every audit entry is kept.")
        return
    deleted = prune(days)
    command.stdout.write(f"Deleted {deleted} audit entr{'y' if deleted == 1 else 'ies'} "
                         f"older than {days} day(s).")
