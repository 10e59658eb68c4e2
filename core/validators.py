"""Field validators and parsers every app shares, so each rule about a value is written once.

Names, host names, MAC addresses, IPv4 networks and hosts, firewall sources, and text no
database can store. Conventions: ``is_*`` answer a question and never raise;
``normalize_*`` return the one spelling of a value or None; ``parse_*`` and ``validate_*``
raise Django's ``ValidationError`` with the sentence a user reads.

Also the JSON type of a field's value (``json_type_error``: a JSON ``true`` or ``4801.5``
is not an integer) and SSH public keys (``parse_ssh_public_key``).

Imports Django, the standard library and ``cryptography`` (to parse SSH keys) only (no
project app, no models), so models, pure modules (generators, checks), parsers of node
output, transports and the API can all use it.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import secrets
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_ssh_public_key
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

_MAC_RE = re.compile(r"[0-9a-f]{1,2}(?::[0-9a-f]{1,2}){5}")
_CANONICAL_MAC_RE = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")
# Matched with fullmatch: a "$" would also match before a trailing newline.
_HOSTNAME_RE = re.compile(r"(?=.{1,253}\Z)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
                          r"(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*")


# RegexValidator searches, so the pattern anchors both ends itself; "\Z", unlike "$", does
# not match before a trailing newline ("acme\n" is refused).
validate_object_name = RegexValidator(
    r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z",
    "Use letters, digits, '.', '_' and '-' (starting with a letter or digit): the name "
    "appears in URLs and commands.",
)


def is_ipv4(value: object) -> bool:
    """True for a string holding an IPv4 address; never raises.

    Models use it to skip cross-field checks on a value whose own field already
    reports it as invalid.
    """
    if not isinstance(value, str) or not value:
        return False
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def normalize_mac(value: object) -> str | None:
    """The one spelling of a MAC address, or None when ``value`` is not a MAC address.

    The spelling is six two-digit lower-case hex octets joined by ``:``, the form ARP
    tables and /usbkey/config are keyed by. Accepted: any case, ``:`` or ``-``
    separators, octets without their leading zero (sysinfo prints ``2:8:20:aa:0:1``)
    and surrounding whitespace. Anything else, non-strings included, is None: callers
    decide what a bad MAC means (``parse_mac`` turns it into the user's error; the
    generators and checks leave the entry out and report it).
    """
    if not isinstance(value, str):
        return None
    if _CANONICAL_MAC_RE.fullmatch(value):
        return value
    text = value.strip().lower().replace("-", ":")
    if not _MAC_RE.fullmatch(text):
        return None
    return ":".join(octet.zfill(2) for octet in text.split(":"))


def parse_mac(value: object) -> str:
    """``normalize_mac(value)``, or the ValidationError a user reads when it is not a MAC."""
    mac = normalize_mac(value)
    if mac is None:
        raise ValidationError(
            f"“{value}” is not a MAC address; write six hex octets like 02:08:20:aa:00:01."
        )
    return mac


def validate_unicast_mac(value: str) -> None:
    """Any MAC a NIC can really have: unicast and not all-zero.

    Globally administered MACs are accepted: clusters set up by the reference tool use
    ``00:e5:dc:…`` admin-overlay MACs, and changing one breaks its neighbours' ARP entries.
    """
    mac = parse_mac(value)
    if int(mac[:2], 16) & 0x01:
        raise ValidationError(f"{mac} is a multicast MAC address; a vNIC needs a unicast one.")
    if mac == "00:00:00:00:00:00":
        raise ValidationError(f"{mac} is the all-zero MAC address; a vNIC needs a real one.")


def random_local_mac(taken: set[str] | frozenset[str] = frozenset()) -> str:
    """A random ``02:…`` (locally administered unicast) MAC not in ``taken``.

    New MACs are ours to invent, so they stay out of every vendor's range.
    """
    while True:
        octets = [0x02] + [secrets.randbelow(256) for _ in range(5)]
        mac = ":".join(f"{o:02x}" for o in octets)
        if mac not in taken:
            return mac


def shown(value: object) -> str:
    """A value as an error message quotes it: control characters escaped (``\\n``), so that
    a trailing newline or a tab is visible instead of breaking the message."""
    text = value if isinstance(value, str) else repr(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def validate_hostname(value: str) -> None:
    if not isinstance(value, str) or not _HOSTNAME_RE.fullmatch(value):
        raise ValidationError(
            f"“{shown(value)}” is not a valid host name: use letters, digits, hyphens and dots."
        )


_ACCOUNT_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def validate_account_name(value: str) -> None:
    """A Unix user name as SSH logs in with it: letters, digits, '_', '.' and '-'."""
    if not isinstance(value, str) or not _ACCOUNT_NAME_RE.fullmatch(value):
        raise ValidationError(
            f"“{shown(value)}” is not a user name: use letters, digits, '_', '.' and '-', "
            "starting with a letter, digit or '_'.")


def validate_host_address(value: str) -> None:
    """Where to connect: a host name, or an IPv4 or IPv6 address."""
    if isinstance(value, str):
        try:
            ipaddress.ip_address(value)
        except ValueError:
            pass
        else:
            return
    try:
        validate_hostname(value)
    except ValidationError:
        raise ValidationError(
            f"“{shown(value)}” is neither a host name nor an IP address.") from None


def parse_ipv4_network(value: str, *, field_label: str = "network") -> ipaddress.IPv4Network:
    """Parse "a.b.c.d/len" strictly, suggesting the right network when host bits are set."""
    if "/" not in str(value):
        raise ValidationError(
            f"“{value}” is not an IPv4 {field_label}; write it as address/prefix, "
            "e.g. 192.168.10.0/24."
        )
    try:
        return ipaddress.IPv4Network(str(value).strip())
    except ValueError as exc:
        try:
            loose = ipaddress.IPv4Network(str(value).strip(), strict=False)
        except ValueError:
            raise ValidationError(
                f"“{value}” is not an IPv4 {field_label}; write it as address/prefix, "
                "e.g. 192.168.10.0/24."
            ) from exc
        raise ValidationError(
            f"“{value}” has host bits set; did you mean {loose}?"
        ) from exc


def validate_source(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A firewall source: an address or a network, written as a string (``5`` is not 0.0.0.5)."""
    if not isinstance(value, str):
        raise ValidationError(JSON_TYPE_MESSAGES["text"])
    try:
        return ipaddress.ip_network(value.strip(), strict=True)
    except ValueError as exc:
        raise ValidationError(
            f"“{value}” is not an IP address or network (e.g. 198.51.100.0/24)."
        ) from exc


