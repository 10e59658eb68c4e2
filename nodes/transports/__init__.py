"""Moving files to compute nodes and running commands there.

``open_transport(address)`` picks the transport named by the
``OVERLAY_TRANSPORT`` setting:

* ``"ssh"``: production; paramiko with the key in ``OVERLAY_SSH_PRIVATE_KEY``
  and the node's pinned host key (see ``ssh.py``);
* ``"local"``: a preview that writes under ``OVERLAY_LOCAL_ROOT/<hostname>/``
  and only records commands (see ``local.py``).
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .base import (
    AuthenticationError,
    CommandResult,
    FileStat,
    HostKeyError,
    NodeAddress,
    Transport,
    TransportError,
)
from .local import LocalTransport
from .ssh import SshTransport

__all__ = [
    "AuthenticationError",
    "CommandResult",
    "FileStat",
    "HostKeyError",
    "NodeAddress",
    "Transport",
    "TransportError",
    "open_transport",
]

TRANSPORT_NAMES = ("local", "ssh")


def open_transport(address: NodeAddress) -> Transport:
    """Return an unconnected transport for the node; use it as a context manager."""
    kind = settings.OVERLAY_TRANSPORT
    if kind == "local":
        return LocalTransport(Path(settings.OVERLAY_LOCAL_ROOT), address)
    if kind == "ssh":
        key_path = settings.OVERLAY_SSH_PRIVATE_KEY
        if not key_path:
            raise ImproperlyConfigured(
                "OVERLAY_TRANSPORT is 'ssh' but OVERLAY_SSH_PRIVATE_KEY is empty: set it to "
                "the path of the management server's private key (ed25519, ECDSA or RSA, "
                "without a passphrase)."
            )
        return SshTransport(
            address,
            private_key_path=key_path,
            connect_timeout=settings.OVERLAY_SSH_TIMEOUT,
            command_timeout=settings.OVERLAY_COMMAND_TIMEOUT,
        )
    raise ImproperlyConfigured(
        f"OVERLAY_TRANSPORT={kind!r} is not a known transport; use one of: "
        + ", ".join(repr(name) for name in TRANSPORT_NAMES)
    )
