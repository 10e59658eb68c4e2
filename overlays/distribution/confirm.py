"""Commit confirmed: a change that can cut the manager off reverts unless confirmed.

The IPSec and ipfilter reloads can leave a node unreachable (a wrong allow-list, a
policy that encrypts the management path). Before any of their files replaces a live
one, ``arm`` runs ONE command on the node that

1. copies the files about to be replaced into ``OVERLAY_CONFIRM_DIRECTORY/backup/``
   (mode 0700; ``cp -p`` keeps mode and owner; a file that did not exist is noted);
2. writes ``revert.sh``, a POSIX sh script holding the restore steps and the reload
   commands, creates the ``armed`` flag, and starts the script in the background with
   SIGHUP ignored and its input and output detached (what ``nohup`` does): it belongs to
   no SSH session and outlives the connection.

The script waits ``OVERLAY_CONFIRM_TIMEOUT`` seconds (one second at a time, leaving as
soon as ``armed`` is gone). Then it renames ``armed`` to ``reverting``, restores the
previous files (temporary copy, then rename), re-runs the reloads and renames its log to
``rolled-back``: the verdict the manager reads on its next connection. If every file is
still its previous version (the sync stopped before installing), it only removes the
directory: there is nothing to revert.

After the reloads the manager opens a NEW connection (proof that SSH still answers
through the new firewall and policy) and runs ``confirm``: it renames ``armed`` to
``confirmed``; rename is atomic, so exactly one of the manager and the timer wins. The
winner decides: the manager kills the timer and removes the directory (no backup, no
timer left behind), or the node has rolled back. A manager that cannot connect before
the deadline records "rolled back": it never confirmed, so the node reverts by itself.

What a worker that dies half-way leaves is read by the next sync of the node before it
changes anything (``inspect``): a ``rolled-back`` verdict nobody recorded (the node is
then held, as if the rollback had been seen), a timer still running (the sync waits and
is retried), a directory left by a finished or dead activation (removed).

Reads and runs on the node only; what to record is the caller's (``apply``, ``run``).
"""

from __future__ import annotations

import logging
import posixpath
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from nodes.transports import Transport, TransportError
from nodes.transports.base import temporary_name

logger = logging.getLogger(__name__)

# What ``inspect`` and ``confirm`` can find on the node.
ROLLED_BACK = "rolled-back"  # the timer restored the previous files; its log follows
REVERTING = "reverting"  # the timer is restoring them right now
WAITING = "waiting"  # armed, the timer runs: a change is awaiting confirmation
INTERRUPTED = "interrupted"  # the timer died while restoring: the files are uncertain
STALE = "stale"  # armed, but the timer is gone (the node rebooted): nothing will revert
LEFTOVER = "leftover"  # a confirmed activation's directory that was not removed
CONFIRMED = "confirmed"
MISSING = "missing"  # no verdict where one should be: nobody can tell what happened
NOT_ARMED = "not-armed"  # no timer directory at all: nothing was installed under a timer
MARGIN = 0.5  # seconds before the deadline at which the manager stops trying to confirm
RETRY_PAUSE = 0.5  # seconds between confirmation attempts
LOG_LIMIT = 1500


@dataclass(frozen=True)
class Armed:
    """A revert timer running on the node for this sync."""

    directory: str
    timeout: float
    deadline: float  # time.monotonic() by which the manager must have confirmed
    armed_at: datetime
    paths: tuple[str, ...]
    actions: tuple[str, ...]


@dataclass(frozen=True)
class Verdict:
    """What the node said (or what the manager concluded) about an activation."""

    state: str
    detail: str = ""

    @property
    def rolled_back(self) -> bool:
        return self.state in (ROLLED_BACK, REVERTING, INTERRUPTED, MISSING)


def _q(text: str) -> str:
    return shlex.quote(text)


def _tail(text: str) -> str:
    text = text.strip()
    return text if len(text) <= LOG_LIMIT else "..." + text[-LOG_LIMIT:]


