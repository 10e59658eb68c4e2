"""alice in headless Chromium (Playwright, the system's /usr/bin/chromium) against a live
server: she creates, moves and deletes a vNIC; every page of hers fits a 390 px phone
screen without scrolling sideways; after a failed submit the focus is on the error summary;
the network form fills in the next free VLAN and the MTU guidance as she picks the overlay.

Screenshots of each page at 1280 and 390 px are kept in var/screenshots/. The ORM is not
used while the browser runs (Playwright's event loop makes Django refuse it).
"""

from __future__ import annotations

import re

import pytest

from tests.harness import require_or_skip
from tests.pages.conftest import PASSWORD, vnic_urls
from tests.pages.test_browser import SCREENSHOTS, launch

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


def _playwright():
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError as exc:
        require_or_skip(f"playwright not available: {exc}")
    return expect, sync_playwright


def _log_in(page, base: str, username: str = "alice") -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/$"))


def _focused_id(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def _page_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@pytest.mark.django_db(transaction=True)
def test_alice_creates_moves_and_deletes_a_vnic(live_server, users):
    from overlays.models import Vnic

    expect, sync_playwright = _playwright()
    base = live_server.url
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport=PHONE)
            page.set_default_timeout(15_000)
            _log_in(page, base)

            # From her network's page to the new-vNIC form.
            page.goto(f"{base}/networks/acme-web/")
            page.get_by_role("link", name="Add a vNIC").click()
            expect(page).to_have_url(f"{base}/networks/acme-web/vnics/new/")
            expect(page.get_by_label("IPv4 address")).to_have_value("192.168.10.2")
            page.get_by_label("VM name").fill("web03")
            page.get_by_label("Node").select_option(label="cn02.prague")
            page.get_by_label("MAC address").fill("02:08:20:aa:00:09")
            page.get_by_label("IPv4 address").fill("10.1.2.3")
            page.get_by_role("button", name="Create vNIC").click()

            # Refused: the sentence next to the field, the focus on the summary.
            expect(page.locator("#id_ip_error")).to_contain_text("outside")
            expect(page.locator("#error-summary")).to_be_focused()
            assert _focused_id(page) == "error-summary"
            page.screenshot(path=str(SCREENSHOTS / "vnic-form-error-390.png"), full_page=True)
            # Its link puts the focus in the field.
            page.locator("#error-summary a[href='#id_ip']").click()
            expect(page.get_by_label("IPv4 address")).to_be_focused()

            page.get_by_label("IPv4 address").fill("192.168.10.13")
            page.get_by_role("button", name="Create vNIC").click()
            expect(page).to_have_url(f"{base}/networks/acme-web/")
            expect(page.get_by_role("status")).to_have_text(re.compile(
                r"vNIC of web03 \(02:08:20:aa:00:09\) created on network acme-web\. "
                r"(Sync queued for|Synced) 4 nodes: cn01\.prague, cn03\.prague, "
                r"cn04\.prague, cn21\.brno\."))
            expect(page.get_by_role("row").filter(has_text="web03")).to_contain_text(
                "192.168.10.13")

            # Move it to acme-db, first with an address of the old network.
            page.get_by_role("link", name="Move vNIC 02:08:20:aa:00:09 of web03").click()
            page.get_by_label("New network").select_option(
                label="acme-db (customers/100, VLAN 11, 192.168.11.0/24)")
            page.get_by_role("button", name="Move vNIC").click()
            expect(page.locator("#id_ip_error")).to_contain_text("192.168.11.0/24")
            expect(page.locator("#error-summary")).to_be_focused()
            page.get_by_label("IPv4 address").fill("192.168.11.30")
            page.get_by_role("button", name="Move vNIC").click()
            expect(page).to_have_url(f"{base}/networks/acme-db/")
            expect(page.get_by_role("status")).to_contain_text(
                "vNIC of web03 (02:08:20:aa:00:09) moved from network acme-web to acme-db.")
            expect(page.get_by_role("row").filter(has_text="web03")).to_contain_text(
                "192.168.11.30")

            # Delete it.
            page.get_by_role("link", name="Delete vNIC 02:08:20:aa:00:09 of web03").click()
            page.get_by_role("button", name="Delete vNIC of web03").click()
            expect(page).to_have_url(f"{base}/networks/acme-db/")
            expect(page.get_by_role("status")).to_contain_text(
                "vNIC of web03 (02:08:20:aa:00:09) deleted from network acme-db.")
            expect(page.get_by_role("row").filter(has_text="web03")).to_have_count(0)

            # bob's network: the plain 404.
            response = page.goto(f"{base}/networks/globex-app/vnics/new/")
            assert response is not None and response.status == 404
            expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")

            # The superuser's audit page shows alice's three changes, before and after.
            operator = browser.new_context(viewport=DESKTOP).new_page()
            operator.set_default_timeout(15_000)
            _log_in(operator, base, "root")
            operator.goto(f"{base}/ops/audit/?user=alice")
            trail = operator.locator("main")
            expect(trail).to_contain_text("3 entries match the filter")
            expect(trail).to_contain_text("02:08:20:aa:00:09")
            expect(trail).to_contain_text("192.168.10.13")  # before the move
            expect(trail).to_contain_text("192.168.11.30")  # after it
            operator.screenshot(path=str(SCREENSHOTS / "ops-audit-alice-1280.png"),
                                full_page=True)
        finally:
            browser.close()

    assert not Vnic.objects.filter(vm_name="web03").exists()


