"""The one Celery application. Without a broker URL tasks run eagerly in-process.

Tasks: the syncs in ``overlays.distribution.queue`` (``overlays.sync_node``,
``overlays.sync_nodes``) and the refreshes in ``overlays.tasks``
(``overlays.refresh_node``, ``overlays.refresh_all``). Under ``celery beat``,
``overlays.refresh_all`` runs every ``OVERLAY_REFRESH_INTERVAL`` seconds (0: never).
"""

import os

from celery import Celery
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("overlay_manager")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()  # each installed app's tasks.py
app.autodiscover_tasks(["overlays.distribution"], related_name="queue")


@app.on_after_finalize.connect
def schedule_periodic_refresh(sender: Celery, **kwargs: object) -> None:
    """Refresh every node periodically: how nodes that were down are caught up."""
    interval = settings.OVERLAY_REFRESH_INTERVAL
    if interval > 0:
        sender.add_periodic_task(interval, sender.signature("overlays.refresh_all"),
                                 name="refresh all nodes")
