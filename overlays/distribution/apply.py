"""Carrying a plan out on one node over an open transport.

A pass works in phases, so that nothing a check refuses ever becomes live:

1. What an earlier, interrupted activation left on the node is settled first
   (``confirm.inspect``): a rollback nobody recorded stops the pass (the node is then
   held), a revert timer still running makes the pass wait and be retried.
2. Temporary files that an earlier upload left behind when it was cut off (see
   ``Transport.remove_temporaries``) are removed beside every file of the plan.
3. Every changed file is *staged*: uploaded under a temporary name beside its target,
   with its mode and owner (``Transport.stage_file``). ``/usbkey/config`` belongs to the
   node: it is read, only the managed keys are rewritten (``apply_managed_keys``), and it
   is staged, keeping its mode and owner, only when the bytes differ.
4. Every staged file is checked (``precheck``): on the node with its check command
   (``OVERLAY_CHECK_COMMANDS``), the pre-shared keys file by parsing it here. One refusal
   and every staged file is removed: the node keeps all its previous files, nothing is
   reloaded, and the failure message is the check's own output (keys redacted).
5. When IPSec or ipfilter files are about to change, the node keeps their previous
   versions and starts its revert timer (``confirm.arm``).
6. The staged files are renamed into place, files no longer desired are removed, and
   each needed reload action runs once, in ``RELOAD_ORDER``.
7. An armed timer is cancelled over a NEW connection (``confirm.confirm``); a node that
   cannot be reached that way restores its previous files by itself, and the outcome
   says "rolled back". A failure after arming restores the previous files at once.

On a transport that runs commands (SSH) steps 2 to 6 cost what the push sends, not a
round trip per file and step: the changed files' data is uploaded in one go
(``Transport.upload_temporaries``: pipelined SFTP), then ONE command on the node
(``activate``) removes leftovers, sets owners and modes, runs the checks, arms the timer,
renames, removes files no longer desired and reloads, in that order, each step reporting
its exit status; the checks and reloads keep one entry each in ``ApplyOutcome.commands``.
The local preview (no commands) goes through the steps one by one.

A file counts as applied (``ApplyOutcome.applied``) only once its reload succeeded and
was not rolled back, so a failure is retried by the next sync.

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
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

from django.conf import settings

from nodes.models import Confirmation
from nodes.transports import CommandResult, Transport, TransportError
from nodes.transports.base import ownership_commands
from overlays.distribution import activate, confirm
from overlays.distribution.plan import FileChange, Plan, sha256_text
from overlays.distribution.precheck import (
    PRESHARED_KEY,
    CheckFailure,
    batch_script,
    check_output,
    node_check_command,
    parse_batch,
    path_keys,
    preshared_problems,
)
from overlays.generators import (
    RELOAD_IPFILTER,
    RELOAD_IPSEC,
    RELOAD_NETWORK_VIRTUAL,
    RELOAD_VARPD,
    apply_managed_keys,
)
from overlays.selectors import node_paths

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
# Reloads that can cut the management server off the node: their files are applied
# under a revert timer (commit confirmed, ``confirm``).
REACHABILITY_ACTIONS = (RELOAD_IPSEC, RELOAD_IPFILTER)

# /usbkey/config is the node's file; when it is missing it is written with the
# platform's usual mode and owner.
USBKEY_DEFAULT_MODE = 0o644
USBKEY_DEFAULT_OWNER = "root"

Connect = Callable[[], Transport]


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
    confirmation: str = Confirmation.NONE  # commit confirmed: how the activation ended

    @property
    def failed(self) -> bool:
        return bool(self.error)

    @property
    def rolled_back(self) -> bool:
        """The node restored its previous files by itself: the change waits for an operator."""
        return self.confirmation == Confirmation.ROLLED_BACK


class ReloadFailed(Exception):
    """A reload command exited non-zero on the node."""


class CheckFailed(Exception):
    """A check refused a staged file; nothing was installed."""


class RolledBack(Exception):
    """The change was not confirmed: the node restores (or restored) its previous files."""


class AwaitingConfirmation(TransportError):
    """An earlier activation's revert timer still runs on the node; retry after it."""


