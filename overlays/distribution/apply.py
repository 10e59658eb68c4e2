"""Carrying a plan out on one node over an open transport.

Whole files are uploaded atomically (temporary file, mode and owner, rename) by
the transport. ``/usbkey/config`` belongs to the node: it is read, only the
managed keys are rewritten (``apply_managed_keys``), and it is written back,
keeping its mode and owner, only when the bytes differ. Each needed reload
action runs once, in ``RELOAD_ORDER``, after every upload. A file counts as
applied (``ApplyOutcome.applied``) only once its reload succeeded, so a failure
is retried by the next sync.

Before any upload, temporary files that an earlier upload left behind when it was cut off
(see ``Transport.remove_temporaries``) are removed beside every file of the plan.

Files that are no longer desired (the node stopped carrying a rule): the ARP
table is removed from the node when it still holds what we deployed; a file
changed on the node meanwhile is left in place, and either way the manager stops
tracking it. ``/usbkey/config`` is never removed. Removing a table does not
restart varpd: varpd reads tables only when it starts, and the rule's line
leaves ``/usbkey/config`` in the same sync.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings

from nodes.transports import Transport, TransportError
from overlays.distribution.plan import FileChange, Plan, sha256_text
from overlays.generators import (
    RELOAD_IPFILTER,
    RELOAD_IPSEC,
    RELOAD_NETWORK_VIRTUAL,
    RELOAD_VARPD,
    apply_managed_keys,
)

logger = logging.getLogger(__name__)

# Reload actions run in this order, each at most once per sync:
# 1. network-virtual: /usbkey/config declares the rules; the platform must know a
#    rule before anything uses it.
# 2. ipsec: the encrypted path to peers in other PDCs comes up before anything
#    is sent to them;
# 3. ipfilter: plaintext overlay UDP on external0 is blocked only once ESP
#    carries it, so tightening the firewall never cuts a working path;
# 4. varpd last: it starts sending to new destinations only when the underlay
#    (IPSec, firewall) for them is ready, never in clear text.
RELOAD_ORDER = (RELOAD_NETWORK_VIRTUAL, RELOAD_IPSEC, RELOAD_IPFILTER, RELOAD_VARPD)

# /usbkey/config is the node's file; when it is missing it is written with the
# platform's usual mode and owner.
USBKEY_DEFAULT_MODE = 0o644
USBKEY_DEFAULT_OWNER = "root"


@dataclass
class ApplyOutcome:
    """What happened on the node; filled in as the work proceeds, so a failure keeps it."""

    files_changed: list[dict] = field(default_factory=list)  # [{"path", "sha256"}]
    commands: list[dict] = field(default_factory=list)  # [{"command", "exit_status"}]
    applied: dict[str, str] = field(default_factory=dict)  # path -> hash now deployed
    forgotten: list[str] = field(default_factory=list)  # paths no longer tracked
    reloads: list[str] = field(default_factory=list)  # actions run successfully
    error: str = ""
    exception: Exception | None = None

    @property
    def failed(self) -> bool:
        return bool(self.error)


class ReloadFailed(Exception):
    """A reload command exited non-zero on the node."""


def _usbkey_mode(transport: Transport, path: str) -> tuple[int, str, str]:
    """Mode and numeric owner of the node's /usbkey/config, to keep them when rewriting it."""
    found = transport.stat(path)
    if found is None:
        return USBKEY_DEFAULT_MODE, USBKEY_DEFAULT_OWNER, USBKEY_DEFAULT_OWNER
    return found.mode, str(found.uid), str(found.gid)


def apply_plan(plan: Plan, transport: Transport, *, verify: bool = False) -> ApplyOutcome:
    """Upload, remove and reload on an open transport; never raises TransportError.

    ``verify``: compare with the files actually on the node instead of trusting
    the recorded hashes, so hand edits and missing files are repaired.
    """
    outcome = ApplyOutcome()
    try:
        _apply(plan, transport, verify=verify, outcome=outcome)
    except TransportError as exc:
        outcome.error = str(exc)
        outcome.exception = exc
    except ReloadFailed as exc:
        outcome.error = str(exc)
    except ValueError as exc:  # a managed value the platform cannot quote, a bad path
        outcome.error = f"cannot deploy to {plan.hostname}: {exc}"
    return outcome


