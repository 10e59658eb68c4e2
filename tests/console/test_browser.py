"""The operator console in headless Chromium (Playwright driving the system's
/usr/bin/chromium, as in tests/pages) against a live server and real nodes: loopback
``sshd`` test nodes (tests/harness) reached over SSH, with a stub ``svcadm`` made to fail.

- The superuser watches the overview while a change fails on one node: the failure and its
  reason appear without a reload within seconds; after the fault is removed, "Retry" turns
  the node green.
- The auditor opens every operator page and is refused every write.

Screenshots of each page at 1280 and 390 px are kept in ``var/screenshots/`` (``ops-*.png``,
next to the vDC pages' ones; ``SCREENSHOTS_DIR`` moves them), and no page is wider than the
phone at 390 px. Syncs run in-process (no broker): the change made by the test thread
syncs the nodes at its commit, as ``bin/run`` does. The test thread uses the ORM while the
browser runs, which Playwright's event loop makes Django refuse unless
``DJANGO_ALLOW_ASYNC_UNSAFE`` is set (only for this test: nothing is asynchronous here).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from config.celery import app as celery_app
from tests.console.conftest import PASSWORD, make_auditor
from tests.distribution.conftest import (  # noqa: F401 - fixtures
    make_cluster,
    ssh_transport,
    testnode_cluster,
    testnode_management_key,
)
from tests.harness import require_or_skip
from tests.pages.test_browser import SCREENSHOTS, launch

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
FAULT = "svcadm: Instance svc:/network/varpd:default is in maintenance state."
SHOTS = Path(os.environ.get("SCREENSHOTS_DIR") or SCREENSHOTS)


def _playwright():
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError as exc:
        require_or_skip(f"playwright not available: {exc}")
    return expect, sync_playwright


@pytest.fixture
def console_cluster(make_cluster, settings, monkeypatch, django_user_model):  # noqa: F811
    """cn01, cn02 (prague) and cn03 (brno) over SSH, all synced; root and auditor audrey."""
    from nodes.models import Node
    from overlays.distribution.queue import request_sync

    settings.OVERLAY_SYNC_DELAY = 0
    settings.OVERLAY_SSH_TIMEOUT = 5.0
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        cluster = make_cluster()
        for node_id in Node.objects.values_list("pk", flat=True):
            request_sync(node_id, reason="test: first sync")
        assert set(Node.objects.values_list("sync_status", flat=True)) == {"in_sync"}
        django_user_model.objects.create_superuser("root", "root@example.invalid", PASSWORD)
        make_auditor("audrey", PASSWORD)
        SHOTS.mkdir(parents=True, exist_ok=True)
        yield cluster
    finally:
        celery_app.conf.task_always_eager = eager


def _log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/ops/")


def _shoot(page, base: str, pages: dict[str, str], prefix: str) -> dict[str, int]:
    """Each page at the page's viewport; returns the document widths."""
    from playwright.sync_api import expect

    label = str(page.viewport_size["width"])
    widths = {}
    for name, url in pages.items():
        page.goto(f"{base}{url}")
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        widths[name] = page.evaluate("document.documentElement.scrollWidth")
        page.screenshot(path=str(SHOTS / f"{prefix}-{name}-{label}.png"), full_page=True)
    return widths


def _change_web01(ip: str) -> None:
    """A vNIC change on cn01: the other carriers of rule customers re-read its ARP table."""
    from overlays import services
    from overlays.models import Vnic

    vnic = Vnic.objects.get(vm_name="web01")
    vnic.ip = ip
    services.save(vnic)


