"""Fixtures of the security tests: the real limits (small, so that a test reaches them),
each test counting in a rate-limit cache of its own, and a login-lockout handler per
storage: the database, a memory cache, and Redis when there is one."""

from __future__ import annotations

import os
import uuid

import pytest
import redis
from axes.handlers.proxy import AxesProxyHandler
from django.test import Client

from tests.harness import require_or_skip

FAILURE_LIMIT = 3
RATES = {"user": "5/min", "anon": "3/min", "token_failures": "3/min"}
PASSWORD = "correct horse battery staple"
LOCMEM = "django.core.cache.backends.locmem.LocMemCache"
REDIS = "django.core.cache.backends.redis.RedisCache"
AXES_DATABASE = "axes.handlers.database.AxesDatabaseHandler"
AXES_CACHE = "axes.handlers.cache.AxesCacheHandler"


def use_ratelimit_cache(settings, backend: str, location: str, **options: str) -> None:
    settings.CACHES = {**settings.CACHES,
                       settings.RATELIMIT_CACHE: {"BACKEND": backend, "LOCATION": location,
                                                  **options}}


def redis_url() -> str:
    """The REDIS_URL of the environment, when Redis answers there (else skip or fail)."""
    url = os.environ.get("REDIS_URL", "")
    if not url:
        require_or_skip("REDIS_URL is not set")
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError:
        require_or_skip(f"Redis at {url} does not answer")
    return url


@pytest.fixture(autouse=True)
def security_limits(settings):
    """Overrides tests/conftest.py's fixture of the same name: lockout and throttles on."""
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = FAILURE_LIMIT
    settings.AXES_HANDLER = AXES_DATABASE
    settings.API_THROTTLE_RATES = dict(RATES)
    settings.TRUSTED_PROXY_COUNT = 0
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    use_ratelimit_cache(settings, LOCMEM, f"ratelimit-{uuid.uuid4()}")
    AxesProxyHandler.get_implementation(force=True)
    yield
    AxesProxyHandler.implementation = None  # the next test builds it from its settings


@pytest.fixture(params=["database", "memory cache", "redis"])
def lockout_store(request, settings) -> str:
    """Where axes counts failures: the database (no Redis), or a cache (Redis in production)."""
    if request.param != "database":
        settings.AXES_HANDLER = AXES_CACHE
        if request.param == "redis":
            use_ratelimit_cache(settings, REDIS, redis_url(), KEY_PREFIX=f"test-{uuid.uuid4()}")
        AxesProxyHandler.get_implementation(force=True)
    return request.param


@pytest.fixture
def alice(db, django_user_model):
    return django_user_model.objects.create_user("alice", password=PASSWORD)


@pytest.fixture
def bob(db, django_user_model):
    return django_user_model.objects.create_user("bob", password=PASSWORD)


@pytest.fixture
def browser() -> Client:
    return Client()
