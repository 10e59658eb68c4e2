"""SSH transport: paramiko, the management key, and each node's pinned host key.

Trust comes only from the key pinned on the node record: no system or user
known_hosts file is read, unknown keys are never accepted, no agent and no
password are used. File contents (they include IPSec keys) are never logged.
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
import select
import socket
import stat
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import paramiko
from django.core.exceptions import ValidationError
from paramiko.message import Message
from paramiko.sftp import (
    CMD_ATTRS,
    CMD_CLOSE,
    CMD_DATA,
    CMD_EXTENDED,
    CMD_FSTAT,
    CMD_HANDLE,
    CMD_NAME,
    CMD_OPEN,
    CMD_OPENDIR,
    CMD_READ,
    CMD_READDIR,
    CMD_REMOVE,
    CMD_STAT,
    CMD_STATUS,
    CMD_WRITE,
    SFTP_EOF,
    SFTP_FLAG_CREATE,
    SFTP_FLAG_EXCL,
    SFTP_FLAG_READ,
    SFTP_FLAG_TRUNC,
    SFTP_FLAG_WRITE,
    SFTP_NO_SUCH_FILE,
    SFTP_OK,
    int64,
)

from core.validators import parse_ssh_public_key

from .base import (
    AuthenticationError,
    CommandResult,
    FileStat,
    HostKeyError,
    NodeAddress,
    Transport,
    TransportError,
    by_directory,
    check_account,
    check_node_path,
    ownership_command,
    public_key_fingerprint,
    temporary_name,
    temporary_target,
)

logger = logging.getLogger(__name__)

_READ_CHUNK = 65536
# Errors that mean "the conversation with the node broke"; all transient.
_LINK_ERRORS = (paramiko.SSHException, EOFError, OSError)
# paramiko's own request size for writes, and ours for reads.
_WRITE_CHUNK = _SFTP_READ_CHUNK = 32768


_TCP_QUICKACK = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class _PromptAckSocket(socket.socket):
    """A socket that acknowledges what it receives at once.

    sshd leaves Nagle's algorithm on for sessions without a terminal, so when it sends
    two small messages in a row while we send nothing (after authentication: its host
    keys notice, then the answer to our channel request), the second waits until the
    first is acknowledged, and Linux delays that acknowledgement by 40 ms. That was
    40 ms of idle waiting in every connection, two per activated node. Quick-ack mode
    does not stick, so it is asked for again before each read.
    """

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        self.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)
        return super().recv(bufsize, flags)


def parse_host_key(line: str) -> paramiko.PKey:
    """Turn ``"ssh-ed25519 AAAA... [comment]"`` into a public key.

    A leading host field, as ``ssh-keyscan`` prints it, is tolerated. The text is
    checked by ``core.validators.parse_ssh_public_key``, the check the node record ran
    when the key was stored. Raises ValueError when it is not a usable OpenSSH public key.
    """
    try:
        key_type, blob = parse_ssh_public_key(line)
    except ValidationError as exc:
        raise ValueError(" ".join(exc.messages)) from None
    try:
        return paramiko.PKey.from_type_string(key_type, blob)
    except (paramiko.SSHException, paramiko.UnknownKeyType, ValueError) as exc:
        raise ValueError(f"unsupported or damaged {key_type} key: {exc}") from exc


def key_description(key: paramiko.PKey) -> str:
    """``ssh-ed25519 SHA256:...``: enough to compare with ``ssh-keygen -lf`` on the node."""
    return f"{key.get_name()} {public_key_fingerprint(key.asbytes())}"


class _PinnedKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Called by paramiko when the offered key is not among the client's keys: always refuse.

    With a pin recorded this happens when the node offers a key of another type
    than the pinned one; without a pin, for every connection.
    """

    def __init__(self, address: NodeAddress, pinned: paramiko.PKey | None) -> None:
        self.address = address
        self.pinned = pinned

    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        if self.pinned is None:
            raise HostKeyError(_no_pin_message(self.address, key))
        raise HostKeyError(_mismatch_message(self.address, expected=self.pinned, offered=key))


def _where(address: NodeAddress) -> str:
    return f"{address.host}:{address.port}"