def revert_script(directory: str, timeout: int, restores: Sequence[tuple[str, str]],
                  commands: Sequence[str], *, armed_at: datetime) -> str:
    """The node's revert timer: POSIX sh, no secrets (the backups are separate files).

    ``restores``: (node path, backup file name); a path whose backup is missing had no
    previous version and is removed.
    """
    lines = [
        "#!/bin/sh",
        "# Revert timer of the overlay manager (commit confirmed), armed "
        f"{armed_at:%Y-%m-%dT%H:%M:%SZ} for {timeout} s.",
        "# Unless the manager renames 'armed' away over a new SSH connection in time,",
        "# restore the previous files from backup/ and run their reloads again.",
        "PATH=$PATH:/usr/sbin:/usr/bin:/sbin:/bin",
        f"D={_q(directory)}",
        'if [ "$1" != now ]; then',
        "    n=0",
        f'    while [ "$n" -lt {timeout} ]; do',
        "        sleep 1",
        "        n=$((n + 1))",
        '        [ -e "$D/armed" ] || exit 0',
        "    done",
        "fi",
        'mv "$D/armed" "$D/reverting" 2>/dev/null || exit 0',
        "# Nothing was installed (the sync stopped before): nothing to revert or report.",
        "same=yes",
    ]
    for path, backup in restores:
        lines.append(f'if [ -e "$D/backup/{backup}" ]; then cmp -s "$D/backup/{backup}" '
                     f"{_q(path)} || same=no; elif [ -e {_q(path)} ]; then same=no; fi")
    lines += [
        'if [ "$same" = yes ] && [ "$1" != now ]; then rm -rf "$D"; exit 0; fi',
        "{",
        '    echo "reverted at $(date -u +%Y-%m-%dT%H:%M:%SZ)"',
    ]
    for path, backup in restores:
        directory_of, name = posixpath.split(path)
        temp = posixpath.join(directory_of, temporary_name(name))
        lines.append(f'    if [ -e "$D/backup/{backup}" ]; then cp -p "$D/backup/{backup}" '
                     f'{_q(temp)} && mv -f {_q(temp)} {_q(path)}; '
                     f'echo "restored "{_q(path)}": $?"; '
                     f'else rm -f {_q(path)}; echo "removed "{_q(path)}": $?"; fi')
    for command in commands:
        lines.append(f"    {command}; echo \"exit $?: \"{_q(command)}")
    lines += [
        '} > "$D/revert.log" 2>&1',
        'mv "$D/revert.log" "$D/rolled-back"',
        "",
    ]
    return "\n".join(lines)


