"""Liveness (``/healthz``) and readiness (``/readyz``) for load balancers and orchestrators.

``/healthz`` answers as long as the process serves requests and touches nothing else, so
a database outage never gets the web processes restarted. ``/readyz`` checks what a
request needs: the database, Redis when ``REDIS_URL`` is set, and the Celery broker when
``CELERY_BROKER_URL`` names one (the in-process default is not checked). It answers 503
when one check fails. Both are open to anyone and say only which check failed and the
exception's class; the details go to the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from kombu import Connection

logger = logging.getLogger(__name__)

# Seconds each dependency has to answer; a probe should not outlast the prober's timeout.
CHECK_TIMEOUT = 2.0


def check_database() -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_redis() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=CHECK_TIMEOUT,
                                  socket_timeout=CHECK_TIMEOUT)
    try:
        client.ping()
    finally:
        client.close()


def check_broker() -> None:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=CHECK_TIMEOUT,
                    transport_options={"socket_connect_timeout": CHECK_TIMEOUT,
                                       "socket_timeout": CHECK_TIMEOUT}) as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0,
                                     timeout=CHECK_TIMEOUT)


def readiness_checks() -> dict[str, Callable[[], None] | None]:
    """Each check by name; None for a dependency this deployment does not use."""
    broker = getattr(settings, "CELERY_BROKER_URL", "") or ""
    return {
        "database": check_database,
        "redis": check_redis if getattr(settings, "REDIS_URL", "") else None,
        "broker": None if broker.startswith("memory://") or not broker else check_broker,
    }


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Never touches the database or the network."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: every configured dependency answers; 503 and which one failed otherwise."""
    results: dict[str, dict[str, object]] = {}
    ready = True
    for name, check in readiness_checks().items():
        if check is None:
            results[name] = {"state": "not configured"}
            continue
        started = time.monotonic()
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            logger.warning("readiness check %s failed: %s", name, exc)
            results[name] = {"state": "failed", "error": type(exc).__name__}
            ready = False
        else:
            results[name] = {"state": "ok",
                             "seconds": round(time.monotonic() - started, 3)}
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": results},
                        status=200 if ready else 503)