def _no_pin_message(address: NodeAddress, offered: paramiko.PKey | None) -> str:
    offered_text = f"; it offered {key_description(offered)}" if offered is not None else ""
    port = f"-p {address.port} " if address.port != 22 else ""
    return (
        f"no pinned host key for node {address.hostname} ({_where(address)}){offered_text}. "
        f"Record it from `ssh-keyscan {port}-t ed25519 {address.host}` after checking the "
        f"fingerprint on the node's console (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`)."
    )


def _mismatch_message(
    address: NodeAddress, *, expected: paramiko.PKey, offered: paramiko.PKey
) -> str:
    return (
        f"host key of node {address.hostname} ({_where(address)}) does not match the pinned key: "
        f"expected {key_description(expected)}, offered {key_description(offered)}. "
        f"Not connecting. If the node was reinstalled, verify the new key and update the pin."
    )


def _known_hosts_name(host: str, port: int) -> str:
    # The name under which paramiko looks the server's key up.
    return host if port == 22 else f"[{host}]:{port}"


class SshTransport(Transport):
    """One SSH connection to one node, reused for every file and command of a sync."""

    def __init__(
        self,
        address: NodeAddress,
        *,
        private_key_path: str,
        connect_timeout: float,
        command_timeout: float = 60.0,
    ) -> None:
        self.address = address
        self.private_key_path = private_key_path
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self._client: paramiko.SSHClient | None = None
        self._sftp_client: paramiko.SFTPClient | None = None
        self._directories: set[str] = set()  # seen to exist over this connection
        # The local address the connection left from (the management server's source
        # address as the node sees it, without NAT); set by connect().
        self.local_address: str | None = None

    # --- connection -----------------------------------------------------------

    def connect(self) -> None:
        if self._client is not None:
            return
        address = self.address
        pinned = self._pinned_key()
        private_key = self._load_private_key()

        client = paramiko.SSHClient()
        # Deliberately no load_system_host_keys(): the pin is the only trust anchor.
        client.set_missing_host_key_policy(_PinnedKeyPolicy(address, pinned))
        if pinned is not None:
            client.get_host_keys().add(
                _known_hosts_name(address.host, address.port), pinned.get_name(), pinned
            )
        sock: socket.socket | None = None
        try:
            sock = self._open_socket()
            client.connect(
                hostname=address.host,
                port=address.port,
                username=address.user,
                pkey=private_key,
                timeout=self.connect_timeout,
                banner_timeout=self.connect_timeout,
                auth_timeout=self.connect_timeout,
                channel_timeout=self.connect_timeout,
                sock=sock,
                allow_agent=False,
                look_for_keys=False,
            )
        except BaseException as exc:
            client.close()
            if sock is not None:
                sock.close()
            self._raise_connect_error(exc)
            raise
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(30)
        with contextlib.suppress(OSError, IndexError):
            self.local_address = str(sock.getsockname()[0])
        self._client = client
        logger.debug("ssh: connected to %s (%s)", address.hostname, _where(address))

    def _open_socket(self) -> socket.socket:
        address = self.address
        sock = socket.create_connection((address.host, address.port), timeout=self.connect_timeout)
        # Without this, each small request waits out the peer's delayed ACK (~40 ms).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if _TCP_QUICKACK is None:
            return sock
        prompt = _PromptAckSocket(fileno=sock.detach())
        prompt.settimeout(self.connect_timeout)
        return prompt

    def _raise_connect_error(self, exc: BaseException) -> None:
        """Translate a failed connection attempt into our exceptions (returns for others)."""
        address = self.address
        if isinstance(exc, HostKeyError):
            raise exc
        if isinstance(exc, paramiko.BadHostKeyException):
            raise HostKeyError(
                _mismatch_message(address, expected=exc.expected_key, offered=exc.key)
            ) from None
        if isinstance(exc, paramiko.AuthenticationException):
            raise AuthenticationError(
                f"node {address.hostname} ({_where(address)}) refused the management key "
                f"for user {address.user}: {exc}"
            ) from None
        if isinstance(exc, _LINK_ERRORS):
            raise TransportError(
                f"cannot connect to node {address.hostname} ({_where(address)}): "
                f"{_describe(exc)}"
            ) from exc

    def _pinned_key(self) -> paramiko.PKey | None:
        if not self.address.host_key.strip():
            return None
        try:
            return parse_host_key(self.address.host_key)
        except ValueError as exc:
            raise HostKeyError(
                f"the pinned host key of node {self.address.hostname} is not a valid OpenSSH "
                f"public key ({exc}); record it again from ssh-keyscan"
            ) from None

    def _load_private_key(self) -> paramiko.PKey:
        try:
            return paramiko.PKey.from_path(Path(self.private_key_path))
        except FileNotFoundError:
            problem = "the file does not exist"
        except PermissionError:
            problem = "permission denied"
        except TypeError:
            # cryptography's loaders say "password was not given" this way.
            problem = "the key is encrypted; use a key without a passphrase"
        except (paramiko.SSHException, paramiko.UnknownKeyType, ValueError, OSError) as exc:
            problem = f"not a usable ed25519, ECDSA or RSA private key ({type(exc).__name__})"
        raise AuthenticationError(
            f"cannot load the management private key {self.private_key_path}: {problem}"
        )

    def _connected(self) -> paramiko.SSHClient:
        self.connect()
        assert self._client is not None
        return self._client

    def _transport(self) -> paramiko.Transport:
        transport = self._connected().get_transport()
        if transport is None or not transport.is_active():
            self.close()
            raise TransportError(f"connection to node {self.address.hostname} was lost")
        return transport

    def _sftp(self) -> paramiko.SFTPClient:
        if self._sftp_client is None:
            transport = self._transport()
            try:
                self._sftp_client = paramiko.SFTPClient.from_transport(transport)
            except _LINK_ERRORS as exc:
                raise TransportError(
                    f"cannot start SFTP on node {self.address.hostname}: {_describe(exc)}"
                ) from exc
            if self._sftp_client is None:
                raise TransportError(f"cannot start SFTP on node {self.address.hostname}")
        return self._sftp_client

    def close(self) -> None:
        if self._sftp_client is not None:
            with contextlib.suppress(Exception):
                self._sftp_client.close()
            self._sftp_client = None
        self._directories.clear()
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    # --- files ----------------------------------------------------------------

    def read_file(self, path: str) -> bytes | None:
        return self.read_files([path])[path]

    def read_files(self, paths: Sequence[str]) -> dict[str, bytes | None]:
        """Three round trips for any number of files, four when one is past 32 KB: open
        them all; their sizes and first chunks; (the other chunks;) close. paramiko's
        prefetch costs four per file, and a thread per file whose answers the reader waits
        for by spinning on a lock."""
        wanted = {path: check_node_path(path) for path in paths}
        names = list(dict.fromkeys(wanted.values()))
        if not names:
            return {}
        sftp = self._sftp()
        contents: dict[str, bytes | None] = {}
        problems: dict[str, str] = {}
        try:
            handles: dict[str, bytes] = {}
            for name, (kind, message) in zip(names, pipelined(
                    sftp, [(CMD_OPEN, name, SFTP_FLAG_READ, paramiko.SFTPAttributes())
                           for name in names]), strict=True):
                if kind == CMD_HANDLE:
                    handles[name] = message.get_binary()
                    continue
                code, text = _status(kind, message)
                if code == SFTP_NO_SUCH_FILE:
                    contents[name] = None
                else:
                    problems[name] = _problem(code, text) or "unexpected answer"
            if handles:
                contents |= _read_to_end(sftp, handles, problems)
                closed = pipelined(sftp, [(CMD_CLOSE, handle) for handle in handles.values()])
                for name, (kind, message) in zip(handles, closed, strict=True):
                    problem = _status_text(kind, message)
                    if problem:
                        problems.setdefault(name, problem)
        except _LINK_ERRORS as exc:
            raise TransportError(self._failed("read", ", ".join(names), exc)) from exc
        if problems:
            raise TransportError("; ".join(
                f"cannot read {name} on node {self.address.hostname}: {problem}"
                for name, problem in problems.items()))
        return {path: contents[name] for path, name in wanted.items()}

    def stat(self, path: str) -> FileStat | None:
        node_path = check_node_path(path)
        sftp = self._sftp()
        try:
            attrs = sftp.stat(node_path)
        except FileNotFoundError:
            return None
        except _LINK_ERRORS as exc:
            raise TransportError(self._failed("stat", node_path, exc)) from exc
        if attrs.st_mode is None or attrs.st_uid is None or attrs.st_gid is None:
            raise TransportError(f"the SFTP server of node {self.address.hostname} did not "
                                 f"report the mode and owner of {node_path}")
        return FileStat(mode=stat.S_IMODE(attrs.st_mode), uid=attrs.st_uid, gid=attrs.st_gid)

    def stage_file(self, path: str, data: bytes, *, mode: int, owner: str, group: str) -> str:
        node_path = check_node_path(path)
        check_account(owner)
        check_account(group)
        [temp] = self.upload_temporaries([(node_path, data)])
        try:
            self._set_owner_and_mode(temp, mode=mode, owner=owner, group=group)
        except BaseException:
            self._discard(temp)
            raise
        logger.debug(
            "ssh: staged %s on %s (%d bytes, mode %o, %s:%s)",
            node_path, self.address.hostname, len(data), mode, owner, group,
        )
        return temp

    def upload_temporaries(self, files: Sequence[tuple[str, bytes]]) -> list[str]:
        """Upload every file in a few pipelined SFTP round trips, whatever their number:
        the directories are looked up at once, every temporary file is created at once
        (exclusively, mode 0600 from its creation), then every write, fsync and close."""
        if not files:
            return []
        targets = [check_node_path(path) for path, _data in files]
        sftp = self._sftp()
        temps = [posixpath.join(posixpath.dirname(target),
                                temporary_name(posixpath.basename(target)))
                 for target in targets]
        created: list[str] = []
        try:
            self._ensure_directories(sftp, [posixpath.dirname(t) for t in targets])
            attrs = paramiko.SFTPAttributes()
            attrs.st_mode = 0o600  # restricted before any secret goes in
            flags = SFTP_FLAG_WRITE | SFTP_FLAG_CREATE | SFTP_FLAG_EXCL | SFTP_FLAG_TRUNC
            opened = pipelined(sftp, [(CMD_OPEN, temp, flags, attrs) for temp in temps])
            handles: list[bytes | None] = []
            failure: tuple[str, str] | None = None
            for temp, target, (kind, message) in zip(temps, targets, opened, strict=True):
                if kind == CMD_HANDLE:
                    handles.append(message.get_binary())
                    created.append(temp)
                else:
                    handles.append(None)
                    failure = failure or (target, _status_text(kind, message))
            requests: list[tuple] = []
            checked: list[tuple[str, bool]] = []  # (target, whether the answer must be OK)
            for handle, target, (_path, data) in zip(handles, targets, files, strict=True):
                if handle is None:
                    continue
                if failure is None:
                    for offset in range(0, len(data), _WRITE_CHUNK):
                        requests.append((CMD_WRITE, handle, int64(offset),
                                         data[offset:offset + _WRITE_CHUNK]))
                        checked.append((target, True))
                    # Servers without fsync@openssh.com refuse it: the rename still gives
                    # atomicity, only durability across a power cut is weaker.
                    requests.append((CMD_EXTENDED, "fsync@openssh.com", handle))
                    checked.append((target, False))
                requests.append((CMD_CLOSE, handle))
                checked.append((target, True))
            for (target, must), (kind, message) in zip(
                    checked, pipelined(sftp, requests), strict=True):
                problem = _status_text(kind, message)
                if must and problem and failure is None:
                    failure = (target, problem)
            if failure is not None:
                raise TransportError(f"cannot write {failure[0]} on node "
                                     f"{self.address.hostname}: {failure[1]}")
        except BaseException as exc:
            for temp in created:
                self._discard(temp)
            if isinstance(exc, _LINK_ERRORS) and not isinstance(exc, TransportError):
                raise TransportError(self._failed("write", ", ".join(targets), exc)) from exc
            raise
        return temps

    def install_staged(self, temp: str, path: str) -> None:
        node_path = check_node_path(path)
        sftp = self._sftp()
        try:
            self._replace(sftp, check_node_path(temp), node_path)
        except BaseException as exc:
            self._discard(temp)
            if isinstance(exc, _LINK_ERRORS):
                raise TransportError(self._failed("write", node_path, exc)) from exc
            raise

    def discard_staged(self, temp: str) -> None:
        check_node_path(temp)
        if self._sftp_client is not None:
            self._discard(temp)

    def remove_temporaries(self, paths: Iterable[str]) -> list[str]:
        """A few round trips for all the directories: list them together (open; entries
        until each ends; close), then remove the leftovers together."""
        grouped = by_directory(paths)
        if not grouped:
            return []
        sftp = self._sftp()
        directories = sorted(grouped)
        try:
            listed = self._list_directories(sftp, directories)
            doomed = [posixpath.join(directory, entry) for directory in directories
                      for entry in sorted(listed.get(directory, ()))
                      if temporary_target(entry) in grouped[directory]]
            answers = pipelined(sftp, [(CMD_REMOVE, temp) for temp in doomed])
        except _LINK_ERRORS as exc:
            raise TransportError(self._failed("clean", ", ".join(directories), exc)) from exc
        removed: list[str] = []
        for temp, (kind, message) in zip(doomed, answers, strict=True):
            code, text = _status(kind, message)
            if code == SFTP_OK:
                removed.append(temp)
            elif code != SFTP_NO_SUCH_FILE:
                raise TransportError(f"cannot remove {temp} on node {self.address.hostname}: "
                                     f"{_problem(code, text)}")
        return removed

    def _list_directories(self, sftp: paramiko.SFTPClient, directories: list[str]
                          ) -> dict[str, list[str]]:
        """The entry names of each directory that exists."""
        handles: dict[str, bytes] = {}
        for directory, (kind, message) in zip(directories, pipelined(
                sftp, [(CMD_OPENDIR, directory) for directory in directories]), strict=True):
            if kind == CMD_HANDLE:
                handles[directory] = message.get_binary()
                continue
            code, text = _status(kind, message)
            if code != SFTP_NO_SUCH_FILE:
                raise TransportError(f"cannot list {directory} on node "
                                     f"{self.address.hostname}: {_problem(code, text)}")
        listed: dict[str, list[str]] = {directory: [] for directory in handles}
        problems: list[str] = []
        reading = dict(handles)
        while reading:
            answers = pipelined(sftp, [(CMD_READDIR, handle) for handle in reading.values()])
            for directory, (kind, message) in zip(list(reading), answers, strict=True):
                if kind == CMD_NAME:
                    for _ in range(message.get_int()):
                        listed[directory].append(message.get_text())
                        message.get_text()  # the long name
                        paramiko.SFTPAttributes._from_msg(message)  # noqa: SLF001
                    continue
                del reading[directory]
                code, text = _status(kind, message)
                if code != SFTP_EOF:
                    problems.append(f"cannot list {directory} on node "
                                    f"{self.address.hostname}: {_problem(code, text)}")
        pipelined(sftp, [(CMD_CLOSE, handle) for handle in handles.values()])
        if problems:
            raise TransportError("; ".join(problems))
        return listed

    def _ensure_directories(self, sftp: paramiko.SFTPClient, directories: list[str]) -> None:
        """Make sure every directory exists: one pipelined round trip of stats for those
        this connection has not seen yet, and ``_ensure_directory`` for missing ones."""
        unseen = sorted(set(directories) - self._directories)
        if not unseen:
            return
        answers = pipelined(sftp, [(CMD_STAT, directory) for directory in unseen])
        for directory, (kind, message) in zip(unseen, answers, strict=True):
            if kind == CMD_ATTRS:
                attrs = paramiko.SFTPAttributes._from_msg(message)  # noqa: SLF001
                if attrs.st_mode is not None and not stat.S_ISDIR(attrs.st_mode):
                    raise TransportError(f"{directory} on node {self.address.hostname} "
                                         "exists and is not a directory")
            else:
                self._ensure_directory(sftp, directory)
            self._directories.add(directory)

    def _ensure_directory(self, sftp: paramiko.SFTPClient, directory: str) -> None:
        """Create ``directory`` and its missing parents (mode 0755)."""
        missing: list[str] = []
        current = directory
        while current not in ("/", ""):
            try:
                attrs = sftp.stat(current)
            except FileNotFoundError:
                missing.append(current)
                current = posixpath.dirname(current)
                continue
            if attrs.st_mode is not None and not stat.S_ISDIR(attrs.st_mode):
                raise TransportError(
                    f"{current} on node {self.address.hostname} exists and is not a directory"
                )
            break
        for new_directory in reversed(missing):
            try:
                sftp.mkdir(new_directory, 0o755)
            except OSError:
                # Someone else may have created it meanwhile; only that is fine.
                if not stat.S_ISDIR(sftp.stat(new_directory).st_mode or 0):
                    raise

    def _set_owner_and_mode(self, temp: str, *, mode: int, owner: str, group: str) -> None:
        # Names are resolved on the node: SFTP's chown would need the node's numeric ids.
        result = self.run(ownership_command(temp, mode=mode, owner=owner, group=group))
        if not result.ok:
            raise TransportError(
                f"chown {owner}:{group} and chmod {mode:o} failed on node "
                f"{self.address.hostname} (exit {result.exit_status}): {result.stderr.strip()}"
            )

    def _replace(self, sftp: paramiko.SFTPClient, temp: str, target: str) -> None:
        # posix-rename@openssh.com replaces the target atomically (plain SFTP rename refuses).
        sftp.posix_rename(temp, target)

    def _discard(self, temp: str) -> None:
        sftp = self._sftp_client
        if sftp is None:
            return
        try:
            sftp.remove(temp)
        except FileNotFoundError:
            pass
        except Exception as exc:  # noqa: BLE001 - best effort while handling another error
            logger.warning(
                "ssh: could not remove temporary file %s on %s: %s",
                temp, self.address.hostname, _describe(exc),
            )

    def _failed(self, verb: str, path: str, exc: BaseException) -> str:
        return f"cannot {verb} {path} on node {self.address.hostname}: {_describe(exc)}"

    # --- commands -------------------------------------------------------------

    def run(self, command: str, *, timeout: float | None = None) -> CommandResult:
        limit = self.command_timeout if timeout is None else timeout
        transport = self._transport()
        try:
            channel = transport.open_session(timeout=self.connect_timeout)
        except _LINK_ERRORS as exc:
            raise TransportError(
                f"cannot open a session on node {self.address.hostname}: {_describe(exc)}"
            ) from exc
        try:
            channel.exec_command(command)
            channel.shutdown_write()
            stdout, stderr = self._collect(channel, transport, command, limit)
            exit_status = channel.recv_exit_status()
        except _LINK_ERRORS as exc:
            raise TransportError(
                f"running {command!r} on node {self.address.hostname} failed: {_describe(exc)}"
            ) from exc
        finally:
            channel.close()
        logger.debug("ssh: %s on %s exited %d", command, self.address.hostname, exit_status)
        return CommandResult(
            command=command,
            exit_status=exit_status,
            stdout=stdout.decode("utf-8", errors="replace"),
            stderr=stderr.decode("utf-8", errors="replace"),
        )

    def _collect(
        self, channel: paramiko.Channel, transport: paramiko.Transport, command: str, limit: float
    ) -> tuple[bytes, bytes]:
        """Read stdout and stderr until the command has exited and its output ended."""
        deadline = time.monotonic() + limit
        stdout = bytearray()
        stderr = bytearray()
        while True:
            while channel.recv_ready():
                stdout += channel.recv(_READ_CHUNK)
            while channel.recv_stderr_ready():
                stderr += channel.recv_stderr(_READ_CHUNK)
            output_ended = channel.eof_received or channel.closed
            if output_ended and channel.exit_status_ready():
                # Data that raced the exit status is drained by the loops above first.
                if not channel.recv_ready() and not channel.recv_stderr_ready():
                    return bytes(stdout), bytes(stderr)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransportError(
                    f"command on node {self.address.hostname} did not finish within "
                    f"{limit:g} s: {command}"
                )
            if not transport.is_active():
                raise TransportError(
                    f"connection to node {self.address.hostname} was lost while running {command!r}"
                )
            wait = min(remaining, 1.0)
            if output_ended:
                channel.status_event.wait(wait)
            else:
                select.select([channel], [], [], wait)


