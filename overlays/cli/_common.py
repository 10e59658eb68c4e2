"""Helpers shared by the overlay subcommands."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from overlays.cli import CliError


def validation_failure(exc: ValidationError) -> CliError:
    """Turn a model ValidationError into one message naming each field."""
    if hasattr(exc, "error_dict"):
        parts = [f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items()]
    else:
        parts = exc.messages
    return CliError("; ".join(parts))


def table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    lines = [headers, *rows]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=False)).rstrip()
                     for line in lines)