@dataclass
class _Staged:
    change: FileChange
    temp: str
    data: bytes
    installed: bool = False


def _usbkey_mode(transport: Transport, path: str) -> tuple[int, str, str]:
    """Mode and numeric owner of the node's /usbkey/config, to keep them when rewriting it."""
    found = transport.stat(path)
    if found is None:
        return USBKEY_DEFAULT_MODE, USBKEY_DEFAULT_OWNER, USBKEY_DEFAULT_OWNER
    return found.mode, str(found.uid), str(found.gid)


def apply_plan(plan: Plan, transport: Transport, *, verify: bool = False,
               reconnect: Connect | None = None, released: bool = False) -> ApplyOutcome:
    """Stage, check, install, remove and reload on an open transport; never raises
    TransportError.

    ``verify``: compare with the files actually on the node instead of trusting
    the recorded hashes, so hand edits and missing files are repaired.
    ``reconnect``: opens a new connection to the node; with it (and a transport that runs
    commands) IPSec and ipfilter changes are applied under commit confirmed.
    ``released``: an operator released the node after a rollback, so a rollback verdict
    the node still holds is cleared instead of stopping the pass.
    """
    outcome = ApplyOutcome()
    try:
        _apply(plan, transport, verify=verify, outcome=outcome, reconnect=reconnect,
               released=released)
    except TransportError as exc:
        outcome.error = _joined(outcome.error, str(exc))
        outcome.exception = exc
    except (ReloadFailed, CheckFailed, RolledBack) as exc:
        outcome.error = _joined(outcome.error, str(exc))
    except ValueError as exc:  # a managed value the platform cannot quote, a bad path
        outcome.error = _joined(outcome.error, f"cannot deploy to {plan.hostname}: {exc}")
    return outcome


def _joined(first: str, second: str) -> str:
    return f"{second}; {first}" if first else second


def _apply(plan: Plan, transport: Transport, *, verify: bool, outcome: ApplyOutcome,
           reconnect: Connect | None, released: bool) -> None:
    hostname = plan.hostname
    if transport.executes_commands:
        _settle_earlier_activation(transport, hostname=hostname, released=released,
                                   outcome=outcome)
        _apply_in_one_command(plan, transport, verify=verify, outcome=outcome,
                              reconnect=reconnect)
        return
    _remove_temporaries(plan, transport)
    candidates = plan.candidates if verify else plan.changes
    current = _read_current(candidates, plan.stale, transport, verify=verify)
    staged: list[_Staged] = []
    to_reload: dict[str, list[FileChange]] = {}
    settled: list[FileChange] = []  # need no reload, or their reload is pending below
    armed: confirm.Armed | None = None
    try:
        for change in candidates:
            item = _stage(change, transport, verify=verify, current=current)
            if item is not None:
                staged.append(item)
            elif change.sha256 == change.recorded:
                continue  # verified: on the node and applied already
            if change.reload:
                to_reload.setdefault(change.reload, []).append(change)
            else:
                settled.append(change)
        _check(staged, transport, hostname=hostname, outcome=outcome)
        armed = _arm(staged, transport, reconnect=reconnect)
        for item in staged:
            with _naming(item.change.path):
                transport.install_staged(item.temp, item.change.path)
            item.installed = True
            outcome.files_changed.append({"path": item.change.path,
                                          "sha256": item.change.sha256})
        logger.info("sync %s: installed %d file(s)", hostname, len(staged))
        for change in settled:
            outcome.applied[change.path] = change.sha256
        for path, digest in plan.stale:
            if _still_ours(path, digest, current[path], hostname=hostname, outcome=outcome):
                _remove_stale(path, transport, hostname=hostname, outcome=outcome)
        _reload(to_reload, transport, hostname=hostname, outcome=outcome)
    except BaseException as exc:
        _discard([item for item in staged if not item.installed], transport)
        if armed is not None:
            _restore_after_failure(transport, armed, reconnect, exc, hostname=hostname,
                                   outcome=outcome)
        raise
    if armed is not None:
        assert reconnect is not None
        _confirm(armed, reconnect, hostname=hostname, outcome=outcome)


