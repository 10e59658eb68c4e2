"""Template filters of the vDC admin pages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django import template

from vdc.selectors import compact_ids

register = template.Library()


@register.filter
def id_ranges(ids: Iterable[int] | None) -> str:
    """Used ids as compact ranges, ``[100, 101, 102, 110]`` -> ``"100-102, 110"``."""
    text = compact_ids(ids or ())
    return text.replace(",", ", ") if text else "none"


@register.filter
def hint(hints: Mapping[str, str] | None, field_name: str) -> str:
    """The page's extra guidance for one form field (``hints|hint:field.name``), or ""."""
    return (hints or {}).get(field_name, "")