def _read_to_end(sftp: paramiko.SFTPClient, handles: Mapping[str, bytes],
                 problems: dict[str, str]) -> dict[str, bytes]:
    """Read open files to their ends, all at once: sizes and first chunks in one round
    trip, then every remaining chunk in one more. A file ends at EOF, or at a short read
    once past the size it had when the reading began. Failures go to ``problems``."""
    data = {name: bytearray() for name in handles}
    first = pipelined(sftp, [request for handle in handles.values() for request in (
        (CMD_FSTAT, handle), (CMD_READ, handle, int64(0), _SFTP_READ_CHUNK))])
    sizes: dict[str, int] = {}
    answers: dict[str, list[tuple[int, tuple[int, Message]]]] = {}
    for index, name in enumerate(handles):
        (kind, message), answer = first[2 * index], first[2 * index + 1]
        if kind == CMD_ATTRS:
            sizes[name] = paramiko.SFTPAttributes._from_msg(message).st_size or 0  # noqa: SLF001
        else:
            sizes[name] = 0
        answers[name] = [(0, answer)]
    while answers:
        requests: list[tuple] = []
        owners: list[tuple[str, int]] = []
        for name, taken in answers.items():
            ended, problem = _take_chunks(data[name], taken, sizes[name])
            if problem:
                problems[name] = problem
            elif not ended:
                # Up to and including the file's end, where the last answer is short or EOF.
                end = max(sizes[name], len(data[name])) + 1
                for offset in range(len(data[name]), end, _SFTP_READ_CHUNK):
                    requests.append((CMD_READ, handles[name], int64(offset), _SFTP_READ_CHUNK))
                    owners.append((name, offset))
        answers = {}
        for (name, offset), answer in zip(owners, pipelined(sftp, requests) if requests
                                          else [], strict=True):
            answers.setdefault(name, []).append((offset, answer))
    return {name: bytes(content) for name, content in data.items() if name not in problems}


