"""overlay import FILE: apply a cluster state file, all or nothing."""

from __future__ import annotations

import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from config.audit import audit_context
from core.jsondoc import JsonDocumentError, parse_json
from overlays.cli import CliError
from overlays.statefile import StateFileError, import_state

NAME = "import"
HELP = ("Import a cluster state file (JSON, version 1 or 2); nothing changes unless the whole "
        "file is valid.")


def add_arguments(parser: ArgumentParser) -> None:
    parser.add_argument("file", help="Path of the state file, or - for standard input.")
    parser.add_argument("--dry-run", action="store_true",
                        help="Validate and print what would change, but change nothing.")


def run(command: Any, options: dict[str, Any]) -> None:
    path = options["file"]
    try:
        data = _read_stdin() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"Cannot read {path}: {exc.strerror}.") from exc
    try:  # one line for any file that is not a JSON document (never a traceback)
        doc = parse_json(data)
    except JsonDocumentError as exc:
        raise CliError(f"{path} is not valid JSON: {exc}.") from None
    try:
        with audit_context("import"):  # the command's actor, entry point "import"
            report = import_state(doc, dry_run=options["dry_run"])
    except StateFileError as exc:
        for line in exc.lines():
            command.stderr.write(line)
        raise CliError(f"{len(exc.problems)} problem(s); nothing was changed.") from exc
    for where, sentence in report.warnings:
        command.stderr.write(f"warning: {where}: {sentence}")
    prefix = "would " if report.dry_run else ""
    for change in report.changes:
        command.stdout.write(f"{prefix}{change}")
    if not report.changes:
        command.stdout.write("Nothing to change.")
    elif report.dry_run:
        command.stdout.write(f"Dry run: {len(report.changes)} change(s) not applied.")


def _read_stdin() -> bytes | str:
    """Standard input as bytes, so that its encoding is checked with the file's rules."""
    stream = getattr(sys.stdin, "buffer", None)  # absent when a test replaces stdin
    return stream.read() if stream is not None else sys.stdin.read()