def _apply_in_one_command(plan: Plan, transport: Transport, *, verify: bool,
                          outcome: ApplyOutcome, reconnect: Connect | None) -> None:
    """The pass on a transport that runs commands: upload every changed file in one go,
    then ONE command (``activate``) removes leftovers, sets owners and modes, checks,
    arms the revert timer, installs, removes files no longer desired and reloads,
    reporting each step; then the confirmation over a new connection."""
    hostname = plan.hostname
    candidates = plan.candidates if verify else plan.changes
    current = _read_current(candidates, plan.stale, transport, verify=verify)
    uploads: list[tuple[FileChange, tuple[bytes, int, str, str]]] = []
    to_reload: dict[str, list[FileChange]] = {}
    settled: list[FileChange] = []
    for change in candidates:
        prepared = _prepare(change, transport, verify=verify, current=current)
        if prepared is not None:
            uploads.append((change, prepared))
        elif change.sha256 == change.recorded:
            continue  # verified: on the node and applied already
        if change.reload:
            to_reload.setdefault(change.reload, []).append(change)
        else:
            settled.append(change)
    removals = [(path, digest) for path, digest in plan.stale
                if _still_ours(path, digest, current[path], hostname=hostname, outcome=outcome)]
    if not (uploads or removals or to_reload):  # a verify pass: nothing to upload or run
        _remove_temporaries(plan, transport)
        for change in settled:  # on the node already, needing no reload
            outcome.applied[change.path] = change.sha256
        return
    with _naming(", ".join(change.path for change, _prepared in uploads)):
        temps = transport.upload_temporaries([(change.path, prepared[0])
                                              for change, prepared in uploads])
    staged = [_Staged(change=change, temp=temp, data=prepared[0])
              for (change, prepared), temp in zip(uploads, temps, strict=True)]
    armed: confirm.Armed | None = None  # a timer that may run on the node
    try:
        steps, prepared, refusals = _steps(plan, staged, uploads, removals, to_reload,
                                           reconnect=reconnect)
        text = activate.script(steps, temps=temps, refuse=bool(refusals))
        limit = transport.command_timeout * max(1, len(steps))
        if prepared is not None:  # counted from before the timer can start on the node
            prepared = replace(prepared, deadline=time.monotonic() + prepared.timeout)
        try:
            result = transport.run(text, timeout=limit)
        except TransportError:
            armed = prepared  # the node may have got as far as starting it
            raise
        progress = _Progress()
        try:
            _read_records(steps, activate.parse(result.stdout), result, staged, to_reload,
                          settled, prepared, refusals, progress, hostname=hostname,
                          outcome=outcome)
        finally:
            armed = progress.armed
    except BaseException as exc:
        if isinstance(exc, TransportError):  # the node may have stopped anywhere
            _discard([item for item in staged if not item.installed], transport)
        if armed is not None:
            _restore_after_failure(transport, armed, reconnect, exc, hostname=hostname,
                                   outcome=outcome)
        raise
    if armed is not None:
        assert reconnect is not None
        _confirm(armed, reconnect, hostname=hostname, outcome=outcome)


