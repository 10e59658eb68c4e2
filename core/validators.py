"""Field validators and parsers every app shares, so each rule about a value is written once.

Names, host names, MAC addresses, IPv4 networks and hosts, firewall sources, and text no
database can store. Conventions: ``is_*`` answer a question and never raise;
``normalize_*`` return the one spelling of a value or None; ``parse_*`` and ``validate_*``
raise Django's ``ValidationError`` with the sentence a user reads.

Imports Django and the standard library only (no project app, no models), so models,
pure modules (generators, checks), parsers of node output and the API can all use it.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

_MAC_RE = re.compile(r"[0-9a-f]{1,2}(?::[0-9a-f]{1,2}){5}")
_CANONICAL_MAC_RE = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
                          r"(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")


validate_object_name = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
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
    mac = parse_mac(value)
    if int(mac[:2], 16) & 0x01:
        raise ValidationError(f"{mac} is a multicast MAC address; a vNIC needs a unicast one.")


def validate_local_mac(value: str) -> None:
    """Admin-overlay MACs are invented by us, so they must be locally administered unicast."""
    validate_unicast_mac(value)
    mac = parse_mac(value)
    if not int(mac[:2], 16) & 0x02:
        raise ValidationError(
            f"{mac} is not locally administered; the first octet must have "
            "bit 0x02 set (for example 02:xx:xx:xx:xx:xx)."
        )


def random_local_mac(taken: set[str] | frozenset[str] = frozenset()) -> str:
    """A random locally administered unicast MAC not in ``taken``."""
    while True:
        first = 0x02 | (secrets.randbelow(256) & 0xFC)
        octets = [first] + [secrets.randbelow(256) for _ in range(5)]
        mac = ":".join(f"{o:02x}" for o in octets)
        if mac not in taken:
            return mac


def validate_hostname(value: str) -> None:
    if not _HOSTNAME_RE.match(value or ""):
        raise ValidationError(
            f"“{value}” is not a valid host name: use letters, digits, hyphens and dots."
        )


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


def validate_ipv4_network(value: str) -> None:
    parse_ipv4_network(value)


def validate_source(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """A firewall source: an address or a network."""
    try:
        return ipaddress.ip_network(str(value).strip(), strict=True)
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
