"""Settings of the Celery worker that the distribution tests start.

The production settings, plus a queue and a lock namespace of the test session
(others may run the suite against the same Redis) and short retry backoffs.
"""

import os

from config.settings import *  # noqa: F403

CELERY_TASK_DEFAULT_QUEUE = os.environ["OVERLAY_TEST_QUEUE"]
OVERLAY_SYNC_KEY_PREFIX = os.environ["OVERLAY_TEST_PREFIX"]
OVERLAY_SYNC_RETRY_BACKOFF = 0.2
OVERLAY_SYNC_DELAY = 0
OVERLAY_SSH_TIMEOUT = 5.0
OVERLAY_REFRESH_INTERVAL = 0  # no periodic refresh in tests
OVERLAY_RECONCILE_INTERVAL = 0  # nor reconcile (tests/faults run one)
OVERLAY_SYNC_LOCK_LEASE = 3.0  # a task that found a node's lock taken checks back soon

if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    # The worker runs tasks in threads: writers take the lock up front and wait for it.
    DATABASES["default"].setdefault("OPTIONS", {}).update(  # noqa: F405
        timeout=30, transaction_mode="IMMEDIATE")
