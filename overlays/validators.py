"""Field validators shared by models, the state file and the API, so each rule is written once."""

from __future__ import annotations

import ipaddress
import re
import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator

_MAC_RE = re.compile(r"^[0-9a-f]{1,2}(:[0-9a-f]{1,2}){5}$")
_HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
                          r"(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")


validate_object_name = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
    "Use letters, digits, '.', '_' and '-' (starting with a letter or digit): the name "
    "appears in URLs and commands.",
)


def normalize_mac(value: str) -> str:
    """Lower-case, colon-separated, two digits per octet: the form ARP tables are keyed by."""
    text = str(value).strip().lower().replace("-", ":")
    if not _MAC_RE.match(text):
        raise ValidationError(
            f"“{value}” is not a MAC address; write six hex octets like 02:08:20:aa:00:01."
        )
    return ":".join(f"{int(octet, 16):02x}" for octet in text.split(":"))


def validate_unicast_mac(value: str) -> None:
    mac = normalize_mac(value)
    if int(mac[:2], 16) & 0x01:
        raise ValidationError(f"{mac} is a multicast MAC address; a vNIC needs a unicast one.")


def validate_local_mac(value: str) -> None:
    """Admin-overlay MACs are invented by us, so they must be locally administered unicast."""
    validate_unicast_mac(value)
    if not int(normalize_mac(value)[:2], 16) & 0x02:
        raise ValidationError(
            f"{normalize_mac(value)} is not locally administered; the first octet must have "
            "bit 0x02 set (for example 02:xx:xx:xx:xx:xx)."
        )


def random_local_mac(taken: set[str] | frozenset[str] = frozenset()) -> str:
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
