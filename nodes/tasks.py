"""Celery tasks that read compute nodes; the work is in ``nodes.refresh``.

``refresh_all`` runs every ``OVERLAY_REFRESH_INTERVAL`` seconds (default 300)
when ``celery beat`` runs; it is how nodes that were down are noticed when they
return and caught up.
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from celery import shared_task
from django.conf import settings

from config.celery import app
from nodes import refresh
from nodes.models import Node

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def refresh_node(node_id: int) -> dict:
    """Read one node (sysinfo, NIC tags, loaded rules, default route) and record it."""
    return asdict(refresh.refresh_node(node_id))


@shared_task
def refresh_all() -> list[int]:
    """Queue a refresh of every node; returns their ids."""
    node_ids = list(Node.objects.order_by("hostname").values_list("id", flat=True))
    for node_id in node_ids:
        refresh_node.delay(node_id)
    logger.info("refresh of %d node(s) queued", len(node_ids))
    return node_ids


@app.on_after_finalize.connect
def _schedule_periodic_refresh(sender, **kwargs: object) -> None:  # noqa: ANN001
    interval = settings.OVERLAY_REFRESH_INTERVAL
    if interval > 0:
        sender.add_periodic_task(interval, refresh_all.s(), name="refresh all nodes")
