"""Fuzz the state-file import: mutations of the demo state file, onto an empty database and
onto the demo cluster; and damaged files through ``overlay import`` and the API.

A mutation sets a key of an item to a value from ``strategies.RESOURCES`` (good, at the
edge, or any JSON value), removes a key or an item, copies an item, or replaces a whole
section. ``import_state`` may accept the file or raise StateFileError with problems by
path; anything else is a failure (a traceback). An accepted file must leave a state that
renders every node's files and whose export imports back unchanged.
"""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from hypothesis import event, given
from hypothesis import strategies as st

from overlays.statefile import StateFileError, import_state
from tests.fuzz.conftest import FUZZ, assert_error_shape, assert_renders_and_reimports, rolled_back
from tests.fuzz.strategies import RESOURCES, anything, field

pytestmark = pytest.mark.django_db

ADDRESS = {"ip": field(["10.44.44.50", "10.44.44.12", "10.44.44.21"],
                       ["10.44.45.1", "10.44.44.0", "10.44.44.255", "x"]).mixed,
           "mac": field(["02:00:00:00:aa:01", "02:e5:dc:d5:d4:02"],
                        ["00:e5:dc:d5:d4:cf", "01:00:00:00:00:01", "00:00:00:00:00:00"]).mixed}
SECTION_OF = {"overlay_rules": "overlay_rules", "networks": "networks", "vnics": "vnics",
              "nodes": "nodes", "vdcs": "vdcs"}


def _mutate(doc: dict[str, Any], data: st.DataObject) -> None:
    """Apply one drawn mutation to ``doc`` in place."""
    sections = sorted(key for key, value in doc.items() if isinstance(value, (list, dict)))
    action = data.draw(st.sampled_from(
        ["set"] * 6 + ["address"] * 2 + ["drop key", "copy item", "drop item", "section",
                                         "version", "unknown section"]))
    event(action)
    if action == "version":
        doc["version"] = data.draw(st.sampled_from([1, 2, 3, "2", True, None]) | anything)
        return
    if action == "unknown section":
        doc[data.draw(st.sampled_from(["nodez", "keys", ""]))] = data.draw(anything)
        return
    if not sections:
        return
    section = data.draw(st.sampled_from(sections))
    value = doc[section]
    if action == "section":
        doc[section] = data.draw(anything)
        return
    if action == "address":
        admin = doc.get("admin_overlay")
        addresses = admin.get("addresses") if isinstance(admin, dict) else None
        if isinstance(addresses, dict) and addresses:
            host = data.draw(st.sampled_from(sorted(addresses)))
            if isinstance(addresses[host], dict):
                key = data.draw(st.sampled_from(sorted(ADDRESS)))
                addresses[host][key] = data.draw(ADDRESS[key])
        return
    if isinstance(value, dict):  # admin_overlay, firewall
        fields = RESOURCES.get(section, {})
        if action == "drop key" and value:
            value.pop(data.draw(st.sampled_from(sorted(value))))
        elif fields:
            key = data.draw(st.sampled_from(sorted(fields)))
            value[key] = data.draw(fields[key].mixed)
        return
    if not value:
        return
    index = data.draw(st.integers(0, len(value) - 1))
    if action == "drop item":
        del value[index]
        return
    if action == "copy item":
        value.append(copy.deepcopy(value[index]))
        index = len(value) - 1
    item = value[index]
    if not isinstance(item, dict):
        return
    fields = RESOURCES.get(SECTION_OF.get(section, ""), {})
    if action == "drop key" and item:
        item.pop(data.draw(st.sampled_from(sorted(item))))
    elif fields:
        key = data.draw(st.sampled_from(sorted(fields)))
        item[key] = data.draw(fields[key].mixed)


def _mutated(demo_state: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    doc = copy.deepcopy(demo_state)
    for _ in range(data.draw(st.integers(1, 4))):
        _mutate(doc, data)
    return doc


def _import(doc: Any) -> None:
    with rolled_back():
        try:
            import_state(doc)
        except StateFileError as exc:
            event("refused")
            assert exc.problems and all(
                isinstance(path, str) and isinstance(message, str) and message
                for path, message in exc.problems), exc.problems
        else:
            event("accepted")
            assert_renders_and_reimports()


@FUZZ
@given(data=st.data())
def test_mutated_state_files_onto_an_empty_database(db, demo_state, data):
    _import(_mutated(demo_state, data))


@FUZZ
@given(data=st.data())
def test_mutated_state_files_onto_the_demo_cluster(demo_cluster, demo_state,
                                                   data):
    _import(_mutated(demo_state, data))


def _damaged_bytes(demo_state: dict[str, Any], data: st.DataObject) -> bytes:
    """The demo file as text, then cut, overwritten or given a deep or odd insertion."""
    text = json.dumps(_mutated(demo_state, data) if data.draw(st.booleans()) else demo_state,
                      indent=data.draw(st.sampled_from([None, 2]))).encode()
    where = data.draw(st.integers(0, len(text)))
    damage = data.draw(st.sampled_from(["cut", "byte", "insert", "none"]))
    event(damage)
    if damage == "cut":
        return text[:where]
    if damage == "byte":
        return text[:where] + bytes([data.draw(st.integers(0, 255))]) + text[where + 1:]
    if damage == "insert":
        piece = data.draw(st.sampled_from([b"[" * 40, b"[" * 3000, b"\xff", b"\xc3", b"NaN",
                                           b"1e999", b"9" * 5000, b"\x00", b'"\\ud800"',
                                           b"\xef\xbb\xbf", b",", b"}"]))
        return text[:where] + piece + text[where:]
    return text


@FUZZ
@given(data=st.data())
def test_damaged_files_through_the_command_line_are_one_line(db, demo_state,
                                                            tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "cluster.json"
    path.write_bytes(_damaged_bytes(demo_state, data))
    with rolled_back():
        try:
            call_command("overlay", "import", str(path), stdout=io.StringIO(),
                         stderr=io.StringIO())
        except CommandError as exc:  # anything else is a traceback for the operator
            event("refused")
            assert str(exc) and "\n" not in str(exc)
        else:
            event("accepted")
            assert_renders_and_reimports()


@FUZZ
@given(data=st.data())
def test_damaged_files_through_the_api_are_400s(su, demo_state, data):
    body = _damaged_bytes(demo_state, data)
    dry_run = data.draw(st.booleans())
    with rolled_back():
        response = su.generic("POST", f"/api/v1/state/import/?dry_run={str(dry_run).lower()}",
                              body, content_type="application/json")
        event(str(response.status_code))
        if response.status_code >= 300:
            assert_error_shape(response)
        else:
            assert_renders_and_reimports()
