"""Login lockout (django-axes): after the failure limit a username is blocked from that
address, on the login page and the admin's, with one sentence that never tells whether
the user exists."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.utils import timezone

from config.security import lockout_message
from tests.security.conftest import FAILURE_LIMIT, PASSWORD

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"
HERE = "192.0.2.10"
ELSEWHERE = "192.0.2.99"


def attempt(client, username: str, password: str = "wrong", *, url: str = LOGIN,
            address: str = HERE):
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=address)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail_until_locked(client, username: str, **kwargs) -> list:
    return [attempt(client, username, **kwargs) for _ in range(FAILURE_LIMIT)]


def test_the_failure_limit_locks_the_username_out(alice, browser, lockout_store):
    responses = fail_until_locked(browser, "alice")

    assert [r.status_code for r in responses[:-1]] == [200] * (FAILURE_LIMIT - 1)
    assert "Please enter a correct username and password" in responses[0].content.decode()
    locked = responses[-1]
    assert locked.status_code == 429
    assert lockout_message() in locked.content.decode()
    assert "Please enter a correct username" not in locked.content.decode()

    # The right password does not open a locked-out username either.
    again = attempt(browser, "alice", PASSWORD)
    assert again.status_code == 429
    assert lockout_message() in again.content.decode()
    assert not logged_in(browser)


def test_the_lockout_page_is_the_login_page_with_a_clear_sentence(alice, browser):
    locked = fail_until_locked(browser, "alice")[-1]

    page = locked.content.decode()
    assert "<h1>Log in</h1>" in page
    assert re.search(r"Too many failed logins with this username from your address\. "
                     r"Logging in is blocked for 15 minutes", page)
    assert locked["Retry-After"] == str(15 * 60)


def _normalised(response, username: str) -> tuple[int, str]:
    body = response.content.decode().replace(username, "USERNAME")
    body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", body)
    return response.status_code, body


def test_an_unknown_user_reads_exactly_what_a_real_user_reads(alice, client, browser,
                                                             lockout_store):
    """The same answers, attempt by attempt, for a wrong password of alice and for a
    username nobody has, before, at and after the lockout."""
    real = [*fail_until_locked(client, "alice"), attempt(client, "alice", PASSWORD)]
    unknown = [*fail_until_locked(browser, "mallory"), attempt(browser, "mallory", PASSWORD)]

    assert ([_normalised(r, "alice") for r in real]
            == [_normalised(r, "mallory") for r in unknown])
    assert real[-1].status_code == 429


def test_the_lockout_is_per_username_and_address(alice, bob, client, browser, lockout_store):
    fail_until_locked(browser, "alice")

    from_elsewhere = attempt(client, "alice", PASSWORD, address=ELSEWHERE)
    assert from_elsewhere.status_code == 302
    client.logout()
    other_user = attempt(client, "bob", PASSWORD)
    assert other_user.status_code == 302


def test_a_successful_login_resets_the_count(alice, browser):
    for _ in range(FAILURE_LIMIT - 1):
        attempt(browser, "alice")
    assert attempt(browser, "alice", PASSWORD).status_code == 302
    browser.logout()

    for _ in range(FAILURE_LIMIT - 1):
        assert attempt(browser, "alice").status_code == 200
    assert attempt(browser, "alice", PASSWORD).status_code == 302


def test_the_admin_login_is_locked_out_too(django_user_model, browser, lockout_store):
    django_user_model.objects.create_superuser("root", "root@example.invalid", PASSWORD)

    locked = fail_until_locked(browser, "root", url=ADMIN_LOGIN)[-1]

    assert locked.status_code == 429
    page = locked.content.decode()
    assert lockout_message() in page
    assert 'id="login-form"' in page  # the admin's own login page
    assert attempt(browser, "root", PASSWORD, url=ADMIN_LOGIN).status_code == 429
    # One count for both pages: the accounts login is closed to that username as well.
    assert attempt(browser, "root", PASSWORD).status_code == 429


def test_the_lockout_ends_after_the_cool_off(alice, browser):
    fail_until_locked(browser, "alice")
    assert attempt(browser, "alice", PASSWORD).status_code == 429

    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    assert attempt(browser, "alice", PASSWORD).status_code == 302
    assert logged_in(browser)


@pytest.mark.parametrize("minutes, shown", [(15, "15 minutes"), (0.5, "1 minute;")])
def test_the_sentence_says_how_long_the_block_lasts(settings, minutes, shown):
    settings.AXES_COOLOFF_TIME = timedelta(minutes=minutes)
    assert shown in lockout_message()
