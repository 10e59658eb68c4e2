"""/healthz answers without the database; /readyz checks each configured dependency and is
503 when one does not answer (a broker or Redis on a closed loopback port)."""

from __future__ import annotations

import socket

import pytest
from django.db import OperationalError, connections
from django.test import Client


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_answers_without_touching_the_database():
    # No django_db mark: pytest-django makes any database access here an error.
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_checks_the_database_only_when_nothing_else_is_configured(settings):
    settings.REDIS_URL = ""
    settings.CELERY_BROKER_URL = "memory://localhost/"
    response = Client().get("/readyz")
    assert response.status_code == 200, response.content
    checks = response.json()["checks"]
    assert checks["database"]["state"] == "ok"
    assert checks["redis"] == {"state": "not configured"}
    assert checks["broker"] == {"state": "not configured"}


@pytest.mark.django_db
def test_readyz_is_503_when_the_broker_does_not_answer(settings):
    settings.REDIS_URL = ""
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"]["state"] == "failed"
    assert body["checks"]["database"]["state"] == "ok"
    assert "127.0.0.1" not in response.content.decode()  # no addresses or URLs in the answer


@pytest.mark.django_db
def test_readyz_is_503_when_redis_does_not_answer(settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    settings.CELERY_BROKER_URL = "memory://localhost/"
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["state"] == "failed"


@pytest.mark.django_db
def test_readyz_is_503_when_the_database_does_not_answer(settings, monkeypatch):
    settings.REDIS_URL = ""
    settings.CELERY_BROKER_URL = "memory://localhost/"

    def refuse(*args, **kwargs):
        raise OperationalError("database is down")

    monkeypatch.setattr(connections["default"], "cursor", refuse)
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {"state": "failed",
                                                     "error": "OperationalError"}
