"""What every transport offers: move bytes to and from one node, run a command there.

A transport knows nothing about overlays, models or the database. It is opened
for one node, used as a context manager so that one connection serves a whole
sync, and raises only the exceptions below.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Self


class TransportError(Exception):
    """Talking to the node failed in a way that may succeed later.

    Connection refused or reset, timeouts, a dropped session. The caller may
    retry with backoff; ``retryable`` says whether that makes sense.
    """

    retryable: bool = True


class HostKeyError(TransportError):
    """The node's host key is not pinned, or differs from the pinned one.

    Never retried: either an operator has to record the key, or someone is
    answering in the node's place.
    """

    retryable = False


class AuthenticationError(TransportError):
    """The node refused the management key (or the key could not be loaded)."""

    retryable = False


@dataclass(frozen=True)
class CommandResult:
    """Outcome of one command; a non-zero exit is data for the caller, not an error."""

    command: str
    exit_status: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


@dataclass(frozen=True)
class FileStat:
    """What ``Transport.stat`` reports about a file: permission bits and numeric owner."""

    mode: int  # permission bits with setuid/setgid/sticky, e.g. 0o644
    uid: int
    gid: int


@dataclass(frozen=True)
class NodeAddress:
    """How to reach a node.

    ``host_key`` is the node's public host key in OpenSSH form
    (``"ssh-ed25519 AAAA..."``, as printed by ``ssh-keyscan`` without the
    host name). An empty string means no key has been recorded yet.
    """

    hostname: str
    host: str
    port: int = 22
    user: str = "root"
    host_key: str = ""


class Transport(ABC):
    """One open channel to one node.

    Use as ``with open_transport(address) as transport: ...``; the connection
    is made on entry (or on first use) and closed on exit.
    """

    address: NodeAddress

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Open the connection now instead of on first use."""

    @abstractmethod
    def read_file(self, path: str) -> bytes | None:
        """Return the content of the absolute node path, or None when it does not exist."""

    @abstractmethod
    def stat(self, path: str) -> FileStat | None:
        """Mode and numeric owner of the file at the absolute node path; None when missing.

        A rewrite that must keep a file's mode and owner (``/usbkey/config``)
        asks this first.
        """

    @abstractmethod
    def write_file(self, path: str, data: bytes, *, mode: int, owner: str, group: str) -> None:
        """Replace the file at ``path`` atomically.

        The data goes to a temporary file in the same directory, gets its mode
        and owner, and is renamed over the target: readers see the old file or
        the new one, never a partial one. The parent directory is created when
        missing. On failure the temporary file is removed and the old file is
        left as it was.
        """

    @abstractmethod
    def remove_temporaries(self, paths: Iterable[str]) -> list[str]:
        """Remove the temporary files ``write_file`` left for these paths (see
        ``temporary_name``) when an upload was cut off; return the node paths removed.

        Only files of exactly that naming, beside the paths named, are touched. Call it
        only while no other upload to these paths can be running (the node's sync lock).
        """

    @abstractmethod
    def run(self, command: str, *, timeout: float | None = None) -> CommandResult:
        """Run a shell command line on the node and return what it did.

        ``timeout`` bounds the whole command (None: the transport's default);
        running out of time raises TransportError.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the connection. Safe to call more than once."""


# An upload goes to ".<name>.tmp-<12 hex digits>" beside its target, then is renamed.
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.tmp-[0-9a-f]{12}")


def temporary_name(name: str) -> str:
    """The name ``write_file`` gives the new content of file ``name`` until it is renamed."""
    return f".{name}.tmp-{secrets.token_hex(6)}"


def temporary_target(entry: str) -> str | None:
    """The file name an upload's temporary file ``entry`` was for; None for other names."""
    match = _TEMPORARY.fullmatch(entry)
    return match.group("name") if match else None


def by_directory(paths: Iterable[str]) -> dict[str, set[str]]:
    """Node paths grouped as {directory: {file names}} (each checked with check_node_path)."""
    grouped: dict[str, set[str]] = {}
    for path in paths:
        directory, name = posixpath.split(check_node_path(path))
        grouped.setdefault(directory, set()).add(name)
    return grouped


def check_node_path(path: str) -> str:
    """Return ``path`` if it is an absolute node path without ``..``; raise ValueError otherwise."""
    if not path.startswith("/"):
        raise ValueError(f"node path must be absolute: {path!r}")
    if "\x00" in path or ".." in path.split("/"):
        raise ValueError(f"node path must not contain '..' or NUL: {path!r}")
    normalized = posixpath.normpath(path)
    if normalized in ("/", "//") or path.endswith("/"):
        raise ValueError(f"node path must name a file: {path!r}")
    return normalized


def public_key_fingerprint(key_blob: bytes) -> str:
    """SHA256 fingerprint of a public key blob, printed the way OpenSSH prints it."""
    digest = hashlib.sha256(key_blob).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")
