"""Settings of the Celery workers the fault tests start, kill and restart.

The production settings, with the lock lease, the reconcile interval and the queued-task
expiry scaled down from the environment so that a fault heals in seconds, and a queue
and lock namespace of their own.
"""

import os

from config.settings import *  # noqa: F403

CELERY_TASK_DEFAULT_QUEUE = os.environ["OVERLAY_TEST_QUEUE"]
OVERLAY_SYNC_KEY_PREFIX = os.environ["OVERLAY_TEST_PREFIX"]
OVERLAY_SYNC_LOCK_LEASE = float(os.environ["OVERLAY_SYNC_LOCK_LEASE"])
OVERLAY_RECONCILE_INTERVAL = float(os.environ["OVERLAY_RECONCILE_INTERVAL"])
OVERLAY_SYNC_QUEUED_TTL = float(os.environ["OVERLAY_SYNC_QUEUED_TTL"])
OVERLAY_SYNC_RETRY_BACKOFF = 0.2
OVERLAY_SYNC_DELAY = 0
OVERLAY_SSH_TIMEOUT = 5.0
OVERLAY_REFRESH_INTERVAL = 0  # the reconcile alone brings nodes back in line

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    # The worker runs tasks in threads: writers take the lock up front and wait for it.
    DATABASES["default"].setdefault("OPTIONS", {}).update(  # noqa: F405
        timeout=30, transaction_mode="IMMEDIATE")