def _steps(plan: Plan, staged: list[_Staged],
           uploads: list[tuple[FileChange, tuple[bytes, int, str, str]]],
           removals: list[tuple[str, str]], to_reload: dict[str, list[FileChange]], *,
           reconnect: Connect | None
           ) -> tuple[list[activate.Step], confirm.Armed | None, list[CheckFailure]]:
    """The activation's steps, the timer it arms (if any) and refusals found here."""
    temps = [item.temp for item in staged]
    paths = [*plan.considered, *(path for path, _digest in plan.stale)]
    steps = [activate.Step(activate.CLEAN, activate.cleanup_command(paths, keep=temps))]
    refusals, on_node = _checks_to_run(staged)
    if staged:
        steps.append(activate.Step(activate.OWN, ownership_commands(
            [(item.temp, mode, owner, group) for item, (_change, (_data, mode, owner, group))
             in zip(staged, uploads, strict=True)]), ", ".join(i.change.path for i in staged)))
    steps += [activate.Step(activate.CHECK, command, path) for path, command in on_node]
    armed: confirm.Armed | None = None
    timeout = float(settings.OVERLAY_CONFIRM_TIMEOUT or 0)
    risky = [item.change.path for item in staged if item.change.reload in REACHABILITY_ACTIONS]
    if risky and timeout > 0 and reconnect is not None:
        actions, commands = _reachability_reloads()
        command, armed = confirm.arm_command(
            directory=settings.OVERLAY_CONFIRM_DIRECTORY, timeout=timeout, paths=risky,
            actions=actions, commands=commands)
        steps.append(activate.Step(activate.ARM, command))
    if staged:
        steps.append(activate.Step(activate.INSTALL, activate.install_command(
            [(item.temp, item.change.path) for item in staged])))
    steps += [activate.Step(activate.REMOVE, f"rm -f -- {shlex.quote(path)}", path)
              for path, _digest in removals]
    steps += [activate.Step(activate.RELOAD, command, action)
              for action in _reload_order(to_reload)
              for command in settings.OVERLAY_RELOAD_COMMANDS.get(action, ())]
    return steps, armed, refusals


