from __future__ import annotations

import pytest

from overlays.mtu import max_inner_mtu, mtu_report


@pytest.mark.parametrize(
    ("vlan", "ipsec", "expected"),
    [(False, False, 1450), (True, False, 1446), (False, True, 1392), (True, True, 1388)],
)
def test_ipv4_underlay_limits(vlan, ipsec, expected):
    assert max_inner_mtu(1500, vlan=vlan, ipsec=ipsec) == expected


def test_ipv6_costs_20_bytes_more_on_plain_paths():
    assert max_inner_mtu(1500, ipv6=True) == 1450 - 20
    assert max_inner_mtu(1500, ipv6=True, vlan=True) == 1446 - 20


def test_ipv6_esp_paths_also_lose_a_block_to_alignment():
    # 1500 - 40 - 8 (SPI, seq) - 16 (IV) - 32 (ICV) = 1404 bytes for ciphertext, which must
    # be a multiple of 16: 1392. So the ESP paths lose 32, not 20, against IPv4.
    assert max_inner_mtu(1500, ipv6=True, vlan=True, ipsec=True) == 1356
    assert max_inner_mtu(1500, ipv6=True, ipsec=True) == 1360


def test_esp_padding_follows_the_block_size():
    # One byte more of underlay buys nothing until a whole AES block fits.
    assert max_inner_mtu(1501, vlan=True, ipsec=True) == 1388
    assert max_inner_mtu(1516, vlan=True, ipsec=True) == 1404
    assert max_inner_mtu(9000, vlan=True, ipsec=True) == 8876


def test_a_tiny_underlay_is_refused():
    with pytest.raises(ValueError):
        max_inner_mtu(60, ipsec=True)


def test_report_of_the_default_mtu_warns_about_both_esp_paths():
    report = mtu_report(1400)
    assert (report.plain, report.plain_vlan, report.ipsec, report.ipsec_vlan) == (
        1450,
        1446,
        1392,
        1388,
    )
    assert report.warnings == [
        "MTU 1400 exceeds 1392, the largest that crosses PDCs over IPSec without "
        "fragmentation on a 1500-byte IPv4 underlay.",
        "MTU 1400 exceeds 1388, the largest that crosses PDCs over IPSec with a VLAN tag "
        "without fragmentation on a 1500-byte IPv4 underlay.",
    ]


def test_report_of_a_small_mtu_has_no_warnings():
    assert mtu_report(1300).warnings == []
    assert mtu_report(1300).fits_everywhere


def test_report_for_ipv6():
    report = mtu_report(1440, ipv6=True)
    assert report.plain == 1430
    assert len(report.warnings) == 4
