"""Local transport: a preview of what would be pushed, written under a directory.

This transport is for demos, development and reviewing generated files. It
never contacts a node and never executes anything:

* node ``cn01``'s ``/usbkey/config`` becomes ``<root>/cn01/usbkey/config``;
* ``run()`` only appends the command line to
  ``<root>/<hostname>/var/log/overlay-commands.log`` and reports success.

Files are written the same atomic way as on a real node. Ownership is applied
only when this process runs as root and the user and group exist here.
"""

from __future__ import annotations

import contextlib
import grp
import logging
import os
import posixpath
import pwd
import stat
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from .base import (
    CommandResult,
    FileStat,
    NodeAddress,
    Transport,
    TransportError,
    by_directory,
    check_node_path,
    temporary_name,
    temporary_target,
)

logger = logging.getLogger(__name__)

COMMAND_LOG = "/var/log/overlay-commands.log"


class LocalTransport(Transport):
    """Write a node's files under ``root/<hostname>/``; record commands instead of running them."""

    executes_commands = False  # run() records; no check or revert timer runs here

    def __init__(self, root: Path, address: NodeAddress) -> None:
        name = address.hostname
        if not name or name in (".", "..") or "/" in name or "\x00" in name:
            raise ValueError(f"hostname cannot be used as a directory name: {name!r}")
        self.address = address
        self.root = Path(root)
        self.node_root = self.root / name
        # Directories whose renames are made durable once, when the pass closes the
        # transport (before it records the deployment), not once per file.
        self._renamed_in: set[Path] = set()
        self._checked_parents: dict[Path, Path] = {}
        self._owner_ids: dict[tuple[str, str], tuple[int, int] | None] = {}

    def local_path(self, path: str) -> Path:
        """Where the absolute node path lives on this machine (ValueError for a bad path)."""
        return self.node_root / check_node_path(path).lstrip("/")

    def _checked_parent(self, target: Path) -> Path:
        """Create the parent directory; refuse it if symlinks lead it out of the node root.
        Checked once per directory while the transport is open (a pass writes a handful of
        directories, a few files each)."""
        checked = self._checked_parents.get(target.parent)
        if checked is not None:
            return checked
        self.node_root.mkdir(parents=True, exist_ok=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        parent = target.parent.resolve()
        if not parent.is_relative_to(self.node_root.resolve()):
            raise TransportError(f"{target} resolves outside the node directory {self.node_root}")
        self._checked_parents[target.parent] = parent
        return parent

    def read_file(self, path: str) -> bytes | None:
        target = self.local_path(path)
        try:
            return target.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TransportError(f"cannot read {path} of {self.address.hostname}: {exc}") from exc

    def stat(self, path: str) -> FileStat | None:
        target = self.local_path(path)
        try:
            st = target.stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise TransportError(f"cannot stat {path} of {self.address.hostname}: {exc}") from exc
        return FileStat(mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid)

    def stage_file(self, path: str, data: bytes, *, mode: int, owner: str, group: str) -> str:
        target = self.local_path(path)
        try:
            parent = self._checked_parent(target)
        except OSError as exc:
            raise TransportError(f"cannot create the directory of {path}: {exc}") from exc
        temp = parent / temporary_name(target.name)
        try:
            self._write_temp(temp, data)
            self._set_owner(temp, owner, group)
            os.chmod(temp, mode)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                temp.unlink()
            if isinstance(exc, OSError):
                raise TransportError(
                    f"cannot write {path} of {self.address.hostname}: {exc}"
                ) from exc
            raise
        logger.debug(
            "local: staged %s for %s (%d bytes, mode %o)",
            path, self.address.hostname, len(data), mode,
        )
        return posixpath.join(posixpath.dirname(check_node_path(path)), temp.name)

    def install_staged(self, temp: str, path: str) -> None:
        target = self.local_path(path)
        staged = self.local_path(temp)
        try:
            self._replace(staged, target)
            self._renamed_in.add(target.parent)
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                staged.unlink()
            if isinstance(exc, OSError):
                raise TransportError(
                    f"cannot write {path} of {self.address.hostname}: {exc}"
                ) from exc
            raise

    def discard_staged(self, temp: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.local_path(temp).unlink()

    def remove_temporaries(self, paths: Iterable[str]) -> list[str]:
        removed: list[str] = []
        for directory, names in sorted(by_directory(paths).items()):
            local = self.node_root / directory.lstrip("/")  # checked by by_directory
            try:
                entries = sorted(os.listdir(local))
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise TransportError(f"cannot list {directory} of {self.address.hostname}: "
                                     f"{exc}") from exc
            for entry in entries:
                if temporary_target(entry) in names:
                    with contextlib.suppress(FileNotFoundError):
                        (local / entry).unlink()
                    removed.append(f"{directory.rstrip('/')}/{entry}")
        return removed

    @staticmethod
    def _write_temp(temp: Path, data: bytes) -> None:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)

    def _set_owner(self, temp: Path, owner: str, group: str) -> None:
        if os.geteuid() != 0:
            logger.debug("local: not root, leaving %s owned by the current user", temp)
            return
        key = (owner, group)
        if key not in self._owner_ids:  # a pass writes a dozen files for two or three owners
            try:
                # Numeric ids (as ``stat`` reports them) are ids, as chown(1) takes them.
                self._owner_ids[key] = (
                    int(owner) if owner.isdigit() else pwd.getpwnam(owner).pw_uid,
                    int(group) if group.isdigit() else grp.getgrnam(group).gr_gid)
            except KeyError:
                self._owner_ids[key] = None
        ids = self._owner_ids[key]
        if ids is None:
            logger.debug("local: %s:%s does not exist here, ownership not applied", owner, group)
            return
        os.chown(temp, *ids)

    @staticmethod
    def _replace(temp: Path, target: Path) -> None:
        os.replace(temp, target)

    def run(self, command: str, *, timeout: float | None = None) -> CommandResult:
        log_path = self.local_path(COMMAND_LOG)
        line = f"{datetime.now(UTC).isoformat(timespec='seconds')} {command}\n"
        try:
            self._checked_parent(log_path)
            with log_path.open("a", encoding="utf-8") as log:
                log.write(line)
        except OSError as exc:
            raise TransportError(
                f"cannot record command for {self.address.hostname}: {exc}"
            ) from exc
        logger.info(
            "local transport: recorded, not executed, on %s: %s", self.address.hostname, command
        )
        return CommandResult(command=command, exit_status=0, stdout="", stderr="")

    def close(self) -> None:
        """Make this pass's renames durable: one fsync per directory it wrote into."""
        for directory in sorted(self._renamed_in):
            _fsync_directory(directory)
        self._renamed_in.clear()
        self._checked_parents.clear()


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable where the platform allows fsync on a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
