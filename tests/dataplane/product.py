"""Everything the lab asks of the product, in one place.

The lab depends on the manager only through these functions: a state file is
imported the way an operator imports it, then every node's files are rendered
by the pure generators from one snapshot. When modules move, only the imports
below change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

USBKEY_PATH = "/usbkey/config"
# What a node's /usbkey/config holds before the manager adds its keys.
BASE_USBKEY = "# /usbkey/config of a lab node\nadmin_nic=00:0c:29:00:00:01\n"

RenderedCluster = dict[str, dict[str, str]]  # hostname -> {path on the node: file text}


def render_after(docs: Sequence[dict[str, Any]]) -> list[RenderedCluster]:
    """Import each state document in turn (each on top of the previous) and render every
    node's files after each import; nothing is left in the database.

    Needs database access (pytest-django's ``django_db_blocker.unblock()``).
    """
    from django.db import transaction
    from django.test import override_settings

    from overlays.generators import apply_managed_keys, render_cluster
    from overlays.selectors import load_snapshot
    from overlays.statefile import import_state

    rendered = []
    with override_settings(OVERLAY_AUTO_SYNC=False), transaction.atomic():
        for doc in docs:
            import_state(doc)
            rendered.append({
                hostname: {
                    USBKEY_PATH: apply_managed_keys(BASE_USBKEY, files.usbkey.managed),
                    **{file.path: file.content for file in files.files},
                }
                for hostname, files in render_cluster(load_snapshot()).items()
            })
        transaction.set_rollback(True)
    return rendered


def path_mtu(*, vlan: bool, ipsec: bool = False, underlay: int = 1500) -> int:
    """The largest inner MTU the manager computes for a path (``overlay mtu``)."""
    from overlays.mtu import max_inner_mtu

    return max_inner_mtu(underlay, vlan=vlan, ipsec=ipsec)
