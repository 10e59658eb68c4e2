"""Checking new files before they replace live ones: on the node, and the keys file here.

A file the platform rejects must never become live: a half-loaded firewall or IPSec
configuration can cut the node off. So every file of a sync is first uploaded under a
temporary name beside its target (``Transport.stage_file``), and the checks below run on
those staged copies; only when every check passed is anything renamed into place
(``apply``). A failed check installs nothing on that node.

* ``OVERLAY_CHECK_COMMANDS`` (settings, by path key): a command run on the node with
  ``{file}`` replaced by the staged file, e.g. ``ipf -n -f {file}`` (parse only),
  ``/usr/lib/inet/in.iked -c -f {file}``, ``ipsecconf -c {file}`` (never ``-f``, which
  flushes the live policy). Its own output, with anything that looks like a key
  redacted, becomes the node's failure message. Skipped on a transport that runs no
  command (the local preview).
* The pre-shared keys file is never handed to a command whose output could echo a key:
  it is parsed back here (``preshared_problems``), which names lines, never values.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PRESHARED_KEY = "ike_preshared"  # path key of the pre-shared keys file
OUTPUT_LIMIT = 1500  # characters of a check's output kept in the failure message

# A run of 32 or more hex digits is treated as key material wherever it appears.
_KEYLIKE = re.compile(r"(?i)(?<![0-9a-f])[0-9a-f]{32,}(?![0-9a-f])")
_HEX_KEY = re.compile(r"(?:[0-9a-fA-F]{2})+")
_PRESHARED_ITEMS = ("localidtype", "localid", "remoteidtype", "remoteid", "key")
# The layout the generator writes: comments and blank lines, then one block, items in order.
_GENERATED_GAP = re.compile(r"(?:#[^\n]*\n|[ \t]*\n)*")
_GENERATED_BLOCK = re.compile(_GENERATED_GAP.pattern + "".join((
    r"\{\n",
    r"[ \t]*localidtype IP\n",
    r"[ \t]*localid ([0-9.]+)\n",
    r"[ \t]*remoteidtype IP\n",
    r"[ \t]*remoteid ([0-9.]+)\n",
    r"[ \t]*key (?:[0-9a-fA-F]{2})+\n",
    r"\}\n",
)))


@dataclass(frozen=True)
class CheckFailure:
    """One staged file a check refused: the file, the check, and what it said."""

    path: str
    check: str  # the command line as run on the node, or "parsed here"
    exit_status: int | None
    output: str

    def describe(self) -> str:
        status = "" if self.exit_status is None else f" exited {self.exit_status}"
        return f"{self.path}: `{self.check}`{status}: {self.output or 'no output'}"


def redact_keys(text: str) -> str:
    """``text`` with every key-like hex run replaced, so no check output carries a key."""
    return _KEYLIKE.sub("<redacted>", text)


def check_output(stdout: str, stderr: str) -> str:
    """A check's own words for the failure message: both streams, redacted, the tail kept."""
    text = redact_keys("\n".join(part.strip() for part in (stderr, stdout) if part.strip()))
    return text if len(text) <= OUTPUT_LIMIT else "..." + text[-OUTPUT_LIMIT:]


def node_check_command(template: str, staged: str) -> str:
    """The check command for one staged file (``{file}`` quoted for the node's shell)."""
    return template.replace("{file}", shlex.quote(staged))


def batch_script(commands: Sequence[str]) -> str:
    """One shell script running every check command, so a sync pays one round trip.

    Each check's exit status and merged output are printed as a record: a line
    ``@@check <index> <status>``, then its output lines, each prefixed ``| ``.
    """
    lines = []
    for index, command in enumerate(commands):
        lines += [f"o=$( {{ {command}", "} 2>&1 ); s=$?",
                  f"printf '@@check {index} %d\\n' \"$s\"",
                  "[ -z \"$o\" ] || printf '%s\\n' \"$o\" | sed 's/^/| /'"]
    return "\n".join(lines)


