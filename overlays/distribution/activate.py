"""One node command that checks, arms, installs and reloads: a push pays one round trip.

Issue 10's order of steps (check every staged file, start the revert timer, rename the
files into place, reload) used to cost one SSH command per file and per step. Here the
steps become ONE POSIX sh script, run over the sync's connection once the data is
uploaded (``Transport.upload_temporaries``). It keeps the guarantees of the step by step
order, on the node itself:

* it first removes what interrupted uploads left beside the plan's files (never this
  pass's own temporary files), then gives every staged file its owner and mode;
* it runs every check; one refusal (or a refusal found here, ``refuse``) and it removes
  every staged file and stops: nothing was renamed, the node keeps all its files;
* it starts the revert timer (``confirm.arm_command``) and stops unless it printed
  ``armed``: nothing is installed without its timer;
* it renames the staged files into place (``mv -f`` within one directory: rename(2),
  atomic) and removes files no longer desired, stopping at the first failure;
* it runs the reload commands in order, stopping at the first that fails.

Every step's output is framed by two marker lines, ``@@<nonce> <index>`` before it and
``@@<nonce> <kind> <index> <exit status>`` after it, so the caller learns each step's
result (the deployment keeps one command per check, removal and reload, as before) and
where the script stopped. A step without its closing marker did not finish. The nonce is
random per script: a step's output (a check quoting a file line, say) cannot forge a
record. The output is not captured and re-printed: on the node, each step costs one
``( subshell )`` and its own commands, not a command substitution and, when it printed
anything, a ``printf | sed`` pipeline (up to three processes fewer per step). The
confirmation stays a separate, NEW connection (``confirm.confirm``). Pure text in and
out: running it is ``apply``'s.
"""

from __future__ import annotations

import posixpath
import re
import secrets
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from nodes.transports.base import by_directory

CLEAN = "clean"  # leftovers of interrupted uploads removed
OWN = "own"  # owner and mode of a staged file
CHECK = "check"
ARM = "arm"
INSTALL = "install"
REMOVE = "remove"  # a file no longer desired
RELOAD = "reload"

# A step that fails stops the script (after removing every staged file); a failed check
# stops it only once every check has run, so each refusal is reported.
_STOPS = (CLEAN, OWN, ARM, INSTALL, REMOVE, RELOAD)
_HEX12 = "[0-9a-f]" * 12


@dataclass(frozen=True)
class Step:
    """One command of the activation; ``subject`` is the file or reload action it is for."""

    kind: str
    command: str
    subject: str = ""


@dataclass(frozen=True)
class Record:
    """What the node reported for one step."""

    status: int
    output: str

    @property
    def ok(self) -> bool:
        return self.status == 0


def cleanup_command(paths: Sequence[str], keep: Sequence[str]) -> str:
    """Remove the temporary files (``.<name>.tmp-<12 hex>``) beside ``paths``, except
    ``keep`` (this pass's own); print each path removed."""
    lines = []
    own = "|".join(shlex.quote(path) for path in sorted(keep)) or "''"
    for directory, names in sorted(by_directory(paths).items()):
        for name in sorted(names):
            prefix = shlex.quote(posixpath.join(directory, f".{name}.tmp-"))
            lines.append(f"for f in {prefix}{_HEX12}; do [ -e \"$f\" ] || continue; "
                         f"case \"$f\" in {own}) continue ;; esac; "
                         "rm -f -- \"$f\" && printf '%s\\n' \"$f\" || exit 1; done")
    return "\n".join(lines) or ":"


def install_command(pairs: Sequence[tuple[str, str]]) -> str:
    """Rename every staged ``(temp, path)`` into place, printing each path once renamed;
    the first failure stops it (``mv -f`` in one directory is rename(2): atomic)."""
    return " && ".join(f"mv -f -- {shlex.quote(temp)} {shlex.quote(path)} && "
                       f"printf '%s\\n' {shlex.quote(path)}" for temp, path in pairs) or ":"


def script(steps: Sequence[Step], *, temps: Sequence[str], refuse: bool = False) -> str:
    """The activation script for ``steps`` (in the order clean, own, check, arm, install,
    remove, reload). ``temps``: every staged file, removed whenever the script stops
    early. ``refuse``: a check here already refused a file, so stop after the node's
    checks have run (each is still reported)."""
    marker = "@@" + secrets.token_hex(8)
    quoted = " ".join(shlex.quote(temp) for temp in temps)
    lines = [f"discard() {{ rm -f -- {quoted}; }}" if temps else "discard() { :; }",
             "refused="]
    # The gate: the last step before anything can become live (the last check, else the
    # last owner/mode step). Past it, a refusal has stopped the script.
    gate = max((n for n, step in enumerate(steps) if step.kind in (CLEAN, OWN, CHECK)),
               default=-1)
    checks = any(step.kind == CHECK for step in steps)
    if refuse and gate < 0:
        lines.append("discard; exit 0")
    for number, step in enumerate(steps):
        closing = f"printf '\\n{marker} {step.kind} {number} %d\\n' \"$s\""
        if step.kind == ARM:
            # Captured: the timer runs only if the command got to its last line, "armed".
            lines += [f"o=$( {{ {step.command}", "} 2>&1 ); s=$?",
                      f"printf '{marker} {number}\\n%s' \"$o\"", closing,
                      '[ "$s" -eq 0 ] && [ -z "${o##*armed}" ] || { discard; exit 0; }']
        else:
            # A subshell: an ``exit`` or ``set -e`` in the step stays within it.
            lines += [f"printf '{marker} {number}\\n'", f"( {step.command}", ") 2>&1; s=$?",
                      closing]
            lines.append('[ "$s" -eq 0 ] || { discard; exit 0; }' if step.kind in _STOPS
                         else '[ "$s" -eq 0 ] || refused=1')
        if number == gate:
            if checks:
                lines.append('[ -z "$refused" ] || { discard; exit 0; }')
            if refuse:
                lines.append("discard; exit 0")
    return "\n".join(lines)


def parse(stdout: str) -> dict[int, Record]:
    """The records the script printed, by step number; a step missing did not finish.

    The first step's opening line names the marker (anything a login shell printed
    before it is ignored)."""
    found = re.search(r"(?m)^(@@[0-9a-f]{16}) 0$", stdout)
    if found is None:
        return {}
    marker = re.escape(found.group(1))
    frames = re.finditer(rf"(?m)^{marker} (\d+)\n(.*?)\n{marker} [a-z]+ \1 (-?\d+)$",
                         stdout, flags=re.DOTALL)
    return {int(frame.group(1)): Record(status=int(frame.group(3)),
                                        output=frame.group(2).rstrip("\n"))
            for frame in frames}
