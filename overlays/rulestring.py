"""The argument string of an overlay rule, as kept in ``/usbkey/config``.

A rule line looks like this (one line in the file, wrapped here)::

    overlay_rule_customers="-e vxlan -p vxlan/listen_ip=0.0.0.0,vxlan/listen_port=4790
        -s files -p files/config=/opt/custom/networking/customers_overlay.json -p mtu=1400"

The quoted part is the ``dladm create-overlay`` argument string without ``-v``
(the VXLAN id is chosen per network and appended to the rule name to form the
overlay's name).  This module renders that string canonically and parses it
strictly, so that a string we write always reads back as the same parameters,
and a hand-written one that the platform would misread is refused with the
offending field named.

Pure Python: no Django, no database.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from dataclasses import dataclass

RULE_NAME_RE = re.compile(r"^[a-zA-Z0-9_]*[a-zA-Z_]\Z")  # "\Z": "$" passes a final "\n"
RULE_NAME_MAX = 19  # "under 20 characters"

DEFAULT_PORT = 4789
DEFAULT_MTU = 1400
MTU_MIN, MTU_MAX = 576, 8900
PORT_MIN, PORT_MAX = 1, 65535
DEFAULT_LISTEN_IP = "0.0.0.0"  # noqa: S104 - all interfaces is the intended default
ARP_DIR = "/opt/custom/networking"  # the default of settings.OVERLAY_ARP_DIRECTORY
# A file name of an ARP table in its directory: no hidden files (temporary uploads are
# ".<name>.tmp-<random>"), no separators, and the .json varpd's files plugin reads.
ARP_FILE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\.json")
ARP_FILE_MAX = 1023  # PATH_MAX - 1

LINE_PREFIX = "overlay_rule_"

# Property name -> the RuleParams field it sets.
_PROPERTY_FIELDS = {
    "vxlan/listen_ip": "listen_ip",
    "vxlan/listen_port": "port",
    "files/config": "arp_file",
    "mtu": "mtu",
}

# /usbkey/config is evaluated by a shell and re-quoted by the platform, with the
# value inside double quotes: quotes and backslashes break the quoting, and
# ``$`` and backquotes would be expanded.
_QUOTE_CHARS = frozenset("'\"\\")
_EXPANSION_CHARS = frozenset("`$")
_SHELL_MESSAGE = (
    "quotes and backslashes are not allowed: the platform shell-evaluates and re-quotes this string"
)
_EXPANSION_MESSAGE = (
    "dollar signs and backquotes are not allowed: the platform shell-evaluates this string, "
    "which would expand them"
)
_DIGITS_RE = re.compile(r"[0-9]+")  # fullmatch
_LINE_RE = re.compile(r"^\s*overlay_rule_([^=\s]*)=(.*?)\s*$", re.DOTALL)


class RuleStringError(ValueError):
    """A rule string, rule line, rule name or rule parameter is invalid.

    ``field`` says which part is wrong: ``"listen_ip"``, ``"port"``,
    ``"arp_file"``, ``"mtu"``, ``"name"``, or ``"rule"`` for the string as a
    whole (syntax, flags, unknown properties).  ``str(error)`` is a sentence
    meant for the person who wrote the rule.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[type[RuleStringError], tuple[str, str]]:
        # Keep the two-argument constructor picklable (Celery results, etc.).
        return (type(self), (self.field, self.message))


@dataclass(frozen=True)
class RuleParams:
    """The parameters of one overlay rule.

    ``port`` is ``None`` only in the output of :func:`parse_rule_args` when the
    string gave no ``vxlan/listen_port``: choosing the next free port is up to
    the caller, who knows the other rules.  :func:`render_rule_args` requires
    an int.  ``listen_ip`` and ``mtu`` fall back to :data:`DEFAULT_LISTEN_IP`
    and :data:`DEFAULT_MTU` when absent from a parsed string.
    """

    listen_ip: str
    port: int | None
    arp_file: str
    mtu: int


def default_arp_file(name: str, directory: str = ARP_DIR) -> str:
    """The conventional virtual-ARP-table path of rule ``name`` (in ``directory``)."""
    return f"{directory.rstrip('/')}/{name}_overlay.json"


# ---------------------------------------------------------------- validation


