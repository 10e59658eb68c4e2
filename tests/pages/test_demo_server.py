"""The demo as ``bin/run`` starts it (its environment from demo/env.sh): debug off unless
asked, the project's own 404 page for another vDC's URL, static files still served.

A real ``manage.py runserver`` on a loopback port with a fresh SQLite database, the demo
cluster imported by ``manage.py demo``; requests as a browser makes them (session, CSRF).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from django.conf import settings

from tests.harness.testnodes import free_port

BASE_DIR = Path(settings.BASE_DIR)
DJANGO_DEBUG_PAGE = ("Using the URLconf", "Django tried these URL patterns", "DEBUG = True",
                     "Traceback")


def _demo_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "DATABASE_", "CELERY_", "REDIS_", "OVERLAY_"))
           and k != "DEBUG"}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}",
               OVERLAY_LOCAL_ROOT=str(tmp_path / "node-files"), LOG_LEVEL="WARNING", **extra)
    return env


def _start_demo(tmp_path: Path, port: int, **extra: str) -> subprocess.Popen:
    python = sys.executable
    script = (f"source demo/env.sh && {python} manage.py migrate --noinput -v0 && "
              f"{python} manage.py demo >/dev/null && "
              f"exec {python} manage.py runserver --noreload 127.0.0.1:{port}")
    return subprocess.Popen(["bash", "-c", script], cwd=BASE_DIR, env=_demo_env(tmp_path, **extra),
                            stdout=subprocess.DEVNULL, stderr=open(tmp_path / "server.log", "w"),
                            start_new_session=True)


def _wait_until_up(server: subprocess.Popen, base: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the demo server stopped: {log.read_text()[-2000:]}")
        try:
            requests.get(f"{base}/healthz", timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.3)
    pytest.fail(f"the demo server did not answer within 120 s: {log.read_text()[-2000:]}")


@pytest.fixture
def demo_server(tmp_path) -> Iterator[str]:
    """The demo on a free loopback port, with bin/run's environment and nothing else."""
    port = free_port()
    server = _start_demo(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(server, base, tmp_path / "server.log")
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # its own session: bash and the server only
        server.wait(timeout=20)


def _log_in(base: str, username: str, password: str) -> requests.Session:
    session = requests.Session()
    form = session.get(f"{base}/accounts/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    answer = session.post(f"{base}/accounts/login/", timeout=10, data={
        "username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/accounts/login/"})
    assert answer.status_code == 200 and "Log out" in answer.text, answer.text[:500]
    return session


def _unmasked(html: str) -> str:
    """The page without its CSRF token, which is masked differently on every answer."""
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def test_demo_runs_with_debug_off_and_its_own_error_pages(demo_server):
    base = demo_server
    alice = _log_in(base, "alice", "demo")

    own = alice.get(f"{base}/vdcs/acme/", timeout=10)
    assert own.status_code == 200 and "vDC acme" in own.text

    # Another vDC's URL: the plain 404, exactly as for a page that does not exist.
    other = alice.get(f"{base}/vdcs/globex/", timeout=10)
    missing = alice.get(f"{base}/vdcs/no-such-vdc/", timeout=10)
    for answer in (other, missing):
        assert answer.status_code == 404
        assert "<h1>Page not found</h1>" in answer.text
        assert not [marker for marker in DJANGO_DEBUG_PAGE if marker in answer.text]
        assert "200-299" not in answer.text and "globex-app" not in answer.text
    assert _unmasked(other.text) == _unmasked(missing.text)

    # An unknown URL for an anonymous visitor: the same page, no URL pattern list.
    anonymous = requests.get(f"{base}/no/such/page/", timeout=10)
    assert anonymous.status_code == 404 and "<h1>Page not found</h1>" in anonymous.text
    assert "vdcs/&lt;str:name&gt;" not in anonymous.text
    assert "Using the URLconf" not in anonymous.text

    # Static files are still served (WhiteNoise), debug off.
    script = alice.get(f"{base}/static/vdc/pages.js", timeout=10)
    assert script.status_code == 200 and "error-summary" in script.text


def test_debug_is_on_only_when_asked(tmp_path):
    def debug_of(**extra: str) -> str:
        code = "from django.conf import settings; print(settings.DEBUG)"
        done = subprocess.run(
            ["bash", "-c", f"source demo/env.sh && {sys.executable} -c "
                           f"'import django, os; os.environ.setdefault(\"DJANGO_SETTINGS_MODULE\", "
                           f"\"config.settings\"); django.setup(); {code}'"],
            cwd=BASE_DIR, env=_demo_env(tmp_path, **extra), capture_output=True, text=True,
            check=True)
        return done.stdout.strip()

    assert debug_of() == "False"
    assert debug_of(DEBUG="1") == "True"
    assert debug_of(DJANGO_DEBUG="1") == "True"
