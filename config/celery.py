"""The one Celery application. Without a broker URL tasks run eagerly in-process.

Tasks: the syncs in ``overlays.distribution.queue`` (``overlays.sync_node``,
``overlays.sync_nodes``, ``overlays.reconcile``) and the refreshes in ``overlays.tasks``
(``overlays.refresh_node``, ``overlays.refresh_all``). Under ``celery beat``,
``overlays.refresh_all`` runs every ``OVERLAY_REFRESH_INTERVAL`` seconds and
``overlays.reconcile`` every ``OVERLAY_RECONCILE_INTERVAL`` seconds (0: never). Each worker
queues one ``overlays.reconcile`` when it starts: what was queued before may have died
with the previous worker or with Redis.
"""

import logging
import os

from celery import Celery, signals
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

logger = logging.getLogger(__name__)

app = Celery("overlay_manager")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()  # each installed app's tasks.py
app.autodiscover_tasks(["overlays.distribution"], related_name="queue")


@app.on_after_finalize.connect
def schedule_periodic_tasks(sender: Celery, **kwargs: object) -> None:
    """Refresh every node periodically (how nodes that were down are caught up), and
    reconcile: queue the syncs that no task is coming for (a lost message costs at most
    one interval)."""
    interval = settings.OVERLAY_REFRESH_INTERVAL
    if interval > 0:
        sender.add_periodic_task(interval, sender.signature("overlays.refresh_all"),
                                 name="refresh all nodes")
    reconcile = settings.OVERLAY_RECONCILE_INTERVAL
    if reconcile > 0:
        sender.add_periodic_task(reconcile, sender.signature("overlays.reconcile"),
                                 name="reconcile node syncs")


@signals.celeryd_init.connect
def ride_out_redis_outages(sender: object = None, conf: object = None, **kwargs: object) -> None:
    """In workers, keep trying to store a task's result until Redis is back.

    A task acknowledges its message only after its result is stored (acks late). If that
    fails while Redis is down, kombu never releases the message's prefetch slot and a
    worker whose slots are all taken that way stops consuming for good, alive but idle.
    Retrying the store holds the task until Redis returns, then it is acknowledged.
    Web processes keep failing fast (``CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS``).
    """
    app.conf.result_backend_always_retry = True
    app.conf.result_backend_max_retries = float("inf")


@signals.worker_ready.connect
def reconcile_on_start(sender: object = None, **kwargs: object) -> None:
    """A worker starts: queue every pending sync again, whatever was queued before."""
    try:
        app.send_task("overlays.reconcile", kwargs={"startup": True})
    except Exception as exc:  # noqa: BLE001 - the periodic reconcile does it later
        logger.warning("could not queue the start-up reconcile: %s", exc)
