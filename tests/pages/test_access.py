"""Who may open which page: alice her vDC's, bob not alice's, anonymous users nothing."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.pages.conftest import alice_urls, bob_only_urls

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", alice_urls())
def test_every_page_of_her_vdc_loads_for_alice(alice, url):
    response = alice.get(url)

    assert response.status_code == 200
    assert b"Signed in as alice" in response.content


@pytest.mark.parametrize("url", [u for u in alice_urls() if u != "/"])
def test_bob_gets_404_on_every_page_of_acme(bob, url):
    response = bob.get(url)

    assert response.status_code == 404
    assert b"acme" not in response.content


@pytest.mark.parametrize("url", bob_only_urls())
def test_alice_gets_404_on_every_page_of_globex(alice, url):
    assert alice.get(url).status_code == 404


@pytest.mark.parametrize("url", bob_only_urls())
def test_posting_to_another_vdcs_pages_is_404_and_changes_nothing(alice, url):
    from overlays.models import VirtualNetwork

    before = list(VirtualNetwork.objects.order_by("pk").values())

    response = alice.post(url, {"name": "x", "overlay_rule": 1, "vxlan_id": 200, "vlan_id": 0,
                                "network": "10.9.9.0/24", "mtu": 1400})

    assert response.status_code == 404
    assert list(VirtualNetwork.objects.order_by("pk").values()) == before


@pytest.mark.parametrize("url", alice_urls())
def test_anonymous_visitors_are_sent_to_the_login_page(users, url):
    response = Client().get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


def test_home_lists_only_the_vdcs_the_user_administers(alice, bob):
    assert b"acme" in alice.get("/").content
    assert b"globex" not in alice.get("/").content
    assert b"globex" in bob.get("/").content
    assert b"acme" not in bob.get("/").content


def test_a_user_who_administers_nothing_sees_an_empty_home_and_404s(client_for):
    carol = client_for("carol")

    home = carol.get("/")

    assert home.status_code == 200
    assert b"You do not administer any virtual datacenter" in home.content
    assert carol.get("/vdcs/acme/").status_code == 404
    assert carol.get("/networks/acme-web/").status_code == 404


def test_superuser_sees_every_vdc_and_the_global_networks(root):
    content = root.get("/").content.decode()

    assert "acme" in content and "globex" in content
    assert "Networks outside any vDC" in content and "lab-net" in content
    assert root.get("/vdcs/globex/").status_code == 200
    assert root.get("/networks/lab-net/").status_code == 200


def test_login_form_logs_alice_in_and_lands_on_her_vdcs(users):
    client = Client()

    page = client.get("/accounts/login/")
    response = client.post("/accounts/login/", {"username": "alice",
                                                "password": "correct horse battery staple"},
                           follow=True)

    assert page.status_code == 200 and b'<label for="id_username">' in page.content
    # Logins land on one address that sends each role on (operators to their overview).
    assert response.redirect_chain == [("/ops/start/", 302), ("/", 302)]
    assert b"My virtual datacenters" in response.content and b"acme" in response.content


def test_a_wrong_password_shows_the_form_again(users):
    response = Client().post("/accounts/login/", {"username": "alice", "password": "nope"})

    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_logout_is_a_post_and_ends_the_session(alice):
    response = alice.post("/accounts/logout/")

    assert response.status_code == 200 and b"Logged out" in response.content
    assert alice.get("/").status_code == 302


def test_forms_are_csrf_protected(users):
    client = Client(enforce_csrf_checks=True)
    client.force_login(users["alice"])

    page = client.get("/vdcs/acme/networks/new/")
    response = client.post("/vdcs/acme/networks/new/", {"name": "x"})

    assert b'name="csrfmiddlewaretoken"' in page.content
    assert response.status_code == 403