def validate_rule_name(name: str) -> None:
    """Raise :class:`RuleStringError` (field ``"name"``) unless ``name`` is a valid rule name."""
    if not isinstance(name, str) or not name:
        raise RuleStringError("name", "The rule name is empty.")
    bad = sorted({c for c in name if not (c.isascii() and (c.isalnum() or c == "_"))})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        raise RuleStringError(
            "name",
            f"Rule name {name!r} contains {shown}: use only ASCII letters, digits and underscores.",
        )
    if len(name) > RULE_NAME_MAX:
        raise RuleStringError(
            "name",
            f"Rule name {name!r} is {len(name)} characters long; it must be under "
            f"{RULE_NAME_MAX + 1} characters (at most {RULE_NAME_MAX}).",
        )
    if name[-1].isdigit():
        base = name.rstrip("0123456789")
        example = f"{name!r} with VXLAN id 2 would give the overlay name {name + '2'!r}"
        if base:
            example += f", the same as rule {base!r} with id {name[len(base) :]}2"
        raise RuleStringError(
            "name",
            f"Rule name {name!r} must not end in a digit: the VXLAN id is appended to the "
            f"rule name to form overlay names, so {example}.",
        )
    if not RULE_NAME_RE.fullmatch(name):  # pragma: no cover - the checks above are exhaustive
        raise RuleStringError("name", f"Rule name {name!r} is not valid.")


