"""Real authentication: DRF tokens made by drf_create_token, and Django sessions."""

from __future__ import annotations

import io

from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def test_a_token_from_drf_create_token_authenticates_the_vdc_admin(users):
    out = io.StringIO()
    call_command("drf_create_token", "alice", stdout=out)
    key = Token.objects.get(user__username="alice").key
    assert key in out.getvalue()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    response = client.get("/api/v1/networks/")

    assert response.status_code == 200
    assert {n["name"] for n in response.json()["results"]} == {"acme-web", "acme-db"}


def test_session_login_authenticates(users):
    alice = users["alice"]
    alice.set_password("correct horse")
    alice.save()
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="alice", password="correct horse")

    response = client.get("/api/v1/me/")

    assert response.status_code == 200
    assert response.json()["username"] == "alice"


def test_session_writes_need_the_csrf_token(users):
    alice = users["alice"]
    alice.set_password("correct horse")
    alice.save()
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="alice", password="correct horse")

    response = client.post("/api/v1/networks/", {"name": "x"}, format="json")

    assert response.status_code == 403
    assert response.json()["detail"].startswith("CSRF Failed")