@pytest.mark.django_db(transaction=True)
def test_the_superuser_sees_a_sync_fail_retries_it_and_sees_it_go_green(live_server,
                                                                         console_cluster):
    from nodes.models import Node

    expect, sync_playwright = _playwright()
    base = live_server.url
    from overlays.models import OverlayRule

    brno = console_cluster.tn("cn03")
    arp_file = OverlayRule.objects.get(name="customers").arp_file

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport=DESKTOP)
            page.set_default_timeout(15_000)
            _log_in(page, base, "root")
            expect(page.get_by_role("heading", level=1)).to_have_text("Cluster overview")
            row = page.locator('tr[data-node="cn03"]')
            expect(row.locator("[data-sync]")).to_have_attribute("data-sync", "in_sync")
            page.screenshot(path=str(SHOTS / "ops-overview-green-1280.png"), full_page=True)

            # The fault, then a change that needs cn03's varpd restarted.
            brno.fail("svcadm", FAULT)
            started = time.monotonic()
            _change_web01("192.168.10.91")
            expect(row.locator("[data-sync]")).to_have_attribute("data-sync", "failed",
                                                                 timeout=12_000)
            seen_after = time.monotonic() - started
            expect(row).to_contain_text("is in maintenance state")
            expect(row).to_contain_text("svcadm")
            expect(page.locator('tr[data-node="cn02"] [data-sync]')).to_have_attribute(
                "data-sync", "in_sync")
            page.screenshot(path=str(SHOTS / "ops-overview-failed-1280.png"), full_page=True)

            # Repaired: retry from the page, and it goes green.
            brno.succeed("svcadm")
            row.get_by_role("button", name=re.compile("Retry")).click()
            expect(page.locator(".messages")).to_contain_text("Sync of cn03 requested: in sync.")
            expect(page.locator('tr[data-node="cn03"] [data-sync]')).to_have_attribute(
                "data-sync", "in_sync")
            page.screenshot(path=str(SHOTS / "ops-overview-retried-1280.png"), full_page=True)
        finally:
            browser.close()

    print(f"MEASURED failure visible on the overview {seen_after:.1f} s after the change")
    assert seen_after < 12
    assert Node.objects.get(hostname="cn03").sync_status == "in_sync"
    assert "192.168.10.91" in console_cluster.read("cn03", arp_file)


@pytest.mark.django_db(transaction=True)
def test_every_operator_page_at_1280_and_390_px(live_server, console_cluster):
    expect, sync_playwright = _playwright()
    base = live_server.url
    pages = {"overview": "/ops/", "requirements": "/ops/requirements/",
             "node": "/ops/nodes/cn03/", "node-drift": "/ops/nodes/cn01/?drift=1",
             "audit": "/ops/audit/"}
    widths = {}
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            for viewport in (DESKTOP, PHONE):
                page = browser.new_page(viewport=viewport)
                page.set_default_timeout(15_000)
                _log_in(page, base, "root")
                for name, width in _shoot(page, base, pages, "ops").items():
                    widths[(viewport["width"], name)] = width
                expect(page.get_by_role("heading", name=re.compile("Drift"))).to_have_count(0)
                page.close()
        finally:
            browser.close()

    assert {k: w for k, w in widths.items() if k[0] == 390 and w > 390} == {}
    assert all(w <= 1280 for w in widths.values()), widths


@pytest.mark.django_db(transaction=True)
def test_the_auditor_sees_every_page_and_every_write_is_refused(live_server, console_cluster):
    from nodes.models import Deployment

    expect, sync_playwright = _playwright()
    base = live_server.url
    deployments = Deployment.objects.count()
    pages = {"overview": "/ops/", "requirements": "/ops/requirements/",
             "node": "/ops/nodes/cn03/", "audit": "/ops/audit/", "vdcs": "/"}
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            for viewport in (DESKTOP, PHONE):
                page = browser.new_page(viewport=viewport)
                page.set_default_timeout(15_000)
                _log_in(page, base, "audrey")
                expect(page.locator(".readonly-note")).to_contain_text("can change nothing")
                expect(page.get_by_role("button", name=re.compile("Sync|Retry"))).to_have_count(0)
                widths = _shoot(page, base, pages, "ops-auditor")
                assert {n: w for n, w in widths.items() if w > viewport["width"]} == {}
                page.close()

            page = browser.new_page(viewport=DESKTOP)
            _log_in(page, base, "audrey")
            # The network edit form opens (it reads), but saving it is refused with the reason.
            page.goto(f"{base}/networks/web/edit/")
            page.get_by_role("button", name=re.compile("Save")).click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
            expect(page.locator("main")).to_contain_text("Auditors have read-only access")
            page.screenshot(path=str(SHOTS / "ops-auditor-write-refused-1280.png"))
            # Posting straight to the sync actions and the API, with a valid CSRF token.
            page.goto(f"{base}/ops/")
            statuses = page.evaluate("""async () => {
                const token = document.querySelector('[name=csrfmiddlewaretoken]')
                    || {value: document.cookie.replace(/.*csrftoken=([^;]*).*/, '$1')};
                const post = (url, body) => fetch(url, {method: 'POST', credentials: 'same-origin',
                    headers: {'X-CSRFToken': token.value, 'Content-Type': 'application/json'},
                    body: body || ''}).then(r => r.status);
                return [await post('/ops/sync/'), await post('/ops/nodes/cn03/sync/'),
                        await post('/api/v1/sync/'), await post('/api/v1/ipsec-keys/rotate/'),
                        await post('/api/v1/overlay-rules/', '{"name": "x"}')];
            }""")
        finally:
            browser.close()

    assert statuses == [403, 403, 403, 403, 403]
    assert Deployment.objects.count() == deployments
