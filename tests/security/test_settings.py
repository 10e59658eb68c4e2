"""Security settings from the environment: HTTPS protections on by default with debug off,
each settable; `check --deploy` clean with README's production settings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_KEY = "k" * 20 + "-production-secret-key-for-the-settings-test-" + "x" * 10
# Variables this module sets; anything else (DATABASE_URL, REDIS_URL of CI) is dropped too,
# so that each case starts from the embedded defaults.
OWN_PREFIXES = ("DJANGO_", "REDIS_URL", "API_THROTTLE_", "LOGIN_", "OVERLAY_SECRETS_KEYS",
                "DATABASE_URL")

SECURITY_SETTINGS = (
    "DEBUG", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "X_FRAME_OPTIONS",
    "SECURE_REFERRER_POLICY", "SECURE_CONTENT_TYPE_NOSNIFF", "SECURE_PROXY_SSL_HEADER",
    "SECURE_REDIRECT_EXEMPT", "TRUSTED_PROXY_COUNT", "AXES_HANDLER", "AXES_FAILURE_LIMIT",
    "AXES_ENABLED", "API_THROTTLE_RATES",
)
HTTPS_ON = {
    "SECURE_SSL_REDIRECT": True, "SECURE_HSTS_SECONDS": 31_536_000,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": True, "SECURE_HSTS_PRELOAD": True,
    "SESSION_COOKIE_SECURE": True, "CSRF_COOKIE_SECURE": True,
}


def environment(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env.update(variables)
    return env


def settings_under(**variables: str) -> dict:
    """The settings a fresh process gets from these environment variables."""
    script = ("import json; from django.conf import settings as s; "
              f"print(json.dumps({{n: getattr(s, n, None) for n in {SECURITY_SETTINGS!r}}}, "
              "default=str))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=environment(**variables),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_with_debug_off_every_https_protection_is_on():
    values = settings_under(DJANGO_SECRET_KEY=PRODUCTION_KEY)

    assert values["DEBUG"] is False
    assert {name: values[name] for name in HTTPS_ON} == HTTPS_ON
    assert values["X_FRAME_OPTIONS"] == "DENY"
    assert values["SECURE_REFERRER_POLICY"] == "same-origin"
    assert values["SECURE_CONTENT_TYPE_NOSNIFF"] is True
    assert values["SECURE_PROXY_SSL_HEADER"] is None  # trusted only when configured


def test_the_development_setup_serves_plain_http():
    values = settings_under()

    assert values["DEBUG"] is True
    assert not any(values[name] for name in HTTPS_ON)


def test_debug_asked_for_in_production_turns_the_https_defaults_off():
    values = settings_under(DJANGO_SECRET_KEY=PRODUCTION_KEY, DJANGO_DEBUG="true")
    assert not any(values[name] for name in HTTPS_ON)


def test_each_protection_is_settable():
    values = settings_under(
        DJANGO_SECRET_KEY=PRODUCTION_KEY, DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_SECURE_HSTS_SECONDS="3600", DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS="false",
        DJANGO_SECURE_HSTS_PRELOAD="false", DJANGO_SESSION_COOKIE_SECURE="false",
        DJANGO_CSRF_COOKIE_SECURE="false", DJANGO_X_FRAME_OPTIONS="SAMEORIGIN",
        DJANGO_SECURE_REFERRER_POLICY="no-referrer",
        DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto,https",
        DJANGO_SECURE_REDIRECT_EXEMPT=r"^healthz/$", DJANGO_TRUSTED_PROXY_COUNT="2")

    assert {name: values[name] for name in HTTPS_ON} == {
        **dict.fromkeys(HTTPS_ON, False), "SECURE_HSTS_SECONDS": 3600}
    assert values["X_FRAME_OPTIONS"] == "SAMEORIGIN"
    assert values["SECURE_REFERRER_POLICY"] == "no-referrer"
    assert values["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert values["SECURE_REDIRECT_EXEMPT"] == ["^healthz/$"]
    assert values["TRUSTED_PROXY_COUNT"] == 2


def test_a_malformed_proxy_ssl_header_is_refused_at_start():
    done = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; settings.DEBUG"], cwd=ROOT,
        env=environment(DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto"),
        capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "DJANGO_SECURE_PROXY_SSL_HEADER is a header and a value" in done.stderr


def test_limits_come_from_the_environment():
    values = settings_under(API_THROTTLE_USER="7/hour", API_THROTTLE_ANON="",
                            API_THROTTLE_TOKEN_FAILURES="2/min", LOGIN_FAILURE_LIMIT="9",
                            LOGIN_LOCKOUT_ENABLED="false")

    assert values["API_THROTTLE_RATES"] == {"user": "7/hour", "anon": None,
                                            "token_failures": "2/min"}
    assert values["AXES_FAILURE_LIMIT"] == 9
    assert values["AXES_ENABLED"] is False


@pytest.mark.parametrize("redis_url, handler", [
    ("", "axes.handlers.database.AxesDatabaseHandler"),
    ("redis://127.0.0.1:6379/0", "axes.handlers.cache.AxesCacheHandler"),
])
def test_login_failures_are_counted_in_redis_when_there_is_one(redis_url, handler):
    assert settings_under(REDIS_URL=redis_url)["AXES_HANDLER"] == handler


def readme_production_settings() -> dict[str, str]:
    """The variables of README's "Production settings" block, placeholders filled in."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Production settings", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    placeholders = {"DJANGO_SECRET_KEY": PRODUCTION_KEY,
                    "OVERLAY_SECRETS_KEYS": Fernet.generate_key().decode()}
    variables = {}
    for line in block.splitlines():
        name, _, value = line.partition("=")
        variables[name] = placeholders[name] if value.startswith("<") else value
    assert {"DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS"} <= variables.keys()
    return variables


def check_deploy(tmp_path, **variables: str) -> subprocess.CompletedProcess:
    # An empty SQLite database: `check` must not need the PostgreSQL server of the example.
    variables["DATABASE_URL"] = f"sqlite:///{tmp_path / 'check.sqlite3'}"
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=environment(**variables), capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_with_readmes_production_settings(tmp_path):
    done = check_deploy(tmp_path, **readme_production_settings())

    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues (0 silenced)." in done.stdout


def test_check_deploy_notices_a_protection_turned_off(tmp_path):
    done = check_deploy(tmp_path, **readme_production_settings(),
                        DJANGO_SECURE_SSL_REDIRECT="false")

    assert done.returncode != 0
    assert "security.W008" in done.stdout + done.stderr


def test_the_headers_a_production_response_carries(client, settings, db):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.CSRF_COOKIE_SECURE = True

    plain = client.get("/accounts/login/")
    assert plain.status_code == 301
    assert plain["Location"] == "https://testserver/accounts/login/"

    secure = client.get("/accounts/login/", secure=True)
    assert secure.status_code == 200
    assert secure["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert secure["X-Frame-Options"] == "DENY"
    assert secure["Referrer-Policy"] == "same-origin"
    assert secure["X-Content-Type-Options"] == "nosniff"
    assert secure.cookies["csrftoken"]["secure"] is True


def test_behind_a_proxy_the_forwarded_scheme_counts(client, settings, db):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    assert client.get("/accounts/login/").status_code == 301
    assert client.get("/accounts/login/", HTTP_X_FORWARDED_PROTO="https").status_code == 200