def _read_records(steps: list[activate.Step], records: dict[int, activate.Record],
                  result: CommandResult, staged: list[_Staged],
                  to_reload: dict[str, list[FileChange]], settled: list[FileChange],
                  prepared: confirm.Armed | None, refusals: list[CheckFailure],
                  progress: _Progress, *, hostname: str, outcome: ApplyOutcome) -> None:
    """Turn the node's records into the outcome, raising as the step by step pass did.

    ``progress.armed`` tells the caller, even when this raises, whether the timer may run
    on the node. A step without a record did not finish: what follows it never ran.
    """
    failures = list(refusals)

    def stopped(step: activate.Step) -> TransportError:
        detail = check_output("", result.stderr) or f"exit {result.exit_status}, no output"
        return TransportError(f"the activation on {hostname} stopped before `{step.command}` "
                              f"finished: {detail}")

    for number, step in enumerate(steps):
        record = records.get(number)
        if step.kind == activate.CHECK:
            status = None if record is None else record.status
            outcome.commands.append({"command": step.command,
                                     "exit_status": -1 if status is None else status})
            if status != 0:
                failures.append(CheckFailure(
                    path=step.subject, check=step.command, exit_status=status,
                    output=check_output(record.output if record else "", "" if record else
                                        result.stderr or "the check left no result")))
            continue
        if failures and step.kind in (activate.ARM, activate.INSTALL, activate.REMOVE,
                                      activate.RELOAD):  # past the gate: nothing ran
            raise CheckFailed(
                f"check refused {len(failures)} file(s) on {hostname}; nothing was "
                "installed, the node keeps its previous files: "
                + "; ".join(failure.describe() for failure in failures))
        if step.kind == activate.ARM:
            progress.armed = prepared  # it may run from here on, whatever the record says
            if record is None:
                raise stopped(step)
            if not record.ok or not record.output.rstrip().endswith("armed"):
                progress.armed = None  # the command stopped before starting the timer
                raise confirm.arm_failure(hostname, record.status, record.output)
            logger.info("sync %s: previous files kept and a revert timer started on the "
                        "node", hostname)
            continue
        if step.kind == activate.RELOAD:
            status = None if record is None else record.status
            outcome.commands.append({"command": step.command,
                                     "exit_status": -1 if status is None else status})
            if record is None:
                raise stopped(step)
            if not record.ok:
                lines = record.output.strip().splitlines()
                tail = lines[-1][:300] if lines else "no output"
                raise ReloadFailed(f"reload {step.subject} failed on {hostname}: "
                                   f"`{step.command}` exited {record.status}: {tail}")
            if _last_of_action(steps, number):
                outcome.reloads.append(step.subject)
                for change in to_reload[step.subject]:
                    outcome.applied[change.path] = change.sha256
            continue
        if step.kind == activate.REMOVE:
            status = None if record is None else record.status
            outcome.commands.append({"command": step.command,
                                     "exit_status": -1 if status is None else status})
        if record is None:
            raise stopped(step)
        if step.kind == activate.CLEAN:
            removed = record.output.splitlines()
            if removed:
                logger.warning("sync %s: removed %d temporary file(s) left by an interrupted "
                               "upload: %s", hostname, len(removed), ", ".join(removed))
            if not record.ok:
                raise TransportError(f"cannot remove the temporary files left on {hostname}: "
                                     f"exit {record.status}: {check_output(record.output, '')}")
        elif step.kind == activate.OWN and not record.ok:
            raise TransportError(f"upload of {step.subject} failed, previous files kept: "
                                 f"`{step.command}` exited {record.status} on {hostname}: "
                                 f"{check_output(record.output, '')}")
        elif step.kind == activate.INSTALL:
            renamed = set(record.output.splitlines())
            for item in staged:
                if item.change.path not in renamed:
                    continue
                item.installed = True
                outcome.files_changed.append({"path": item.change.path,
                                              "sha256": item.change.sha256})
            if not record.ok:
                path = next((i.change.path for i in staged if not i.installed), "a file")
                raise TransportError(f"upload of {path} failed, previous file kept: cannot "
                                     f"rename it into place on {hostname}: exit "
                                     f"{record.status}: {check_output(record.output, '')}")
            logger.info("sync %s: installed %d file(s)", hostname, len(staged))
            for change in settled:
                outcome.applied[change.path] = change.sha256
        elif step.kind == activate.REMOVE:
            if not record.ok:
                raise ReloadFailed(f"removing {step.subject} on {hostname} failed: exit "
                                   f"{record.status}: {record.output.strip()[:300]}")
            outcome.files_changed.append({"path": step.subject, "sha256": None})
            outcome.forgotten.append(step.subject)
            logger.info("sync %s: removed %s, no longer desired", hostname, step.subject)
    if failures:
        raise CheckFailed(
            f"check refused {len(failures)} file(s) on {hostname}; nothing was installed, "
            "the node keeps its previous files: "
            + "; ".join(failure.describe() for failure in failures))
    if not staged:
        for change in settled:
            outcome.applied[change.path] = change.sha256
    commands = settings.OVERLAY_RELOAD_COMMANDS
    for action in _reload_order(to_reload):
        if not commands.get(action) and action not in outcome.reloads:  # nothing to run
            outcome.reloads.append(action)
            for change in to_reload[action]:
                outcome.applied[change.path] = change.sha256
    logger.info("sync %s: reloads run: %s", hostname, ", ".join(outcome.reloads) or "none")


@dataclass
class _Progress:
    """How far the activation got that matters for undoing it."""

    armed: confirm.Armed | None = None


def _last_of_action(steps: list[activate.Step], number: int) -> bool:
    following = steps[number + 1] if number + 1 < len(steps) else None
    return following is None or following.subject != steps[number].subject or \
        following.kind != activate.RELOAD


