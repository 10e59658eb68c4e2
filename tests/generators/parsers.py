"""Small test-side readers for the generated formats (deliberately independent of the code)."""

from __future__ import annotations

import re

IPF_RULE = re.compile(
    r"^(block|pass) (in|out)( log)?( quick)?( on \S+)?( proto \S+)?"
    r"( from \S+ to \S+| all)( port = \d+)?( keep state)?$"
)
VALID_OAKLEY_GROUPS = {1, 2, 3, 4, 5, *range(14, 27)}
VALID_P2_PFS = {0, 1, 2, 5, 14, 15, 16}


def content_lines(text: str) -> list[str]:
    """Lines that are not comments or blank; comments must start in column 1."""
    lines = []
    for line in text.splitlines():
        assert "#" not in line or line.startswith("#"), f"comment not in column 1: {line!r}"
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


def _tokens(text: str) -> list[str]:
    return re.findall(r'"[^"]*"|[{}]|[^\s{}]+', text)


def _block(tokens: list[str], start: int) -> tuple[dict, int]:
    """Parse ``{ key value key { ... } ... }`` starting at ``tokens[start] == "{"``."""
    assert tokens[start] == "{"
    result: dict = {}
    i = start + 1
    while tokens[i] != "}":
        key = tokens[i]
        if tokens[i + 1] == "{":
            value, i = _block(tokens, i + 1)
        else:
            value, i = tokens[i + 1].strip('"'), i + 2
        assert key not in result, f"{key} given twice"
        result[key] = value
    return result, i + 1


def parse_ike_config(text: str) -> tuple[dict, list[dict]]:
    """(global parameters, rules) of an in.iked config."""
    globals_: dict = {}
    rules: list[dict] = []
    for line in content_lines(text):
        tokens = _tokens(line)
        if tokens[0] == "{":
            rule, end = _block(tokens, 0)
            assert end == len(tokens), line
            rules.append(rule)
        elif len(tokens) > 1 and tokens[1] == "{":
            block, end = _block(tokens, 1)
            assert end == len(tokens), line
            globals_[tokens[0]] = block
        else:
            assert len(tokens) == 2, line
            globals_[tokens[0]] = tokens[1]
    return globals_, rules


def parse_ike_preshared(text: str) -> list[dict[str, str]]:
    """The blocks of an ike.preshared file as dicts."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in content_lines(text):
        stripped = line.strip()
        if stripped == "{":
            assert current is None
            current = {}
        elif stripped == "}":
            assert current is not None
            blocks.append(current)
            current = None
        else:
            assert current is not None, line
            key, value = stripped.split()
            current[key] = value
    assert current is None, "unterminated block"
    return blocks


IPSEC_LINE = re.compile(
    r"^\{ ulp udp laddr (\S+) raddr (\S+) \} ipsec \{ encr_algs aes encr_auth_algs sha512 "
    r"sa shared \}$"
)
BYPASS_LINE = re.compile(r"^\{ laddr (\S+) dir both \} bypass \{\}$")


def parse_ipsec_policy(text: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(bypass addresses, (laddr, raddr) of each ipsec line)."""
    bypass: list[str] = []
    ipsec: list[tuple[str, str]] = []
    for line in content_lines(text):
        if match := BYPASS_LINE.match(line):
            bypass.append(match.group(1))
        else:
            match = IPSEC_LINE.match(line)
            assert match, f"unexpected policy line {line!r}"
            ipsec.append((match.group(1), match.group(2)))
    return bypass, ipsec
