"""Small helpers shared by the model modules of ``overlays.models`` (private to the package)."""

from __future__ import annotations

# viewer_vdc_id of objects only superusers edit (the admin overlay's addresses): errors about
# them may name every owner, since no tenant sees them.
SUPERUSER_ONLY = -1


def is_int(value: object) -> bool:
    """True for a real integer; field values that failed validation keep their raw type."""
    return isinstance(value, int) and not isinstance(value, bool)
