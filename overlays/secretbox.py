"""Encryption of secrets at rest (IPSec pre-shared keys), and the check that it still works.

Fernet keys come from OVERLAY_SECRETS_KEYS; the first encrypts and all decrypt, so
keys can be rotated. Without them a key is derived from SECRET_KEY (development).

A wrong or missing key must be a clear configuration error, not a Fernet
``InvalidToken`` traceback: ``decrypt`` raises ``SecretsKeyError`` (a subclass of
``InvalidToken``) with a sentence naming the setting, and ``check_secrets_keys`` (a
Django system check, registered by the app config under the ``secrets`` tag) refuses
to start when the stored secrets cannot be read. No message ever contains a key.

Imports Django and cryptography only; the stored secrets are read through the app
registry, since ``overlays.models`` imports this module.
"""

from __future__ import annotations

import base64
import binascii
import logging
import secrets
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.apps import apps
from django.conf import settings
from django.core import checks
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.models import F
from django.db.models.functions import Coalesce

SETTING = "OVERLAY_SECRETS_KEYS"
CHECK_TAG = "secrets"
CHECK_ID = "overlays.E001"

logger = logging.getLogger(__name__)


class SecretsKeyError(InvalidToken, ValueError):
    """OVERLAY_SECRETS_KEYS cannot read the stored secrets (wrong, missing or malformed key).

    An ``InvalidToken`` so that callers that caught Fernet's error still do, and a
    ``ValueError`` (a setting with a wrong value) so that a sync records "cannot render
    the files of <node>: <this sentence>" as its failure, like any value it cannot
    render. The message says what to set and never contains a key.
    """


def _unreadable_message() -> str:
    if settings.OVERLAY_SECRETS_KEYS:
        return (f"The stored IPSec keys cannot be decrypted with the configured {SETTING}. "
                f"Set {SETTING} to the keys they were encrypted with: a new key first, then "
                "every older key still in use (comma separated).")
    return (f"The stored IPSec keys cannot be decrypted: {SETTING} is empty, so the key is "
            "derived from DJANGO_SECRET_KEY, and the keys were stored under another one. "
            f"Set {SETTING} (or DJANGO_SECRET_KEY) to what was used when they were stored.")


def _fernet(key: str, position: int, count: int) -> Fernet:
    try:
        return Fernet(key.encode())
    except (ValueError, binascii.Error):
        raise SecretsKeyError(
            f"{SETTING}: entry {position} of {count} is not a Fernet key (32 url-safe "
            "base64-encoded bytes); generate one with `python -c \"from cryptography.fernet "
            "import Fernet; print(Fernet.generate_key().decode())\"`.") from None


@cache
def _box(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if keys:
        return MultiFernet([_fernet(k.strip(), i, len(keys)) for i, k in enumerate(keys, 1)])
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"overlay-manager secrets at rest"
    ).derive(secret_key.encode())
    return MultiFernet([Fernet(base64.urlsafe_b64encode(derived))])


def box() -> MultiFernet:
    return _box(tuple(settings.OVERLAY_SECRETS_KEYS), settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    return box().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """The plaintext of a stored secret; ``SecretsKeyError`` when the keys cannot read it."""
    try:
        return box().decrypt(token.encode()).decode()
    except SecretsKeyError:
        raise
    except InvalidToken:
        raise SecretsKeyError(_unreadable_message()) from None


def new_preshared_key() -> str:
    """256 bits from the OS CSPRNG, hex: what ike.preshared expects after ``key``."""
    return secrets.token_hex(32)


# --------------------------------------------------------------------- start-up check

def _sample_tokens(using: str) -> list[str]:
    """The oldest and the newest stored secret (none when the table is not there yet).

    Secrets are encrypted when created or rotated, and encryption keys retire oldest
    first, so these two cover the key that encrypts now and the oldest key still needed,
    in two queries and two decryptions whatever the cluster's size.
    """
    model = apps.get_model("overlays", "IpsecKey")
    connection = connections[using]
    with connection.cursor() as cursor:
        if model._meta.db_table not in connection.introspection.table_names(cursor):
            return []
    stored = model.objects.using(using).annotate(encrypted_at=Coalesce(F("rotated_at"),
                                                                      F("created_at")))
    tokens = []
    for order in ("encrypted_at", "-encrypted_at"):
        token = stored.order_by(order, "pk").values_list("secret_encrypted", flat=True).first()
        if token is not None and token not in tokens:
            tokens.append(token)
    return tokens


def unreadable_secrets_problem(using: str = DEFAULT_DB_ALIAS) -> str | None:
    """Why the configured keys cannot read the stored secrets, or None when they can.

    An empty or not yet migrated database has nothing to read, and a database that
    cannot be read (unreachable, or closed to this process, as in a test collection that
    imports the WSGI application) is not this check's business: all give None.
    """
    try:
        box()
    except SecretsKeyError as exc:
        return str(exc)
    try:
        tokens = _sample_tokens(using)
    except (DatabaseError, RuntimeError) as exc:  # RuntimeError: database access not allowed
        logger.debug("secrets check skipped, the database cannot be read: %s", exc)
        return None
    for token in tokens:
        try:
            decrypt(token)
        except SecretsKeyError as exc:
            return str(exc)
    return None


def ensure_secrets_readable(using: str = DEFAULT_DB_ALIAS) -> None:
    """Raise ``SecretsKeyError`` unless the configured keys read the stored secrets.

    Writes that replace secrets (rotation) call it first: secrets written under a wrong
    key would leave the table encrypted under two keys that no setting reads together.
    """
    problem = unreadable_secrets_problem(using)
    if problem:
        raise SecretsKeyError(problem)


def check_secrets_keys(app_configs: Any = None, databases: Any = None,
                       **kwargs: Any) -> list[checks.CheckMessage]:
    """System check: the application does not start with keys that cannot read its secrets.

    Runs for every command that runs checks (runserver, migrate, the ``overlay`` CLI)
    and at WSGI start-up (config/wsgi.py), on the default database whatever
    ``databases`` asks, since runserver asks for none.
    """
    problem = unreadable_secrets_problem()
    if problem is None:
        return []
    return [checks.Error(problem, id=CHECK_ID, hint=(
        "Every IPSec render, sync and rotation would fail until it is fixed. Run "
        f"`manage.py check --tag {CHECK_TAG}` to test a setting."))]