def _take_chunks(data: bytearray, answers: list[tuple[int, tuple[int, Message]]], size: int
                 ) -> tuple[bool, str]:
    """Append the read answers (offset, answer) that continue ``data``: whether the file
    ended, and the failure if one answered with one."""
    short = False
    for offset, (kind, message) in answers:
        if offset != len(data):
            break  # an earlier answer was short: read on from where the data ends
        if kind != CMD_DATA:
            code, text = _status(kind, message)
            return True, "" if code == SFTP_EOF else _problem(code, text) or "unexpected answer"
        chunk = message.get_string()
        data += chunk
        short = len(chunk) < _SFTP_READ_CHUNK
    return short and len(data) >= size, ""


class _Answers:
    """Receives the answers paramiko reads for pipelined requests, by request number."""

    def __init__(self) -> None:
        self.by_number: dict[int, tuple[int, Message]] = {}

    def _async_response(self, kind: int, message: Message, number: int) -> None:
        self.by_number[number] = (kind, message)


def pipelined(sftp: paramiko.SFTPClient, requests: list[tuple]) -> list[tuple[int, Message]]:
    """Send every SFTP request at once, then read the answers: one round trip for all.

    paramiko has no public call for this; its request numbering and answer dispatch
    (the calls its own prefetch uses) are used as they are. Answers come back in order.
    """
    answers = _Answers()
    numbers = [sftp._async_request(answers, kind, *args)  # noqa: SLF001
               for kind, *args in requests]
    while len(answers.by_number) < len(numbers):
        sftp._read_response()  # noqa: SLF001 - reads one answer and hands it to ``answers``
    return [answers.by_number[number] for number in numbers]


def _status(kind: int, message: Message) -> tuple[int, str]:
    """Code and text of a status answer, (SFTP_OK, "") for any other; reads the message."""
    if kind != CMD_STATUS:
        return SFTP_OK, ""
    return message.get_int(), message.get_text()


def _status_text(kind: int, message: Message) -> str:
    """'' for an OK status (or any answer that is not a status); the error otherwise."""
    return _problem(*_status(kind, message))


def _problem(code: int, text: str) -> str:
    return "" if code == SFTP_OK else f"{text or 'error'} (SFTP status {code})"


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name
