"""Encryption of secrets at rest (IPSec pre-shared keys).

Fernet keys come from OVERLAY_SECRETS_KEYS; the first encrypts and all decrypt, so
keys can be rotated. Without them a key is derived from SECRET_KEY (development).
"""

from __future__ import annotations

import base64
import secrets
from functools import cache

from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings


@cache
def _box(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    if keys:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"overlay-manager secrets at rest"
    ).derive(secret_key.encode())
    return MultiFernet([Fernet(base64.urlsafe_b64encode(derived))])


def box() -> MultiFernet:
    return _box(tuple(settings.OVERLAY_SECRETS_KEYS), settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    return box().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    return box().decrypt(token.encode()).decode()


def new_preshared_key() -> str:
    """256 bits from the OS CSPRNG, hex: what ike.preshared expects after ``key``."""
    return secrets.token_hex(32)