def _reload_order(to_reload: dict[str, list[FileChange]]) -> list[str]:
    order = [action for action in RELOAD_ORDER if action in to_reload]
    return order + sorted(action for action in to_reload if action not in RELOAD_ORDER)


def _still_ours(path: str, digest: str, current: bytes | None, *, hostname: str,
                outcome: ApplyOutcome) -> bool:
    """Whether a file no longer desired still holds what we deployed (then it is removed:
    by the activation, or ``_remove_stale``); otherwise it is only forgotten here.
    ``current``: its content."""
    if current is not None and sha256_text(current) == digest:
        return True
    if current is None:
        logger.info("sync %s: %s is no longer desired and already gone", hostname, path)
    else:
        logger.warning("sync %s: %s is no longer desired but was changed on the node; left in "
                       "place, no longer managed", hostname, path)
    outcome.forgotten.append(path)
    return False


def _settle_earlier_activation(transport: Transport, *, hostname: str, released: bool,
                               outcome: ApplyOutcome) -> None:
    """Read what an earlier, interrupted activation left on the node (one stat if nothing).

    A rollback nobody recorded (the worker that armed it died) stops the pass as a
    rollback, unless an operator released the node; a timer still running makes the
    pass wait; a finished or dead activation's directory is removed.
    """
    directory = settings.OVERLAY_CONFIRM_DIRECTORY
    verdict = confirm.inspect(transport, directory)
    if verdict is None:
        return
    if verdict.state == confirm.WAITING:
        raise AwaitingConfirmation(
            f"a change to {hostname} is still awaiting confirmation (its revert timer runs "
            f"on the node, in {directory}); this sync waits for it and is retried")
    if verdict.state in (confirm.ROLLED_BACK, confirm.INTERRUPTED) and not released:
        outcome.confirmation = Confirmation.ROLLED_BACK
        what = ("restored its previous IPSec/ipfilter files" if verdict.state ==
                confirm.ROLLED_BACK else "began restoring its previous files and was "
                "interrupted (check the files)")
        raise RolledBack(
            f"rolled back: {hostname} {what} after a change nobody confirmed (the sync that "
            f"made it did not finish); nothing is pushed until `overlay update --force "
            f"{hostname}`. Node's log: {verdict.detail or 'none'}")
    logger.info("sync %s: removing what an earlier activation left in %s (%s)", hostname,
                directory, verdict.state)
    confirm.clear(transport, directory)


def _stage(change: FileChange, transport: Transport, *, verify: bool,
           current: Mapping[str, bytes | None]) -> _Staged | None:
    """Upload the change under a temporary name; None when the node holds it already."""
    prepared = _prepare(change, transport, verify=verify, current=current)
    if prepared is None:
        return None
    data, mode, owner, group = prepared
    with _naming(change.path):
        temp = transport.stage_file(change.path, data, mode=mode, owner=owner, group=group)
    return _Staged(change=change, temp=temp, data=data)


def _read_current(candidates: Sequence[FileChange], stale: Sequence[tuple[str, str]],
                  transport: Transport, *, verify: bool) -> dict[str, bytes | None]:
    """What the pass must read from the node, read together (a few round trips for all):
    ``/usbkey/config`` to merge into, every candidate when verifying, every file no longer
    desired."""
    paths = [change.path for change in candidates if verify or change.usbkey is not None]
    return transport.read_files([*paths, *(path for path, _digest in stale)])


def _prepare(change: FileChange, transport: Transport, *, verify: bool,
             current: Mapping[str, bytes | None]) -> tuple[bytes, int, str, str] | None:
    """The bytes, mode and owner to upload for the change; None when the node holds it.
    ``current``: what the node holds (``_read_current``)."""
    if change.usbkey is not None:
        return _usbkey_bytes(change, transport, current[change.path])
    desired = change.file
    assert desired is not None
    if verify:
        held = current[change.path]
        if held is not None and sha256_text(held) == change.sha256:
            return None
    return desired.data, desired.mode, desired.owner, desired.group