def parse_batch(stdout: str, count: int) -> list[tuple[int | None, str]]:
    """(exit status, output) of each check of ``batch_script``; (None, ...) when a check
    left no record (the batch was cut short)."""
    statuses: dict[int, int] = {}
    outputs: dict[int, list[str]] = {}
    current: int | None = None
    for line in stdout.splitlines():
        if line.startswith("@@check "):
            parts = line.split()
            if len(parts) == 3 and parts[1].isdigit() and parts[2].lstrip("-").isdigit():
                current = int(parts[1])
                statuses[current] = int(parts[2])
                outputs[current] = []
                continue
        if current is not None and line.startswith("| "):
            outputs[current].append(line[2:])
    return [(statuses.get(index), "\n".join(outputs.get(index, [])))
            for index in range(count)]


def path_keys(paths: Mapping[str, str]) -> dict[str, str]:
    """Node path -> path key (``usbkey_config``, ``ike_preshared``, ...) of managed files."""
    return {path: key for key, path in paths.items()}


def preshared_problems(text: str) -> list[str]:
    """What is wrong with a pre-shared keys file, by line; never a key's value.

    The file in.iked reads: ``{`` ... ``}`` blocks of ``localidtype IP``, ``localid
    ADDRESS``, ``remoteidtype IP``, ``remoteid ADDRESS`` and ``key HEX``; ``#`` comments
    in the first column only; one block per remote address.
    """
    if preshared_in_generated_layout(text):
        return []
    return preshared_line_problems(text)


def preshared_in_generated_layout(text: str) -> bool:
    """Whether the file is in the generator's own layout, every address valid and each remote
    named once: then it has no problem. A full sync checks every node's file (at 200
    nodes, 200 files of a thousand lines), so the usual case costs a few regex matches;
    anything else is parsed line by line, which names its problems."""
    remotes: set[str] = set()
    position = 0
    for match in _GENERATED_BLOCK.finditer(text):
        local, remote = match.groups()
        if (match.start() != position or remote in remotes or not _is_ipv4(local)
                or not _is_ipv4(remote)):
            return False
        remotes.add(remote)
        position = match.end()
    return _GENERATED_GAP.fullmatch(text, position) is not None


def preshared_line_problems(text: str) -> list[str]:
    """The line by line parse of ``preshared_problems``: any layout, each problem named."""
    problems: list[str] = []
    block: dict[str, tuple[str, int]] | None = None
    opened = 0
    remotes: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or line.startswith("#"):
            continue
        if stripped == "{":
            if block is not None:
                problems.append(f"line {number}: '{{' inside the block opened on line {opened}")
            block, opened = {}, number
            continue
        if stripped == "}":
            if block is None:
                problems.append(f"line {number}: '}}' without an open block")
            else:
                problems.extend(_block_problems(block, opened, remotes))
            block = None
            continue
        if block is None:
            problems.append(f"line {number}: text outside a block")
            continue
        name, _, value = stripped.partition(" ")
        value = value.strip()
        if name not in _PRESHARED_ITEMS or not value or " " in value:
            problems.append(f"line {number}: not one of {', '.join(_PRESHARED_ITEMS)} with "
                            "one value")
        elif name in block:
            problems.append(f"line {number}: {name} given twice in the block opened on "
                            f"line {opened}")
        else:
            block[name] = (value, number)
    if block is not None:
        problems.append(f"line {opened}: the block is never closed")
    return problems


def _block_problems(block: dict[str, tuple[str, int]], opened: int,
                    remotes: dict[str, int]) -> list[str]:
    problems = [f"line {opened}: the block has no {name}"
                for name in _PRESHARED_ITEMS if name not in block]
    for name in ("localidtype", "remoteidtype"):
        if name in block and block[name][0] != "IP":
            problems.append(f"line {block[name][1]}: {name} must be IP")
    for name in ("localid", "remoteid"):
        if name in block:
            value, number = block[name]
            if not _is_ipv4(value):
                problems.append(f"line {number}: {name} {value!r} is not an IPv4 address")
    if "key" in block and _HEX_KEY.fullmatch(block["key"][0]) is None:
        problems.append(f"line {block['key'][1]}: the key is not an even number of hex digits")
    if "remoteid" in block:
        remote, number = block["remoteid"]
        if remote in remotes:
            problems.append(f"line {number}: a second block for remoteid {remote} (first on "
                            f"line {remotes[remote]})")
        remotes.setdefault(remote, number)
    return problems


@functools.lru_cache(maxsize=4096)
def _is_ipv4(value: str) -> bool:
    """Cached: a full sync checks every node's blocks, which name the same few hundred
    addresses over and over."""
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True
