"""The firewall settings: one row, the allow-list of external0."""

from __future__ import annotations

from collections.abc import Iterable

from overlays.models import FirewallSettings
from overlays.services.writes import save


def firewall_update(*, enabled: bool | None = None,
                    allowed_sources: Iterable[str] | None = None) -> FirewallSettings:
    """Change what is given, keep the rest; the affected nodes' ipf files follow."""
    settings_row = FirewallSettings.load()
    if enabled is not None:
        settings_row.enabled = enabled
    if allowed_sources is not None:
        settings_row.allowed_sources = list(allowed_sources)
    return save(settings_row)
