"""Nothing from the internet: every page, Swagger UI included, loads with only the server's
own files, as on an air-gapped management server.

A headless Chromium (the system's, driven by Playwright as in tests/pages/test_browser.py)
opens each page with every request to a host other than the live server's loopback
address aborted and recorded; any such request fails the test, and so does a static file
that does not load. Without a browser, the static files are checked through WhiteNoise with
DEBUG off (the live server serves them itself, so only this check covers production).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.templatetags.static import static
from django.test import Client

from tests.harness import require_or_skip
from tests.pages.conftest import PASSWORD, alice_urls
from tests.pages.test_browser import launch

LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}
SWAGGER_FILES = ("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
                 "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui.css",
                 "drf_spectacular_sidecar/swagger-ui-dist/favicon-32x32.png")


def test_docs_page_names_only_local_assets(db, settings):
    settings.DEBUG = False
    html = Client().get("/api/v1/docs/").content.decode()
    assert "cdn" not in html.lower()
    for name in SWAGGER_FILES:
        assert static(name) in html


@pytest.mark.parametrize("name", SWAGGER_FILES)
def test_static_files_are_served_with_debug_off(db, settings, name):
    settings.DEBUG = False
    response = Client().get(static(name))
    assert response.status_code == 200
    assert b"".join(response.streaming_content)


def visit_all(page, base: str, paths: list[str], problems: list[str]) -> None:
    from playwright.sync_api import expect

    for path in paths:
        response = page.goto(f"{base}{path}", wait_until="networkidle")
        if response is None or response.status >= 400:
            problems.append(f"{path}: HTTP {response.status if response else 'no response'}")
        if path == "/api/v1/docs/":
            # Swagger UI rendered from the sidecar's files, with the schema's operations.
            expect(page.locator("#swagger-ui .swagger-ui .info .title")).to_contain_text(
                "Overlay manager API")
            expect(page.locator("#swagger-ui .opblock").first).to_be_visible()
            page.wait_for_load_state("networkidle")


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/", wait_until="networkidle")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    # vDC admins land on "/", operators on "/ops/".
    page.wait_for_url(lambda url: url in (f"{base}/", f"{base}/ops/"))


@pytest.mark.django_db(transaction=True)
def test_every_page_loads_with_the_internet_blocked(live_server, users):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        require_or_skip(f"playwright not available: {exc}")
    base = live_server.url
    blocked: list[str] = []
    problems: list[str] = []

    def only_loopback(route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("blockedbyclient")

    def failed_file(response) -> None:
        if response.status >= 400 and "/static/" in response.url:
            problems.append(f"{response.url}: HTTP {response.status}")

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            for user, paths in (
                (None, ["/accounts/login/", "/admin/login/"]),
                ("alice", alice_urls()),
                ("root", ["/", "/admin/", "/admin/nodes/node/", "/admin/overlays/vnic/",
                          "/api/v1/nodes/", "/api/v1/docs/", "/ops/", "/ops/requirements/",
                          "/ops/audit/", "/ops/nodes/cn21.brno/"]),
            ):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.route("**/*", only_loopback)
                page = context.new_page()
                page.set_default_timeout(15_000)
                page.on("response", failed_file)
                page.on("requestfailed", lambda request: problems.append(
                    f"{request.url}: {request.failure}") if request.url not in blocked else None)
                if user:
                    log_in(page, base, user)
                visit_all(page, base, paths, problems)
                context.close()
        except AssertionError as exc:  # a page did not render: say first what was blocked
            if blocked:
                raise AssertionError(f"requests to the internet: {blocked}") from exc
            raise
        finally:
            browser.close()

    assert blocked == [], f"requests to the internet: {blocked}"
    assert problems == [], problems