def _check_listen_ip(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise RuleStringError("listen_ip", "vxlan/listen_ip needs an IPv4 address.")
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        raise RuleStringError(
            "listen_ip",
            f"vxlan/listen_ip {value!r} is not an IPv4 address "
            f"(use {DEFAULT_LISTEN_IP} to listen on all interfaces).",
        ) from None
    if str(address) != value:  # pragma: no cover - IPv4Address only accepts the dotted quad
        raise RuleStringError("listen_ip", f"vxlan/listen_ip: write {address}, not {value!r}.")
    return value


def _check_int(field: str, prop: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RuleStringError(field, f"{prop} must be a whole number, not {value!r}.")
    if not low <= value <= high:
        raise RuleStringError(field, f"{prop} {value} is out of range {low}-{high}.")
    return value


def _int_from_text(field: str, prop: str, text: str, low: int, high: int) -> int:
    if not _DIGITS_RE.fullmatch(text):
        raise RuleStringError(field, f"{prop} {text!r} is not a whole number.")
    if len(text) > 1 and text[0] == "0":
        # The platform may read a leading zero as octal; insist on one spelling.
        raise RuleStringError(
            field, f"{prop} {text!r} has a leading zero; write {text.lstrip('0') or '0'}."
        )
    if len(text) > 10:
        raise RuleStringError(field, f"{prop} {text} is out of range {low}-{high}.")
    return _check_int(field, prop, int(text), low, high)


def check_arp_file(value: object, directory: str | None = None) -> str:
    """``value`` if it is a path the rule string can carry, else RuleStringError ("arp_file").

    The one check of an ARP table path: the generators run it (without ``directory``) on
    every rule they render, and the model (``OverlayRule.arp_file``) runs it with the
    configured directory, so whatever the model stores renders. Always: a plain absolute
    path of printable ASCII without blanks, quotes, ``$``, backquotes or commas. With
    ``directory``: also a file directly in it, named letters, digits, ``.``, ``_`` and
    ``-`` (not starting with a dot) and ending in ``.json``.
    """
    value = _check_arp_path(value)
    if directory is None:
        return value
    folder = directory.rstrip("/") or "/"
    parent, _, name = value.rpartition("/")
    if (parent or "/") != folder:
        raise RuleStringError(
            "arp_file", f"files/config {value!r} must be a file directly in {folder}/ "
            f"(e.g. {default_arp_file('customers', folder)}).")
    if not ARP_FILE_NAME_RE.fullmatch(name):
        raise RuleStringError(
            "arp_file", f"files/config {value!r}: the file name must be letters, digits, '.', "
            "'_' and '-', start with a letter or digit and end in .json.")
    return value


def _check_arp_path(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise RuleStringError("arp_file", "files/config needs the path of the ARP table file.")
    if any(c.isspace() for c in value):
        raise RuleStringError("arp_file", f"files/config {value!r} must not contain whitespace.")
    if any(c in _QUOTE_CHARS for c in value):
        raise RuleStringError("arp_file", f"files/config {value!r}: {_SHELL_MESSAGE}.")
    if any(c in _EXPANSION_CHARS for c in value):
        raise RuleStringError("arp_file", f"files/config {value!r}: {_EXPANSION_MESSAGE}.")
    if not value.isascii() or not value.isprintable():
        raise RuleStringError(
            "arp_file", f"files/config {value!r} must be printable ASCII characters only."
        )
    if "," in value:
        raise RuleStringError(
            "arp_file",
            f"files/config {value!r} must not contain a comma: commas separate properties.",
        )
    if not value.startswith("/"):
        raise RuleStringError("arp_file", f"files/config {value!r} must be an absolute path.")
    if value == "/" or value.endswith("/"):
        raise RuleStringError(
            "arp_file", f"files/config {value!r} names a directory; it must name a file."
        )
    if "//" in value or posixpath.normpath(value) != value:
        raise RuleStringError(
            "arp_file",
            f"files/config {value!r} must be a plain absolute path, without '.', '..' or "
            f"'//' (did you mean {posixpath.normpath(value)!r}?).",
        )
    if len(value) > ARP_FILE_MAX:
        raise RuleStringError(
            "arp_file",
            f"files/config is {len(value)} characters long; the limit is {ARP_FILE_MAX}.",
        )
    return value


def _check_params(p: RuleParams) -> RuleParams:
    """Validate every field; the port must be set. Return the params unchanged."""
    _check_listen_ip(p.listen_ip)
    if p.port is None:
        raise RuleStringError(
            "port", "The rule has no vxlan/listen_port; choose one before rendering it."
        )
    _check_int("port", "vxlan/listen_port", p.port, PORT_MIN, PORT_MAX)
    check_arp_file(p.arp_file)
    _check_int("mtu", "mtu", p.mtu, MTU_MIN, MTU_MAX)
    return p


# ----------------------------------------------------------------- rendering


def render_rule_args(p: RuleParams) -> str:
    """The canonical ``dladm create-overlay`` argument string (without ``-v``).

    Raises :class:`RuleStringError` if a field is invalid or the port is None.
    """
    _check_params(p)
    return (
        f"-e vxlan -p vxlan/listen_ip={p.listen_ip},vxlan/listen_port={p.port} "
        f"-s files -p files/config={p.arp_file} -p mtu={p.mtu}"
    )


def render_rule_line(name: str, p: RuleParams) -> str:
    """The ``/usbkey/config`` line ``overlay_rule_<name>="<args>"``."""
    validate_rule_name(name)
    return f'{LINE_PREFIX}{name}="{render_rule_args(p)}"'


# ------------------------------------------------------------------- parsing


def _check_characters(text: str) -> None:
    for chars, message in ((_QUOTE_CHARS, _SHELL_MESSAGE), (_EXPANSION_CHARS, _EXPANSION_MESSAGE)):
        found = sorted({c for c in text if c in chars})
        if found:
            shown = ", ".join(repr(c) for c in found)
            raise RuleStringError("rule", f"The rule string contains {shown}: {message}.")
    for c in text:
        if c in " \t":
            continue
        if not c.isascii() or not c.isprintable():
            raise RuleStringError(
                "rule",
                f"The rule string contains {c!r}: only printable ASCII characters, spaces "
                "and tabs are allowed.",
            )


def _parse_properties(token: str, found: dict[str, str]) -> None:
    """Add the ``k=v[,k=v...]`` pairs of one ``-p`` argument to ``found``."""
    for piece in token.split(","):
        if not piece:
            raise RuleStringError(
                "rule", f"Property list {token!r} has an empty item: remove the extra comma."
            )
        key, sep, value = piece.partition("=")
        field = _PROPERTY_FIELDS.get(key)
        if field is None:
            known = ", ".join(_PROPERTY_FIELDS)
            if key in ("vxlan/vni", "vni"):
                raise RuleStringError(
                    "rule",
                    f"Property {key!r} is not allowed: the VXLAN id is not part of a rule; "
                    "it is chosen per network and appended to the rule name.",
                )
            raise RuleStringError(
                "rule", f"Unknown property {key!r} in {piece!r}; known properties: {known}."
            )
        if not sep or not value:
            raise RuleStringError(field, f"Property {key} has no value: write {key}=VALUE.")
        if key in found:
            raise RuleStringError(field, f"Property {key} is given twice; give it once.")
        found[key] = value


def parse_rule_args(text: str) -> RuleParams:
    """Parse a rule's argument string; raise :class:`RuleStringError` on any mistake.

    Accepted: ``-e vxlan`` and ``-s files`` (both required, once each) and any
    number of ``-p k=v[,k=v...]``, in any order, separated by blanks.  Known
    properties: ``vxlan/listen_ip`` (IPv4; default ``0.0.0.0``),
    ``vxlan/listen_port`` (1..65535; **None when absent**, see
    :class:`RuleParams`), ``files/config`` (required; absolute path) and
    ``mtu`` (576..8900; default 1400).  Each property may be given once.
    Quotes, backslashes, ``$`` and backquotes are refused anywhere, as is
    ``-v`` (the VXLAN id belongs to a network, not to a rule).
    """
    if not isinstance(text, str):
        raise TypeError(f"expected the rule string as a str, not {type(text).__name__}")
    _check_characters(text)
    tokens = text.split()
    if not tokens:
        raise RuleStringError("rule", "The rule string is empty.")

    encap: str | None = None
    search: str | None = None
    props: dict[str, str] = {}
    position = 0
    while position < len(tokens):
        flag = tokens[position]
        if flag == "-v" or flag.startswith(("-v", "--vnetid")):
            raise RuleStringError(
                "rule",
                "-v is not allowed: the VXLAN id must not be part of a rule; it is chosen "
                "per network and appended to the rule name to form the overlay name.",
            )
        if flag not in ("-e", "-s", "-p"):
            if flag.startswith("-"):
                raise RuleStringError(
                    "rule", f"Unknown option {flag!r}: a rule takes only -e, -s and -p."
                )
            raise RuleStringError(
                "rule",
                f"Unexpected {flag!r}: a rule is made of -e vxlan, -s files and "
                "-p property=value options only.",
            )
        if position + 1 >= len(tokens) or tokens[position + 1].startswith("-"):
            raise RuleStringError("rule", f"Option {flag} has no value.")
        value = tokens[position + 1]
        position += 2
        if flag == "-e":
            if encap is not None:
                raise RuleStringError("rule", "-e is given twice; give -e vxlan once.")
            if value != "vxlan":
                raise RuleStringError(
                    "rule", f"Encapsulation {value!r} is not supported; only -e vxlan is."
                )
            encap = value
        elif flag == "-s":
            if search is not None:
                raise RuleStringError("rule", "-s is given twice; give -s files once.")
            if value != "files":
                raise RuleStringError(
                    "rule", f"Search plugin {value!r} is not supported; only -s files is."
                )
            search = value
        else:
            _parse_properties(value, props)

    if encap is None:
        raise RuleStringError("rule", "The rule string lacks -e vxlan.")
    if search is None:
        raise RuleStringError("rule", "The rule string lacks -s files.")
    if "files/config" not in props:
        raise RuleStringError(
            "arp_file",
            "The rule string lacks -p files/config=PATH (the rule's virtual ARP table file).",
        )

    listen_ip = _check_listen_ip(props.get("vxlan/listen_ip", DEFAULT_LISTEN_IP))
    port_text = props.get("vxlan/listen_port")
    port = (
        None
        if port_text is None
        else _int_from_text("port", "vxlan/listen_port", port_text, PORT_MIN, PORT_MAX)
    )
    arp_file = check_arp_file(props["files/config"])
    mtu_text = props.get("mtu")
    mtu = (
        DEFAULT_MTU
        if mtu_text is None
        else _int_from_text("mtu", "mtu", mtu_text, MTU_MIN, MTU_MAX)
    )
    return RuleParams(listen_ip=listen_ip, port=port, arp_file=arp_file, mtu=mtu)


def parse_rule_line(line: str) -> tuple[str, RuleParams]:
    """Parse ``overlay_rule_<name>="<args>"`` into the rule name and its parameters.

    The value may be in double or single quotes; blanks around the line are
    ignored.  The name is checked with :func:`validate_rule_name`.
    """
    if not isinstance(line, str):
        raise TypeError(f"expected the rule line as a str, not {type(line).__name__}")
    match = _LINE_RE.match(line)
    if match is None:
        raise RuleStringError(
            "rule", f'A rule line has the form {LINE_PREFIX}NAME="ARGUMENTS"; got {line!r}.'
        )
    name, value = match.group(1), match.group(2)
    validate_rule_name(name)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    else:
        raise RuleStringError(
            "rule", f"The value of {LINE_PREFIX}{name} must be enclosed in double quotes."
        )
    return name, parse_rule_args(value)