def _usbkey_bytes(change: FileChange, transport: Transport, current: bytes | None
                  ) -> tuple[bytes, int, str, str] | None:
    edit = change.usbkey
    assert edit is not None
    if current is None:
        logger.warning("sync: %s is missing on the node; creating it with the managed keys",
                       edit.path)
    text = (current or b"").decode("utf-8", errors="surrogateescape")
    merged = apply_managed_keys(text, edit.managed).encode("utf-8", errors="surrogateescape")
    if current is not None and merged == current:
        return None
    mode, owner, group = _usbkey_mode(transport, edit.path) if current is not None else (
        USBKEY_DEFAULT_MODE, USBKEY_DEFAULT_OWNER, USBKEY_DEFAULT_OWNER)
    logger.info("sync: rewriting the managed keys of %s (%d keys)", edit.path,
                len(edit.managed))
    return merged, mode, owner, group


def _checks_to_run(staged: list[_Staged]) -> tuple[list[CheckFailure], list[tuple[str, str]]]:
    """Refusals of the keys file, parsed here (it never reaches a node command), and the
    (path, check command) to run on the node for every other file that has a check."""
    keys = path_keys(node_paths())
    templates = settings.OVERLAY_CHECK_COMMANDS
    refusals: list[CheckFailure] = []
    on_node: list[tuple[str, str]] = []
    for item in staged:
        path = item.change.path
        key = keys.get(path)
        if key == PRESHARED_KEY:
            problems = preshared_problems(item.data.decode("utf-8", errors="replace"))
            if problems:
                refusals.append(CheckFailure(path=path, check="parsed here", exit_status=None,
                                             output="; ".join(problems)))
            continue
        template = templates.get(key) if key else None
        if template:
            on_node.append((path, node_check_command(template, item.temp)))
    return refusals, on_node


def _reachability_reloads() -> tuple[list[str], list[str]]:
    """The reload actions that can change reachability, in order, and their commands: what
    the revert timer re-runs after restoring the previous files."""
    actions = [action for action in RELOAD_ORDER if action in REACHABILITY_ACTIONS]
    commands = [command for action in actions
                for command in settings.OVERLAY_RELOAD_COMMANDS.get(action, ())]
    return actions, commands


def _check(staged: list[_Staged], transport: Transport, *, hostname: str,
           outcome: ApplyOutcome) -> None:
    """Run every staged file's check; raise CheckFailed naming each refusal."""
    failures, on_node = _checks_to_run(staged)
    if not transport.executes_commands:
        on_node = []
    if on_node:  # every check in one command: one round trip
        result = transport.run(batch_script([command for _path, command in on_node]))
        for (path, command), (status, output) in zip(
                on_node, parse_batch(result.stdout, len(on_node)), strict=True):
            outcome.commands.append({"command": command,
                                     "exit_status": -1 if status is None else status})
            if status != 0:
                failures.append(CheckFailure(
                    path=path, check=command, exit_status=status,
                    output=check_output(output, "" if status is not None else
                                        result.stderr or "the check left no result")))
    if failures:
        raise CheckFailed(
            f"check refused {len(failures)} file(s) on {hostname}; nothing was installed, "
            "the node keeps its previous files: "
            + "; ".join(failure.describe() for failure in failures))


def _arm(staged: list[_Staged], transport: Transport, *,
         reconnect: Connect | None) -> confirm.Armed | None:
    """Start the node's revert timer when files of a reachability reload are changing."""
    timeout = float(settings.OVERLAY_CONFIRM_TIMEOUT or 0)
    risky = [item.change.path for item in staged if item.change.reload in REACHABILITY_ACTIONS]
    if not risky or timeout <= 0 or reconnect is None or not transport.executes_commands:
        return None
    actions, commands = _reachability_reloads()
    return confirm.arm(transport, directory=settings.OVERLAY_CONFIRM_DIRECTORY,
                       timeout=timeout, paths=risky, actions=actions, commands=commands)


