"""Template filters of the vDC admin pages."""

from __future__ import annotations

from collections.abc import Iterable

from django import template

from vdc.selectors import compact_ids

register = template.Library()


@register.filter
def id_ranges(ids: Iterable[int] | None) -> str:
    """Used ids as compact ranges, ``[100, 101, 102, 110]`` -> ``"100-102, 110"``."""
    text = compact_ids(ids or ())
    return text.replace(",", ", ") if text else "none"
