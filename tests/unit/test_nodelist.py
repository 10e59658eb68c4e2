"""A rule's node list: the one parser behind the state file, the API and ``--nodes``."""

from __future__ import annotations

import pytest

from overlays.nodelist import (
    NODES_MESSAGE,
    nodes_value,
    parse_nodes,
    parse_nodes_option,
    split_hostnames,
)


def test_all_and_host_names_read_as_the_two_stored_columns():
    assert parse_nodes("all") == (True, [])
    assert parse_nodes(["cn02", "cn01"]) == (False, ["cn02", "cn01"])


@pytest.mark.parametrize("value", ["some", "ALL", None, 5, {"all": True}])
def test_anything_else_is_refused_with_one_sentence(value):
    with pytest.raises(ValueError, match="all"):
        parse_nodes(value)
    assert NODES_MESSAGE == 'must be "all" or a list of host names.'


def test_the_stored_columns_read_back_as_one_value():
    assert nodes_value(True, []) == "all"
    assert nodes_value(False, ["cn09", "cn01"]) == ["cn01", "cn09"]


def test_the_command_line_option_is_all_or_comma_separated_names():
    assert parse_nodes_option(" all ") == (True, [])
    assert parse_nodes_option("cn01, cn02,,") == (False, ["cn01", "cn02"])
    assert split_hostnames(" a ,b,") == ["a", "b"]
