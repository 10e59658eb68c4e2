"""The web layer's defences: login lockout, API rate limits, unreadable secrets.

Login lockout
    django-axes counts failed logins per username and client address (settings
    ``AXES_*``) on the login page and the admin's. A locked-out login answers 429
    with the login page and one sentence that reads the same whether the user exists
    or not; ``login_lockout_response`` is axes' ``AXES_LOCKOUT_CALLABLE``.

API rate limits
    DRF throttles whose rates come from ``settings.API_THROTTLE_RATES`` when a
    request arrives (so tests and operators can change them) and whose counters live
    in the ``RATELIMIT_CACHE`` cache (Redis when configured). Wrong API tokens are
    counted per client address by ``ThrottledTokenAuthentication``: DRF checks its
    throttles only after authentication succeeded, so guessing tokens would otherwise
    be free. Every refusal is a 429 in the API's ``{"detail": ...}`` shape with
    ``Retry-After``.

Unreadable secrets
    ``SecretsKeyErrorMiddleware`` answers a request that hit a secret the configured
    OVERLAY_SECRETS_KEYS cannot decrypt with a 503 and the sentence that says which
    setting to fix (JSON under /api/, a page elsewhere), not a 500 traceback.

The client address is ``client_ip``: REMOTE_ADDR, or behind ``TRUSTED_PROXY_COUNT``
reverse proxies the address the outermost one saw (X-Forwarded-For is client-controlled
otherwise), for both axes and the throttles.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.core.cache import BaseCache, caches
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.response import TemplateResponse
from rest_framework import exceptions, throttling
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.request import Request

from overlays.secretbox import SecretsKeyError

logger = logging.getLogger(__name__)


def client_ip(request: HttpRequest) -> str:
    """The client's address, trusting X-Forwarded-For only as far as the configured proxies."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [address.strip()
                     for address in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
                     if address.strip()]
        if forwarded:
            return forwarded[-min(proxies, len(forwarded))]
    return request.META.get("REMOTE_ADDR", "")


def _ratelimit_cache() -> BaseCache:
    return caches[settings.RATELIMIT_CACHE]


# ------------------------------------------------------------------------ login lockout

def lockout_minutes() -> int:
    cool_off = settings.AXES_COOLOFF_TIME
    if isinstance(cool_off, timedelta):
        return max(1, math.ceil(cool_off.total_seconds() / 60))
    return max(1, math.ceil(float(cool_off or 0) * 60))  # axes reads a number as hours


def lockout_message() -> str:
    """The sentence a locked-out login reads: about this username and address, never
    whether such a user exists."""
    minutes = lockout_minutes()
    return (f"Too many failed logins with this username from your address. Logging in is "
            f"blocked for {minutes} minute{'s' if minutes != 1 else ''}; try again later, "
            "or ask a superuser to lift the block.")


def login_lockout_response(request: HttpRequest, original_response: HttpResponse | None = None,
                           credentials: dict | None = None) -> HttpResponse:
    """axes' lockout answer: the login page that was rendered, with the lockout sentence
    as its only error, and 429 with Retry-After."""
    message = lockout_message()
    context = getattr(original_response, "context_data", None) or {}
    form = context.get("form")
    if isinstance(original_response, TemplateResponse) and isinstance(form, forms.Form):
        form.errors.clear()
        form.add_error(None, message)
        response: HttpResponse = TemplateResponse(
            request, original_response.template_name, context, status=429)
        response.render()
    else:
        response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(lockout_minutes() * 60)
    return response


# ------------------------------------------------------------------------- API throttles

class _SettingsRateMixin:
    """Rates read from settings.API_THROTTLE_RATES per request (None: no limit), counters
    in the rate-limit cache, clients identified by ``client_ip``."""

    scope: str

    @property
    def cache(self) -> BaseCache:
        return _ratelimit_cache()

    def get_rate(self) -> str | None:
        return settings.API_THROTTLE_RATES.get(self.scope)

    def get_ident(self, request: Request) -> str:
        return client_ip(request)


class UserRateThrottle(_SettingsRateMixin, throttling.UserRateThrottle):
    """Requests per authenticated user (API_THROTTLE_USER)."""


class AnonRateThrottle(_SettingsRateMixin, throttling.AnonRateThrottle):
    """Requests per client address without credentials (API_THROTTLE_ANON)."""


class FailedTokenThrottle(_SettingsRateMixin, throttling.SimpleRateThrottle):
    """Wrong API tokens per client address (API_THROTTLE_TOKEN_FAILURES).

    Unlike DRF's throttles it only counts failures: ``wait`` says whether the address
    is blocked now, ``record_failure`` adds a failure.
    """

    scope = "token_failures"

    def get_cache_key(self, request: Request, view: Any = None) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def _history(self, request: Request) -> tuple[str, list[float], float]:
        key = self.get_cache_key(request)
        now = self.timer()
        history = [t for t in self.cache.get(key, []) if t > now - self.duration]
        return key, history, now

    def blocked_for(self, request: Request) -> float | None:
        """Seconds until this address may try a token again, or None when it may now."""
        if self.rate is None:
            return None
        _, history, now = self._history(request)
        if len(history) < self.num_requests:
            return None
        return max(0.0, history[-1] + self.duration - now)

    def record_failure(self, request: Request) -> None:
        if self.rate is None:
            return
        key, history, now = self._history(request)
        self.cache.set(key, [now, *history], self.duration)


class ThrottledTokenAuthentication(TokenAuthentication):
    """DRF token authentication that refuses, with a 429, an address that sent too many
    wrong tokens, whatever token it sends next."""

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() != self.keyword.lower().encode():
            return None
        throttle = FailedTokenThrottle()
        wait = throttle.blocked_for(request)
        if wait is not None:
            raise exceptions.Throttled(
                wait, detail="Too many requests with a wrong API token from your address.")
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            throttle.record_failure(request)
            raise


# -------------------------------------------------------------------- unreadable secrets

class SecretsKeyErrorMiddleware:
    """A request that hit an undecryptable secret answers 503 with the fix, not a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, SecretsKeyError):
            return None
        logger.error("%s %s: %s", request.method, request.path, exception)
        if request.path_info.startswith("/api/"):
            return JsonResponse({"detail": str(exception)}, status=503)
        return render(request, "503.html", {"message": str(exception)}, status=503)