def _apply(plan: Plan, transport: Transport, *, verify: bool, outcome: ApplyOutcome) -> None:
    hostname = plan.hostname
    _remove_temporaries(plan, transport)
    candidates = plan.candidates if verify else plan.changes
    to_reload: dict[str, list[FileChange]] = {}
    settled: list[FileChange] = []  # need no reload, or their reload is pending below
    for change in candidates:
        if change.usbkey is not None:
            uploaded = _deploy_usbkey(change, transport, verify=verify, outcome=outcome)
        else:
            uploaded = _deploy_file(change, transport, verify=verify, outcome=outcome)
        if not uploaded and change.sha256 == change.recorded:
            continue  # verified: on the node and applied already
        if change.reload:
            to_reload.setdefault(change.reload, []).append(change)
        else:
            settled.append(change)
    for change in settled:
        outcome.applied[change.path] = change.sha256
    for path, digest in plan.stale:
        _remove_stale(path, digest, transport, hostname=hostname, outcome=outcome)
    commands = settings.OVERLAY_RELOAD_COMMANDS
    order = [a for a in RELOAD_ORDER if a in to_reload]
    order += sorted(a for a in to_reload if a not in RELOAD_ORDER)
    for action in order:
        for command in commands.get(action, ()):
            result = transport.run(command)
            outcome.commands.append({"command": command, "exit_status": result.exit_status})
            if not result.ok:
                detail = (result.stderr or result.stdout).strip().splitlines()
                tail = detail[-1][:300] if detail else "no output"
                raise ReloadFailed(
                    f"reload {action} failed on {hostname}: `{command}` exited "
                    f"{result.exit_status}: {tail}"
                )
        outcome.reloads.append(action)
        for change in to_reload[action]:
            outcome.applied[change.path] = change.sha256
    logger.info("sync %s: reloads run: %s", hostname, ", ".join(order) or "none")


def _remove_temporaries(plan: Plan, transport: Transport) -> None:
    """Remove what uploads cut off earlier left beside the files of this plan.

    An upload that breaks off (the connection or the node's SSH server went away, a
    worker was killed) cannot remove its temporary file; for the IPSec files it holds
    part of a key. The caller holds the node's lock, so no upload to these paths runs.
    """
    paths = [*plan.considered, *(path for path, _digest in plan.stale)]
    removed = transport.remove_temporaries(paths)
    if removed:
        logger.warning("sync %s: removed %d temporary file(s) left by an interrupted upload: "
                       "%s", plan.hostname, len(removed), ", ".join(removed))


@contextlib.contextmanager
def _naming(path: str) -> Iterator[None]:
    """Put the path in a failed upload's message; the node keeps its previous file."""
    try:
        yield
    except TransportError as exc:
        raise type(exc)(f"upload of {path} failed, previous file kept: {exc}") from exc


def _deploy_file(change: FileChange, transport: Transport, *, verify: bool,
                 outcome: ApplyOutcome) -> bool:
    desired = change.file
    assert desired is not None
    data = desired.content.encode("utf-8")
    if verify:
        current = transport.read_file(change.path)
        if current is not None and sha256_text(current) == change.sha256:
            return False
    with _naming(change.path):
        transport.write_file(change.path, data, mode=desired.mode, owner=desired.owner,
                             group=desired.group)
    outcome.files_changed.append({"path": change.path, "sha256": change.sha256})
    logger.info("sync: uploaded %s (sha256 %s, mode %o)", change.path, change.sha256[:12],
                desired.mode)
    return True


def _deploy_usbkey(change: FileChange, transport: Transport, *, verify: bool,
                   outcome: ApplyOutcome) -> bool:
    edit = change.usbkey
    assert edit is not None
    current = transport.read_file(edit.path)
    if current is None:
        logger.warning("sync: %s is missing on the node; creating it with the managed keys",
                       edit.path)
    text = (current or b"").decode("utf-8", errors="surrogateescape")
    merged = apply_managed_keys(text, edit.managed).encode("utf-8", errors="surrogateescape")
    if current is not None and merged == current:
        return False
    mode, owner, group = _usbkey_mode(transport, edit.path) if current is not None else (
        USBKEY_DEFAULT_MODE, USBKEY_DEFAULT_OWNER, USBKEY_DEFAULT_OWNER)
    with _naming(edit.path):
        transport.write_file(edit.path, merged, mode=mode, owner=owner, group=group)
    outcome.files_changed.append({"path": edit.path, "sha256": change.sha256})
    logger.info("sync: rewrote the managed keys of %s (%d keys)", edit.path, len(edit.managed))
    return True


def _remove_stale(path: str, digest: str, transport: Transport, *, hostname: str,
                  outcome: ApplyOutcome) -> None:
    current = transport.read_file(path)
    if current is None:
        logger.info("sync %s: %s is no longer desired and already gone", hostname, path)
    elif sha256_text(current) != digest:
        logger.warning("sync %s: %s is no longer desired but was changed on the node; left in "
                       "place, no longer managed", hostname, path)
    else:
        command = f"rm -f -- {shlex.quote(path)}"
        result = transport.run(command)
        outcome.commands.append({"command": command, "exit_status": result.exit_status})
        if not result.ok:
            raise ReloadFailed(f"removing {path} on {hostname} failed: exit "
                               f"{result.exit_status}: {result.stderr.strip()[:300]}")
        outcome.files_changed.append({"path": path, "sha256": None})
        logger.info("sync %s: removed %s, no longer desired", hostname, path)
    outcome.forgotten.append(path)
