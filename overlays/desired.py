"""What a node must hold: the generators' output and the distributor's input."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property


@dataclass(frozen=True)
class DesiredFile:
    """A whole file the manager owns on a node; uploaded only when its bytes change."""

    path: str
    content: str
    mode: int  # e.g. 0o400
    owner: str  # user name, e.g. "root" or "netadm"
    group: str
    reload: str | None  # action name, a key of settings.OVERLAY_RELOAD_COMMANDS

    @cached_property
    def data(self) -> bytes:
        """The bytes hashed and uploaded: a pass encodes each file once, not twice."""
        return self.content.encode("utf-8")


@dataclass(frozen=True)
class UsbkeyConfigEdit:
    """The managed keys of /usbkey/config; every other line of the file is the node's own.

    ``managed`` maps key to unquoted value. The distributor reads the node's file,
    applies these keys (``overlays.generators.usbkey.apply_managed_keys``) and
    writes the result back, so the file is never overwritten blind.
    """

    path: str
    managed: Mapping[str, str] = field(default_factory=dict)
    reload: str = "network-virtual"


@dataclass(frozen=True)
class NodeFiles:
    hostname: str
    files: tuple[DesiredFile, ...]
    usbkey: UsbkeyConfigEdit
