"""Fixtures of the operator console tests: the demo cluster and a logged-in client per role
(superuser root, auditor audrey, vDC admin alice, carol who holds no role)."""

from __future__ import annotations

import io

import pytest
from django.test import Client

PASSWORD = "correct horse battery staple"
ROLES = ("root", "audrey", "alice", "carol")


def make_auditor(username: str, password: str | None = None):
    """A user in the auditor group, made the way an operator does (manage.py auditor add)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    users = get_user_model().objects
    user = users.filter(username=username).first() or users.create_user(username)
    if password:
        user.set_password(password)
        user.save()
    call_command("auditor", "add", username, stdout=io.StringIO())
    return user


@pytest.fixture(autouse=True)
def console_settings(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.OVERLAY_TRANSPORT = "local"


@pytest.fixture
def people(demo_cluster, django_user_model) -> dict:
    alice = django_user_model.objects.get(username="alice")
    alice.set_password(PASSWORD)
    alice.save()
    return {
        "root": django_user_model.objects.create_superuser("root", "root@example.invalid",
                                                           PASSWORD),
        "audrey": make_auditor("audrey", PASSWORD),
        "alice": alice,
        "carol": django_user_model.objects.create_user("carol", password=PASSWORD),
    }


@pytest.fixture
def client_for(people):
    def make(name: str) -> Client:
        client = Client()
        client.force_login(people[name])
        return client

    return make