def usable_host(network: ipaddress.IPv4Network, address: str, *, what: str) -> None:
    """Raise unless address lies in network and is neither its network nor broadcast address."""
    ip = ipaddress.IPv4Address(address)
    if ip not in network:
        raise ValidationError(f"{what} {ip} is outside {network}.")
    if network.prefixlen < 31 and ip in (network.network_address, network.broadcast_address):
        kind = "network" if ip == network.network_address else "broadcast"
        raise ValidationError(f"{what} {ip} is the {kind} address of {network}.")


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _unstorable(text: str) -> str | None:
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "Null characters are not allowed."
    return f"Surrogate characters are not allowed: U+{ord(found.group()):X}."


def unstorable_text(data: Any, path: str = "") -> dict[str, list[str]]:
    """{JSON path: [message]} for every string (key or value) no database can store.

    PostgreSQL text cannot hold NUL, and lone surrogates cannot be encoded; both
    would otherwise surface as database errors instead of a field error.
    """
    problems: dict[str, list[str]] = {}
    if isinstance(data, str):
        message = _unstorable(data)
        if message:
            problems[path or "non_field_errors"] = [message]
    elif isinstance(data, dict):
        for key, value in data.items():
            name = str(key)
            message = _unstorable(name)
            if message:  # name the key with its bad character escaped
                name = name.encode("unicode_escape").decode()
            where = f"{path}.{name}" if path else name
            if message:
                problems[where] = [message]
            else:
                problems.update(unstorable_text(value, where))
    elif isinstance(data, list):
        for index, item in enumerate(data):
            problems.update(unstorable_text(item, f"{path}[{index}]"))
    return problems


# --- JSON types -------------------------------------------------------------------------

# What a value of each kind of field must be, in the words DRF uses for the same mistake, so
# that the API and the state-file import (which hands JSON values to the models) agree.
JSON_TYPE_MESSAGES = {
    "integer": "A valid integer is required.",
    "boolean": "Must be a valid boolean.",
    "text": "Not a valid string.",
}


def json_type_error(kind: str, value: object) -> str | None:
    """The message when ``value`` (None aside) is not of the JSON type a field of ``kind`` takes.

    ``kind`` is ``"integer"``, ``"boolean"`` or ``"text"``. JSON booleans and floats are not
    integers (Python would read ``true`` as 1 and ``4801.5`` as 4801), numbers are neither
    booleans nor text, and a string of digits is not an integer either: the state file and
    the API both write integers as JSON numbers.
    """
    if value is None:
        return None
    if kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "boolean":
        ok = isinstance(value, bool)
    elif kind == "text":
        ok = isinstance(value, str)
    else:
        raise ValueError(f"unknown JSON kind {kind!r}")
    return None if ok else JSON_TYPE_MESSAGES[kind]


# --- SSH public keys --------------------------------------------------------------------

# The host key types a node may be pinned to: what OpenSSH servers offer and both paramiko
# (the transport) and cryptography (this check) read.
SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)


def parse_ssh_public_key(text: str) -> tuple[str, bytes]:
    """(key type, key blob) of an OpenSSH public key line, or the ValidationError a user reads.

    The line is ``<type> <base64 key> [comment]``, optionally after one host field as
    ``ssh-keyscan`` prints it (``[10.0.0.11]:22 ssh-ed25519 AAAA...``). The key itself is
    parsed, so a truncated, padded or mistyped key is refused when it is stored, not when a
    sync first connects.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("Give the key as “<type> <base64 key>”, e.g. ssh-ed25519 AAAA...")
    if not text.strip().isprintable():
        raise ValidationError(
            f"“{shown(text)}” must be one line of printable characters: one public key.")
    fields = text.split()
    if len(fields) > 2 and fields[0] not in SSH_KEY_TYPES and fields[1] in SSH_KEY_TYPES:
        fields = fields[1:]  # the host field of ssh-keyscan's output
    if len(fields) < 2 or fields[0] not in SSH_KEY_TYPES:
        raise ValidationError(
            f"“{shown(text)}” is not an SSH public key: write “<type> <base64 key>” with a "
            f"type of {', '.join(SSH_KEY_TYPES)} (ssh-keyscan prints it).")
    key_type, encoded = fields[0], fields[1]
    try:
        blob = base64.b64decode(encoded, validate=True)
        load_ssh_public_key(f"{key_type} {encoded}".encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError, UnsupportedAlgorithm) as exc:
        raise ValidationError(
            f"The {key_type} key data is damaged ({exc}); copy the key again from "
            "ssh-keyscan.") from exc
    return key_type, blob