def _reload(to_reload: dict[str, list[FileChange]], transport: Transport, *, hostname: str,
            outcome: ApplyOutcome) -> None:
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


def _confirm(armed: confirm.Armed, reconnect: Connect, *, hostname: str,
             outcome: ApplyOutcome) -> None:
    verdict = confirm.confirm(reconnect, armed, hostname=hostname)
    if verdict.state == confirm.CONFIRMED:
        outcome.confirmation = Confirmation.CONFIRMED
        return
    outcome.confirmation = Confirmation.ROLLED_BACK
    _forget(armed, outcome)
    raise RolledBack(
        f"rolled back: the change to {hostname}'s {', '.join(armed.actions)} files was not "
        f"confirmed over a new SSH connection within {armed.timeout:g} s, so the node "
        "restores its previous files and reloads them; nothing is pushed until `overlay "
        f"update --force {hostname}`. {verdict.detail}".rstrip())


def _forget(armed: confirm.Armed, outcome: ApplyOutcome) -> None:
    """The armed files are back at their previous versions: none counts as applied."""
    for path in armed.paths:
        outcome.applied.pop(path, None)


def _restore_after_failure(transport: Transport, armed: confirm.Armed,
                           reconnect: Connect | None, exc: BaseException, *, hostname: str,
                           outcome: ApplyOutcome) -> None:
    """The pass failed after arming: restore the previous files now, over this connection
    or a new one; if neither answers, the node's timer does it at the deadline."""
    _forget(armed, outcome)
    verdict: confirm.Verdict | None = None
    if not isinstance(exc, TransportError):  # this connection still works
        with contextlib.suppress(TransportError):
            verdict = confirm.revert_now(transport, armed)
    settled = verdict is not None and (verdict.rolled_back
                                       or verdict.state == confirm.NOT_ARMED)
    if not settled and reconnect is not None:
        try:
            with reconnect() as link:
                verdict = confirm.revert_now(link, armed)
        except TransportError as error:
            logger.warning("sync %s: cannot restore the previous files now: %s", hostname,
                           error)
    if verdict is not None and verdict.state == confirm.NOT_ARMED:
        # The pass stopped before its timer started: nothing was installed under it.
        logger.info("sync %s: no revert timer was started; nothing to restore", hostname)
        return
    if verdict is not None and verdict.state == confirm.ROLLED_BACK:
        outcome.confirmation = Confirmation.RESTORED
        outcome.error = "previous IPSec/ipfilter files restored on the node"
        return
    outcome.confirmation = Confirmation.ROLLED_BACK
    outcome.error = (f"the node restores its previous IPSec/ipfilter files when its revert "
                     f"timer runs out ({armed.timeout:g} s)")


def _discard(items: list[_Staged], transport: Transport) -> None:
    for item in items:
        try:
            transport.discard_staged(item.temp)
        except (TransportError, ValueError) as exc:  # the next sync removes it
            logger.warning("sync: could not remove the staged %s: %s", item.temp, exc)


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


def _remove_stale(path: str, transport: Transport, *, hostname: str,
                  outcome: ApplyOutcome) -> None:
    """Remove a file no longer desired that still holds what we deployed (``_still_ours``)."""
    command = f"rm -f -- {shlex.quote(path)}"
    result = transport.run(command)
    outcome.commands.append({"command": command, "exit_status": result.exit_status})
    if not result.ok:
        raise ReloadFailed(f"removing {path} on {hostname} failed: exit "
                           f"{result.exit_status}: {result.stderr.strip()[:300]}")
    outcome.files_changed.append({"path": path, "sha256": None})
    logger.info("sync %s: removed %s, no longer desired", hostname, path)
    outcome.forgotten.append(path)