def arm_command(*, directory: str, timeout: float, paths: Sequence[str],
                actions: Sequence[str], commands: Sequence[str]) -> tuple[str, Armed]:
    """The one node command that keeps the previous ``paths`` and starts the revert timer,
    and the ``Armed`` it makes: the command prints ``armed`` last, once the timer runs.

    ``Armed.deadline`` counts from now: set it again (``dataclasses.replace``) right
    before the command is sent, never after, so the manager stops confirming before the
    node's timer runs out.
    """
    armed_at = datetime.now(UTC)
    seconds = max(1, int(-(-timeout // 1)))  # whole seconds, rounded up
    copies = [f"if [ -e {_q(path)} ]; then cp -p {_q(path)} \"$D/backup/{number}\"; fi"
              for number, path in enumerate(paths, start=1)]
    restores = [(path, str(number)) for number, path in enumerate(paths, start=1)]
    script = revert_script(directory, seconds, restores, commands, armed_at=armed_at)
    command = "\n".join([
        "set -e",
        f"D={_q(directory)}",
        # Tests before mkdir and rm: on the usual path neither process is started.
        '[ -d "${D%/*}" ] || mkdir -p "${D%/*}"',
        "umask 077",
        '[ ! -e "$D" ] && [ ! -L "$D" ] || rm -rf "$D"',  # a dangling link goes too
        'mkdir -p "$D/backup"',
        *copies,
        "cat > \"$D/revert.sh\" <<'OVERLAY_REVERT_SCRIPT'",
        script.rstrip("\n"),
        "OVERLAY_REVERT_SCRIPT",
        ': > "$D/armed"',
        # What nohup does, without its process: SIGHUP stays ignored across the exec.
        '( trap "" HUP; exec sh "$D/revert.sh" ) </dev/null >/dev/null 2>&1 &',
        'echo $! > "$D/timer.pid"',
        "echo armed",
    ])
    return command, Armed(directory=directory, timeout=timeout,
                          deadline=time.monotonic() + timeout, armed_at=armed_at,
                          paths=tuple(paths), actions=tuple(actions))


def arm_failure(hostname: str, exit_status: int | None, output: str) -> TransportError:
    """The error of an ``arm_command`` that did not report ``armed``."""
    status = "no result" if exit_status is None else f"exit {exit_status}"
    return TransportError(f"cannot start the revert timer on {hostname}: {status}: "
                          f"{_tail(output) or 'no output'}")


def arm(transport: Transport, *, directory: str, timeout: float, paths: Sequence[str],
        actions: Sequence[str], commands: Sequence[str]) -> Armed:
    """Keep the previous ``paths`` on the node and start its revert timer (one command).

    Raises TransportError when the node could not be prepared; nothing is armed then.
    """
    command, armed = arm_command(directory=directory, timeout=timeout, paths=paths,
                                 actions=actions, commands=commands)
    armed = replace(armed, deadline=time.monotonic() + timeout)
    result = transport.run(command)
    if not result.ok or "armed" not in result.stdout:
        raise arm_failure(transport.address.hostname, result.exit_status,
                          result.stderr or result.stdout)
    logger.info("sync %s: previous files kept and a %d s revert timer started on the node",
                transport.address.hostname, max(1, int(-(-timeout // 1))))
    return armed


def _prelude(directory: str) -> list[str]:
    """``D`` and ``timer_alive``: true, with the timer's pid in ``p``, only if that process
    still is the timer (a pid left by a node that rebooted may belong to anything now).
    The pid is read by the shell itself: one process (``ps``), not three."""
    return [
        f"D={_q(directory)}",
        "timer_alive() {",
        '    { read -r p < "$D/timer.pid"; } 2>/dev/null || return 1',
        '    case "$(ps -p "$p" -o args= 2>/dev/null)" in',
        "        *revert.sh*) return 0 ;;",
        "        *) return 1 ;;",
        "    esac",
        "}",
    ]


def _confirm_command(directory: str) -> str:
    return "\n".join([
        *_prelude(directory),
        'if mv "$D/armed" "$D/confirmed" 2>/dev/null; then',
        '    timer_alive && kill "$p" 2>/dev/null',
        '    rm -rf "$D"',
        f"    echo {CONFIRMED}",
        f'elif [ -e "$D/rolled-back" ]; then echo {ROLLED_BACK}; cat "$D/rolled-back"',
        f'elif [ -e "$D/reverting" ]; then echo {REVERTING}',
        # An earlier attempt of this confirmation got through but its answer was lost (or
        # the timer found nothing to revert): nothing can revert any more.
        f'elif [ -e "$D/confirmed" ] || [ ! -d "$D" ]; then rm -rf "$D"; echo {CONFIRMED}',
        f"else echo {MISSING}; fi",
    ])


def _inspect_command(directory: str) -> str:
    return "\n".join([
        *_prelude(directory),
        f'if [ -e "$D/rolled-back" ]; then echo {ROLLED_BACK}; cat "$D/rolled-back"',
        'elif [ -e "$D/armed" ] || [ -e "$D/reverting" ]; then',
        f"    if timer_alive; then echo {WAITING}",
        f'    elif [ -e "$D/reverting" ]; then echo {INTERRUPTED}',
        f"    else echo {STALE}; fi",
        f"else echo {LEFTOVER}; fi",
    ])


def _verdict(text: str) -> Verdict:
    state, _, detail = text.strip().partition("\n")
    return Verdict(state=state.strip() or MISSING, detail=_tail(detail))


def confirm(connect: Callable[[], Transport], armed: Armed, *, hostname: str) -> Verdict:
    """Cancel the node's revert timer over a new connection, trying until the deadline.

    A verdict of ``confirmed`` means the timer is gone and the backups removed. Anything
    else means the node restores (or has restored) its previous files by itself: a
    manager that could not confirm never will, so no later confirmation can race it.
    """
    attempts = 0
    last_error = ""
    while True:
        remaining = armed.deadline - MARGIN - time.monotonic()
        if remaining <= 0:
            break
        attempts += 1
        try:
            with connect() as transport:
                result = transport.run(_confirm_command(armed.directory),
                                       timeout=max(remaining, 1.0))
        except TransportError as exc:
            last_error = str(exc)
            logger.warning("sync %s: confirmation attempt %d failed: %s", hostname, attempts,
                           last_error)
            if not exc.retryable:
                break
            time.sleep(min(RETRY_PAUSE, max(armed.deadline - MARGIN - time.monotonic(), 0)))
            continue
        verdict = _verdict(result.stdout)
        logger.info("sync %s: confirmation over a new connection: %s", hostname, verdict.state)
        return verdict
    return Verdict(state=ROLLED_BACK, detail=(
        f"no new SSH connection could confirm the change within {armed.timeout:g} s "
        f"({attempts} attempt(s); last error: {last_error or 'none'}); the node restores its "
        "previous files and reloads them by itself"))


def revert_now(transport: Transport, armed: Armed) -> Verdict:
    """Restore the previous files at once (the sync failed after arming) and clean up."""
    command = "\n".join([
        *_prelude(armed.directory),
        # No directory: the timer was never started (the pass stopped before), or it
        # found nothing installed and gave up. Either way there is nothing to restore.
        f'[ -d "$D" ] || {{ echo {NOT_ARMED}; exit 0; }}',
        'sh "$D/revert.sh" now',
        f'if [ -e "$D/rolled-back" ]; then echo {ROLLED_BACK}; cat "$D/rolled-back"; '
        f"else echo {MISSING}; fi",
        'timer_alive && kill "$p" 2>/dev/null',
        'rm -rf "$D"',
    ])
    result = transport.run(command)
    return _verdict(result.stdout)


def inspect(transport: Transport, directory: str) -> Verdict | None:
    """What an earlier activation left on the node; None (one stat) when nothing."""
    if transport.stat(directory) is None:
        return None
    result = transport.run(_inspect_command(directory))
    return _verdict(result.stdout)


def clear(transport: Transport, directory: str) -> None:
    """Remove what an earlier activation left (its timer, if any, gives up by itself)."""
    command = "\n".join([
        *_prelude(directory),
        'timer_alive && kill "$p" 2>/dev/null',
        'rm -rf "$D"',
    ])
    result = transport.run(command)
    if not result.ok:
        raise TransportError(f"cannot remove {directory} on {transport.address.hostname}: "
                             f"exit {result.exit_status}: {_tail(result.stderr)}")