@pytest.mark.django_db(transaction=True)
def test_every_page_of_alice_fits_390_px_and_is_kept_as_screenshots(live_server, users):
    from overlays.models import Vnic

    expect, sync_playwright = _playwright()
    base = live_server.url
    web01 = Vnic.objects.get(vm_name="web01").pk
    pages = {
        "home": "/", "vdc": "/vdcs/acme/", "vdc-vnics": "/vdcs/acme/vnics/",
        "network-new": "/vdcs/acme/networks/new/", "network": "/networks/acme-web/",
        "network-edit": "/networks/acme-web/edit/", "network-delete": "/networks/acme-web/delete/",
        "vnic-new": "/networks/acme-web/vnics/new/",
        **dict(zip(("vnic-edit", "vnic-move", "vnic-delete"), vnic_urls(web01), strict=True)),
        "not-found": "/vdcs/globex/",
    }
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    widths = {}
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            for label, viewport in (("390", PHONE), ("1280", DESKTOP)):
                page = browser.new_page(viewport=viewport)
                page.set_default_timeout(15_000)
                _log_in(page, base)
                for name, url in pages.items():
                    page.goto(f"{base}{url}")
                    expect(page.get_by_role("heading", level=1)).to_be_visible()
                    widths[(label, name)] = _page_width(page)
                    page.screenshot(path=str(SCREENSHOTS / f"vdc-{name}-{label}.png"),
                                    full_page=True)
                page.close()
        finally:
            browser.close()

    too_wide = {name: width for (label, name), width in widths.items()
                if label == "390" and width > 390}
    assert too_wide == {}
    assert all(width <= 1280 for width in widths.values()), widths


@pytest.mark.django_db(transaction=True)
def test_the_network_form_follows_the_chosen_overlay_and_focuses_its_error_summary(
        live_server, users):
    expect, sync_playwright = _playwright()
    base = live_server.url

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport=PHONE)
            page.set_default_timeout(15_000)
            _log_in(page, base)
            page.goto(f"{base}/vdcs/acme/networks/new/")
            assert _focused_id(page) != "error-summary"
            expect(page.get_by_label("VLAN id")).to_have_value("10")

            # acme uses VLAN 10 and 11 of customers/100: choosing VXLAN 100 suggests 12.
            page.get_by_label("VXLAN id").fill("100")
            page.get_by_label("VXLAN id").dispatch_event("change")
            expect(page.get_by_label("VLAN id")).to_have_value("12")
            expect(page.locator("#id_vlan_id_hint")).to_have_text(
                "Next free VLAN id in customers/100: 12.")

            # The MTU guidance follows the rule.
            expect(page.locator("#id_mtu_hint")).to_contain_text("1388 with a VLAN tag")
            page.get_by_label("Overlay rule").select_option(label="lab")
            expect(page.locator("#id_mtu_hint")).to_contain_text(
                "Rule lab has MTU 1400; its nodes are in one PDC")

            # A VLAN she typed is hers: changing the VXLAN only updates the hint.
            page.get_by_label("Overlay rule").select_option(label="customers")
            page.get_by_label("VLAN id").fill("15")
            page.get_by_label("VXLAN id").fill("101")
            page.get_by_label("VXLAN id").dispatch_event("change")
            expect(page.locator("#id_vlan_id_hint")).to_have_text(
                "Next free VLAN id in customers/101: 10.")
            expect(page.get_by_label("VLAN id")).to_have_value("15")

            # A failed submit: the focus moves to the error summary.
            page.get_by_label("Name").fill("globex-app")
            page.get_by_label("IPv4 network").fill("192.168.40.0/24")
            page.get_by_role("button", name="Create network").click()
            expect(page.locator("#error-summary")).to_be_focused()
            assert _focused_id(page) == "error-summary"
            expect(page.locator("#error-summary")).to_contain_text(
                "Name: This name is taken")
            page.screenshot(path=str(SCREENSHOTS / "vdc-network-form-summary-390.png"),
                            full_page=True)
        finally:
            browser.close()
