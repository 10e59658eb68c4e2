"""core.validators: one MAC spelling and one IPv4 test for models, generators and node facts."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from core.validators import (
    is_ipv4,
    normalize_mac,
    parse_mac,
    random_local_mac,
    validate_unicast_mac,
)


@pytest.mark.parametrize(("written", "normal"), [
    ("02:08:20:aa:00:01", "02:08:20:aa:00:01"),
    ("2:8:20:aa:0:1", "02:08:20:aa:00:01"),  # as sysinfo prints it
    ("02:08:20:AA:00:01", "02:08:20:aa:00:01"),
    ("02-08-20-aa-00-01", "02:08:20:aa:00:01"),
    ("  02:08:20:aa:00:01\n", "02:08:20:aa:00:01"),
])
def test_a_mac_has_one_spelling_however_it_is_written(written, normal):
    assert normalize_mac(written) == normal
    assert parse_mac(written) == normal


@pytest.mark.parametrize("value", [
    "", "02:08:20:aa:00", "02:08:20:aa:00:01:02", "02:08:20:aa:00:0g", "002:08:20:aa:00:01",
    "02:08:20:aa::01", "0208.20aa.0001", None, 20820, ["02:08:20:aa:00:01"],
])
def test_anything_else_is_no_mac(value):
    assert normalize_mac(value) is None
    with pytest.raises(ValidationError, match="is not a MAC address"):
        parse_mac(value)


def test_every_unicast_mac_is_accepted_but_multicast_and_all_zero():
    validate_unicast_mac("2:0:0:0:0:1")
    validate_unicast_mac("00:e5:dc:d5:d4:cf")
    with pytest.raises(ValidationError, match="multicast"):
        validate_unicast_mac("01:00:5e:00:00:01")
    with pytest.raises(ValidationError, match="all-zero"):
        validate_unicast_mac("0:0:0:0:0:0")


def test_new_macs_start_with_02_and_avoid_taken_ones():
    taken = {random_local_mac() for _ in range(50)}
    assert all(mac.startswith("02:") for mac in taken)
    assert random_local_mac(taken) not in taken


@pytest.mark.parametrize(("value", "expected"), [
    ("192.0.2.1", True), ("0.0.0.0", True), ("", False), (None, False), ("192.0.2.256", False),
    ("192.0.2.0/24", False), ("2001:db8::1", False), (3221225985, False), (" 192.0.2.1", False),
])
def test_is_ipv4_answers_for_strings_only_and_never_raises(value, expected):
    assert is_ipv4(value) is expected
