"""Helpers shared by the overlay subcommands."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from nodes.models import Node
from overlays.cli import CliError
from overlays.nodelist import split_hostnames


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


def nodes_named(spec: str | list[str] | None) -> list[Node]:
    """Nodes by host name (comma-separated string or list); every node when empty."""
    if isinstance(spec, str):
        names = split_hostnames(spec)
    else:
        names = [n for n in (spec or []) if n]
    if not names:
        return list(Node.objects.order_by("hostname"))
    found = {n.hostname: n for n in Node.objects.filter(hostname__in=names)}
    missing = [name for name in names if name not in found]
    if missing:
        raise CliError(f"No node named {', '.join(missing)}.")
    return [found[name] for name in dict.fromkeys(names)]
