"""API rate limits: per user, per address without credentials, and wrong tokens per address.
Every refusal is a 429 in the API's error shape with Retry-After."""

from __future__ import annotations

import uuid

import pytest
from django.test import RequestFactory
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from config.security import client_ip
from tests.security.conftest import RATES, REDIS, redis_url, use_ratelimit_cache

USER_LIMIT = int(RATES["user"].split("/")[0])
ANON_LIMIT = int(RATES["anon"].split("/")[0])
TOKEN_FAILURES = int(RATES["token_failures"].split("/")[0])
ME = "/api/v1/me/"
DOCS = "/api/v1/docs/"  # the one page anonymous clients may read
HERE = "198.51.100.7"
ELSEWHERE = "198.51.100.8"


def token_client(user=None, *, key: str | None = None) -> APIClient:
    client = APIClient(REMOTE_ADDR=HERE)
    client.credentials(HTTP_AUTHORIZATION=f"Token {key or Token.objects.create(user=user).key}")
    return client


def assert_throttled(response, *, json: bool = True) -> None:
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    if json:
        assert set(response.json()) == {"detail"}
        assert f"available in {response['Retry-After']} seconds" in response.json()["detail"]


@pytest.fixture(params=["memory cache", "redis"])
def counters(request, settings) -> str:
    """Where the throttles count: this test's memory cache, or Redis as in production."""
    if request.param == "redis":
        use_ratelimit_cache(settings, REDIS, redis_url(), KEY_PREFIX=f"test-{uuid.uuid4()}")
    return request.param


def test_a_user_over_the_rate_gets_429_in_the_error_shape(alice, bob, counters):
    client = token_client(alice)
    assert [client.get(ME).status_code for _ in range(USER_LIMIT)] == [200] * USER_LIMIT

    assert_throttled(client.get(ME))
    # The limit is alice's: bob, from the same address, is served.
    assert token_client(bob).get(ME).status_code == 200


def test_session_users_are_counted_too(alice):
    client = APIClient()
    client.force_login(alice)
    for _ in range(USER_LIMIT):
        client.get(ME)
    assert_throttled(client.get(ME))


def test_anonymous_clients_are_counted_per_address(db):
    client = APIClient(REMOTE_ADDR=HERE)
    assert [client.get(DOCS).status_code for _ in range(ANON_LIMIT)] == [200] * ANON_LIMIT

    assert_throttled(client.get(DOCS), json=False)  # the docs are a page: HTML even then
    assert APIClient(REMOTE_ADDR=ELSEWHERE).get(DOCS).status_code == 200


def test_wrong_tokens_are_throttled_per_address(alice, counters):
    good = Token.objects.create(user=alice).key
    wrong = token_client(key="0" * 40)
    for _ in range(TOKEN_FAILURES):
        response = wrong.get(ME)
        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid token."}

    assert_throttled(wrong.get(ME))
    # Blocked means blocked: the right token from that address is refused as well...
    blocked = token_client(key=good).get(ME)
    assert_throttled(blocked)
    assert "wrong API token" in blocked.json()["detail"]
    # ...and served from another address.
    elsewhere = APIClient(REMOTE_ADDR=ELSEWHERE)
    elsewhere.credentials(HTTP_AUTHORIZATION=f"Token {good}")
    assert elsewhere.get(ME).status_code == 200


def test_right_tokens_do_not_count_as_failures(alice):
    client = token_client(alice)
    for _ in range(USER_LIMIT):
        assert client.get(ME).status_code == 200
    # Over the user rate, but no token failure: the refusal is the user throttle's.
    assert "wrong API token" not in client.get(ME).json()["detail"]


def test_an_empty_rate_means_no_limit(alice, settings):
    settings.API_THROTTLE_RATES = {**RATES, "user": None}
    client = token_client(alice)
    assert {client.get(ME).status_code for _ in range(USER_LIMIT * 2)} == {200}


@pytest.mark.parametrize("proxies, forwarded, expected", [
    (0, "203.0.113.5", "10.0.0.1"),                 # no proxy trusted: the header is ignored
    (1, "203.0.113.5", "203.0.113.5"),
    (1, "6.6.6.6, 203.0.113.5", "203.0.113.5"),     # what the client wrote itself is skipped
    (2, "6.6.6.6, 203.0.113.5, 10.1.1.1", "203.0.113.5"),
    (2, "203.0.113.5", "203.0.113.5"),
    (1, "", "10.0.0.1"),
])
def test_the_client_address_trusts_only_the_configured_proxies(settings, proxies, forwarded,
                                                               expected):
    settings.TRUSTED_PROXY_COUNT = proxies
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == expected


def test_behind_a_proxy_each_client_address_has_its_own_count(db, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = "10.0.0.1"
    first = APIClient(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="203.0.113.5")
    for _ in range(ANON_LIMIT):
        first.get(DOCS)
    assert first.get(DOCS).status_code == 429
    other = APIClient(REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR="203.0.113.6")
    assert other.get(DOCS).status_code == 200
