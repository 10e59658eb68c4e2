"""A rule's node list in the one form every interface uses: ``"all"`` or host names.

The state file, the API and the command line all call it ``nodes``: the string
``"all"`` (every node, present and future) or a list of host names (names of
nodes not installed yet are allowed). One field cannot contradict itself, which
the pair of database columns behind it (``OverlayRule.all_nodes`` and
``OverlayRule.node_names``) could; this module converts between the two, so the
parsing lives once. The host names themselves are validated by the model.

Pure Python: imports nothing from the project or Django.
"""

from __future__ import annotations

from collections.abc import Iterable

ALL = "all"
NODES_MESSAGE = 'must be "all" or a list of host names.'

NodeList = str | list[str]


def nodes_value(all_nodes: bool, node_names: Iterable[str]) -> NodeList:
    """The ``nodes`` value of a rule stored as (all_nodes, node_names)."""
    return ALL if all_nodes else sorted(node_names)


def parse_nodes(value: object) -> tuple[bool, list]:
    """(all_nodes, node_names) from a ``nodes`` value; ValueError(NODES_MESSAGE) otherwise.

    The list is returned as given: the model checks that each entry is a host name,
    so its sentences reach every interface unchanged.
    """
    if value == ALL:
        return True, []
    if isinstance(value, list):
        return False, list(value)
    raise ValueError(NODES_MESSAGE)


def split_hostnames(text: str) -> list[str]:
    """Host names from a comma-separated command-line value, blanks dropped."""
    return [name.strip() for name in text.split(",") if name.strip()]


def parse_nodes_option(text: str) -> tuple[bool, list[str]]:
    """(all_nodes, node_names) from ``--nodes``: ``all`` or comma-separated host names."""
    return parse_nodes(ALL if text.strip() == ALL else split_hostnames(text))
