"""A wrong OVERLAY_SECRETS_KEYS is a clear start-up error, refuses key rotation, and answers
every read that meets an undecryptable IPSec key with a sentence naming the setting, never
a key and never a bare InvalidToken."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core import checks
from django.core.checks.registry import registry
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.urls import reverse
from rest_framework.test import APIClient

from nodes.models import Deployment, Node
from overlays import secretbox, services
from overlays.models import IpsecKey
from overlays.statefile import import_state

ROOT = Path(__file__).resolve().parents[2]
SETTING = "OVERLAY_SECRETS_KEYS"
OLD, NEW, WRONG = (Fernet.generate_key().decode() for _ in range(3))
REMOTE = "cn21.brno"  # the demo's one node in another PDC: it holds every pair key


@pytest.fixture
def mesh(settings, db, demo_state):
    """The demo cluster (four pair keys) stored under the default key; no syncs."""
    settings.OVERLAY_AUTO_SYNC = False
    import_state(demo_state)
    assert IpsecKey.objects.count() == 4
    return {key.pk: key.secret for key in IpsecKey.objects.all()}


def stored() -> dict[int, str]:
    return dict(IpsecKey.objects.values_list("pk", "secret_encrypted"))


def assert_names_the_setting_not_a_key(text: str, secrets: dict[int, str] | None = None) -> None:
    assert SETTING in text
    for key in (OLD, NEW, WRONG, *(secrets or {}).values()):
        assert key not in text
    assert "InvalidToken" not in text


# ------------------------------------------------------------------------ the check

def test_the_check_passes_with_the_keys_that_stored_the_secrets(mesh):
    assert secretbox.check_secrets_keys() == []


def test_the_check_passes_on_an_empty_database(db, settings):
    settings.OVERLAY_SECRETS_KEYS = [WRONG]
    assert secretbox.check_secrets_keys() == []


def test_a_wrong_key_fails_the_check_with_the_setting_named(mesh, settings):
    settings.OVERLAY_SECRETS_KEYS = [WRONG]

    [error] = secretbox.check_secrets_keys()

    assert error.level == checks.ERROR
    assert error.id == "overlays.E001"
    assert "cannot be decrypted with the configured OVERLAY_SECRETS_KEYS" in error.msg
    assert_names_the_setting_not_a_key(f"{error.msg} {error.hint}", mesh)


def test_a_changed_django_secret_key_without_keys_is_explained(mesh, settings):
    settings.SECRET_KEY = "another-secret-key-than-the-one-that-stored-the-ipsec-keys"

    [error] = secretbox.check_secrets_keys()

    assert "OVERLAY_SECRETS_KEYS is empty" in error.msg
    assert "DJANGO_SECRET_KEY" in error.msg
    assert settings.SECRET_KEY not in error.msg


def test_a_malformed_key_is_named_by_its_position_only(db, settings):
    settings.OVERLAY_SECRETS_KEYS = [WRONG, "not-a-fernet-key"]

    [error] = secretbox.check_secrets_keys()

    assert "OVERLAY_SECRETS_KEYS: entry 2 of 2 is not a Fernet key" in error.msg
    assert "not-a-fernet-key" not in error.msg
    assert_names_the_setting_not_a_key(error.msg)


def test_the_check_samples_the_oldest_and_the_newest_secret(settings, db, demo_state):
    """Keys rotate by putting a new one first: the check passes with both listed, and fails
    when either the key that encrypts now or an older one still needed is missing."""
    settings.OVERLAY_AUTO_SYNC = False
    settings.OVERLAY_SECRETS_KEYS = [OLD]
    import_state(demo_state)
    settings.OVERLAY_SECRETS_KEYS = [NEW, OLD]
    services.rotate_ipsec_keys([IpsecKey.objects.order_by("pk").last()])  # now under NEW

    assert secretbox.check_secrets_keys() == []
    settings.OVERLAY_SECRETS_KEYS = [NEW]
    assert secretbox.check_secrets_keys() != []
    settings.OVERLAY_SECRETS_KEYS = [OLD]
    assert secretbox.check_secrets_keys() != []


def test_it_is_a_system_check_that_every_command_runs(mesh, settings):
    """Registered without a database tag, so runserver (which passes no databases) runs it,
    and under the "secrets" tag to test a setting alone."""
    assert secretbox.check_secrets_keys in registry.get_checks()
    assert "secrets" in secretbox.check_secrets_keys.tags
    settings.OVERLAY_SECRETS_KEYS = [WRONG]

    for tags in ((), ("--tag", "secrets")):
        with pytest.raises(SystemCheckError) as raised:
            call_command("check", *tags)
        assert "overlays.E001" in str(raised.value)
        assert_names_the_setting_not_a_key(str(raised.value), mesh)


# ------------------------------------------------------------------ writes and reads

def test_decrypting_with_a_wrong_key_says_which_setting(mesh, settings):
    settings.OVERLAY_SECRETS_KEYS = [WRONG]

    with pytest.raises(secretbox.SecretsKeyError) as raised:
        _ = IpsecKey.objects.first().secret

    assert isinstance(raised.value, InvalidToken)  # what callers caught before
    assert_names_the_setting_not_a_key(str(raised.value), mesh)


def test_rotation_is_refused_when_the_stored_keys_cannot_be_read(mesh, settings):
    before = stored()
    settings.OVERLAY_SECRETS_KEYS = [WRONG]

    with pytest.raises(secretbox.SecretsKeyError) as raised:
        services.rotate_ipsec_keys()

    assert_names_the_setting_not_a_key(str(raised.value), mesh)
    assert stored() == before


@pytest.fixture
def su(mesh, superuser) -> APIClient:
    client = APIClient()
    client.force_authenticate(superuser)
    return client


def test_the_api_answers_503_with_the_sentence_when_rotating(su, mesh, settings):
    before = stored()
    settings.OVERLAY_SECRETS_KEYS = [WRONG]

    response = su.post("/api/v1/ipsec-keys/rotate/")

    assert response.status_code == 503
    assert set(response.json()) == {"detail"}
    assert_names_the_setting_not_a_key(response.json()["detail"], mesh)
    assert stored() == before


def test_the_api_answers_503_when_a_read_meets_an_unreadable_key(su, mesh, settings):
    settings.OVERLAY_SECRETS_KEYS = [WRONG]

    response = su.get(f"/api/v1/nodes/{REMOTE}/files/")

    assert response.status_code == 503
    assert_names_the_setting_not_a_key(response.json()["detail"], mesh)


def test_the_admin_rotate_action_answers_a_page_with_the_sentence(client, superuser, mesh,
                                                                 settings):
    client.force_login(superuser)
    settings.OVERLAY_SECRETS_KEYS = [WRONG]

    response = client.post(reverse("admin:overlays_ipseckey_changelist"),
                           {"action": "rotate", "_selected_action": list(mesh)})

    assert response.status_code == 503
    page = response.content.decode()
    assert "Temporarily unavailable" in page
    assert_names_the_setting_not_a_key(page, mesh)


def test_a_sync_records_the_reason_as_its_failure(su, mesh, settings):
    settings.OVERLAY_SECRETS_KEYS = [WRONG]

    response = su.post(f"/api/v1/nodes/{REMOTE}/sync/")

    assert response.status_code == 202
    deployment = Deployment.objects.filter(node__hostname=REMOTE).first()
    assert deployment is not None and deployment.result == "failed"
    assert_names_the_setting_not_a_key(deployment.error, mesh)
    assert Node.objects.get(hostname=REMOTE).sync_status == "failed"


# ------------------------------------------------------------------------ start-up

def manage(*args: str, keys: str, database: Path, tmp_path: Path,
           timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "DATABASE_URL", SETTING, "OVERLAY_"))}
    env.update(DATABASE_URL=f"sqlite:///{database}", OVERLAY_SECRETS_KEYS=keys,
               OVERLAY_AUTO_SYNC="false", OVERLAY_LOCAL_ROOT=str(tmp_path / "node-files"),
               DJANGO_SETTINGS_MODULE="config.settings")
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def assert_refused(done: subprocess.CompletedProcess) -> None:
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "cannot be decrypted with the configured OVERLAY_SECRETS_KEYS" in output
    assert WRONG not in output and OLD not in output
    assert "InvalidToken" not in output


def test_the_application_does_not_start_with_a_wrong_key(tmp_path):
    """In real processes: migrate and check pass on a new database, then with the stored
    keys under OLD, runserver, manage.py commands and the WSGI application refuse WRONG."""
    database = tmp_path / "db.sqlite3"
    run = {"database": database, "tmp_path": tmp_path}
    assert manage("manage.py", "migrate", "-v0", keys=OLD, **run).returncode == 0
    assert manage("manage.py", "check", keys=WRONG, **run).returncode == 0  # nothing stored yet
    demo = manage("manage.py", "demo", keys=OLD, **run)
    assert demo.returncode == 0, demo.stderr

    assert manage("manage.py", "check", keys=OLD, **run).returncode == 0
    assert_refused(manage("manage.py", "check", keys=WRONG, **run))
    assert_refused(manage("manage.py", "overlay", "render", REMOTE, keys=WRONG, **run))
    assert_refused(manage("manage.py", "runserver", "--noreload", "127.0.0.1:0", keys=WRONG,
                          timeout=60, **run))
    assert_refused(manage("-c", "import config.wsgi", keys=WRONG, **run))
    assert manage("-c", "import config.wsgi", keys=OLD, **run).returncode == 0
