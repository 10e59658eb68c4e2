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
import shlex
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
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
    # Whether ``run`` executes commands on a node. The local preview only records them,
    # so checks on the node and the revert timer are skipped there.
    executes_commands: bool = True
    # Seconds one command may take when ``run`` is given no timeout.
    command_timeout: float = 60.0

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

    def read_files(self, paths: Sequence[str]) -> dict[str, bytes | None]:
        """Each path's content (None when it does not exist), in as few round trips as the
        transport can: a verifying pass or a drift check reads all of a node's files."""
        return {path: self.read_file(path) for path in paths}

    @abstractmethod
    def stat(self, path: str) -> FileStat | None:
        """Mode and numeric owner of the file at the absolute node path; None when missing.

        A rewrite that must keep a file's mode and owner (``/usbkey/config``)
        asks this first.
        """

    def write_file(self, path: str, data: bytes, *, mode: int, owner: str, group: str) -> None:
        """Replace the file at ``path`` atomically.

        The data goes to a temporary file in the same directory, gets its mode
        and owner, and is renamed over the target: readers see the old file or
        the new one, never a partial one. The parent directory is created when
        missing. On failure the temporary file is removed and the old file is
        left as it was.
        """
        temp = self.stage_file(path, data, mode=mode, owner=owner, group=group)
        self.install_staged(temp, path)

    @abstractmethod
    def stage_file(self, path: str, data: bytes, *, mode: int, owner: str, group: str) -> str:
        """Write ``data`` beside ``path`` under a temporary name, with its mode and owner.

        Returns the node path of the temporary file (see ``temporary_name``), which a
        check on the node can read before ``install_staged`` renames it over ``path``.
        The live file is untouched. On failure nothing is left behind.
        """

    def upload_temporaries(self, files: Sequence[tuple[str, bytes]]) -> list[str]:
        """Write each ``(path, data)`` under a temporary name beside ``path``, mode 0600,
        owned by the connecting user; return the temporary paths in the same order.

        For transports that run commands: the caller sets owner and mode with one command
        on the node for all the files (``ownership_commands``), so a push pays for the
        data, not a round trip per file. On failure nothing is left behind.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot upload temporaries")

    @abstractmethod
    def install_staged(self, temp: str, path: str) -> None:
        """Rename the staged ``temp`` over ``path`` atomically; on failure remove ``temp``."""

    @abstractmethod
    def discard_staged(self, temp: str) -> None:
        """Remove a staged file that will not be installed; a missing one is fine."""

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


_ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def check_account(name: str) -> str:
    """Return ``name`` if it is a plain user or group name (or numeric id); ValueError if not.

    Owners go into commands run on the node, so nothing a shell could read differently
    is accepted.
    """
    if not _ACCOUNT_NAME.match(name):
        raise ValueError(f"not a valid user or group name: {name!r}")
    return name


def ownership_command(temp: str, *, mode: int, owner: str, group: str) -> str:
    """The node command giving one staged file its owner, then its mode."""
    return ownership_commands([(temp, mode, owner, group)])


def ownership_commands(files: Sequence[tuple[str, int, str, str]]) -> str:
    """One node command giving every staged ``(temp, mode, owner, group)`` its owner, then
    its mode: one ``chown`` per owner and one ``chmod`` per mode, whatever the number of
    files (chown may clear set-id bits, so every chmod comes after every chown)."""
    owners: dict[str, list[str]] = {}
    modes: dict[str, list[str]] = {}
    for temp, mode, owner, group in files:
        quoted = shlex.quote(check_node_path(temp))
        owners.setdefault(f"{check_account(owner)}:{check_account(group)}", []).append(quoted)
        modes.setdefault(f"{mode:o}", []).append(quoted)
    return " && ".join([*(f"chown {who} {' '.join(temps)}" for who, temps in owners.items()),
                        *(f"chmod {mode} {' '.join(temps)}" for mode, temps in modes.items())]
                       ) or ":"


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
