"""alice in a real browser (headless Chromium from Debian, driven by Playwright) against a
live server: log in, read her ranges, get an error sentence, fix it, see the network, and
find bob's vDC closed to her.

Nothing is downloaded: Playwright drives the system's /usr/bin/chromium. The ORM is not
used while the browser runs (Playwright's event loop makes Django refuse it), so the
database is read before and after.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.conf import settings

from tests.harness import require_or_skip
from tests.pages.conftest import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"
OUT_OF_RANGE = "VXLAN 5000 is outside vDC acme's allowed VXLAN ids (100-199)."


def launch(playwright):
    if not os.path.exists(CHROMIUM):
        require_or_skip(f"chromium not available: {CHROMIUM} is missing "
                        "(apt-get install chromium)")
    try:
        return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception as exc:  # noqa: BLE001 - any launch failure means "no browser here"
        require_or_skip(f"chromium not available: {exc}")


@pytest.mark.django_db(transaction=True)
def test_alice_manages_her_networks_in_a_real_browser(live_server, users):
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError as exc:
        require_or_skip(f"playwright not available: {exc}")
    from overlays.models import VirtualNetwork

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    screenshot = SCREENSHOTS / "vdc-network-form-error.png"
    base = live_server.url

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(15_000)

            # Anonymous: sent to the login form; logging in lands on "/".
            page.goto(f"{base}/")
            expect(page).to_have_url(f"{base}/accounts/login/?next=/")
            page.get_by_label("Username").fill("alice")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            expect(page).to_have_url(f"{base}/")
            expect(page.get_by_role("heading", level=1)).to_have_text("My virtual datacenters")

            # Her vDC's ranges and usage.
            acme = page.get_by_role("region", name="acme")
            expect(acme).to_contain_text("VMS_NET_VXLAN_ALLOWED")
            expect(acme).to_contain_text("100-199")
            expect(acme).to_contain_text("10-20")
            expect(acme).to_contain_text("Next free VXLAN id")
            expect(page.locator("body")).not_to_contain_text("globex")

            # A VXLAN id outside her range: the model's sentence next to the VXLAN field.
            acme.get_by_role("link", name="Create a network in acme").click()
            expect(page).to_have_url(f"{base}/vdcs/acme/networks/new/")
            expect(page.get_by_label("VXLAN id")).to_have_value("101")
            page.get_by_label("Name").fill("acme-app")
            page.get_by_label("Overlay rule").select_option(label="customers")
            page.get_by_label("VXLAN id").fill("5000")
            page.get_by_label("VLAN id").fill("12")
            page.get_by_label("IPv4 network").fill("192.168.20.0/24")
            page.get_by_label("Gateway").fill("192.168.20.1")
            page.get_by_role("button", name="Create network").click()
            vxlan = page.get_by_label("VXLAN id")
            expect(vxlan).to_have_attribute("aria-invalid", "true")
            error = page.locator("#id_vxlan_id_error")
            expect(error).to_have_text(OUT_OF_RANGE)
            # "Next to": the sentence is the element right after the input.
            assert vxlan.evaluate("el => el.nextElementSibling.id") == "id_vxlan_id_error"
            expect(page.locator("ul.errorlist")).to_have_count(1)
            page.screenshot(path=str(screenshot), full_page=True)

            # Fixed: the success message and the network in her vDC's list.
            page.get_by_label("VXLAN id").fill("101")
            page.get_by_role("button", name="Create network").click()
            expect(page).to_have_url(f"{base}/vdcs/acme/")
            expect(page.get_by_role("status")).to_have_text("Network acme-app created.")
            row = page.get_by_role("row").filter(has_text="acme-app")
            expect(row).to_contain_text("customers/101")
            expect(row).to_contain_text("192.168.20.0/24")

            # bob's vDC: a 404 page that tells her nothing about it.
            response = page.goto(f"{base}/vdcs/globex/")
            assert response is not None and response.status == 404
            expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
            expect(page.locator("body")).not_to_contain_text("200-299")
        finally:
            browser.close()

    network = VirtualNetwork.objects.get(name="acme-app")
    assert (network.vdc.name, network.vxlan_id, network.vlan_id) == ("acme", 101, 12)
    assert not VirtualNetwork.objects.filter(vxlan_id=5000).exists()
    assert screenshot.stat().st_size > 10_000
