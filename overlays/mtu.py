"""How large an overlay MTU can be before the underlay has to fragment.

The overlay ``mtu`` of a rule is the MTU of the *inner* IP packets. Every
layer added around them costs bytes on the underlay link:

* VXLAN: outer IP header (20 on IPv4, 40 on IPv6), UDP 8, VXLAN 8 and the
  inner Ethernet header 14;
* an 802.1Q tag inside the overlay (a virtual network with a VLAN id): 4;
* ESP in transport mode with AES-CBC and HMAC-SHA-512/256 (what the IPSec
  mesh between PDCs uses): SPI and sequence number 8, IV 16, then the
  encrypted part (the outer UDP datagram, padding and 2 trailer bytes)
  rounded up to the 16-byte AES block, then a 32-byte ICV.

Nothing here is hard-coded per path: the figures follow from the overheads,
including the block alignment of ESP. That alignment is why an IPv6 underlay
costs more than the 20 extra header bytes on the ESP paths (the space left
for ciphertext, 1404, is not a multiple of 16).
"""

from __future__ import annotations

from dataclasses import dataclass, field

IPV4_HEADER = 20
IPV6_HEADER = 40
UDP_HEADER = 8
VXLAN_HEADER = 8
ETHERNET_HEADER = 14
VLAN_TAG = 4

ESP_HEADER = 8  # SPI 4 + sequence number 4
ESP_IV = 16  # AES-CBC initialisation vector
ESP_BLOCK = 16  # AES block: the encrypted part is padded to a multiple of this
ESP_TRAILER = 2  # pad length 1 + next header 1, inside the encrypted part
ESP_ICV = 32  # HMAC-SHA-512/256 integrity check value

DEFAULT_UNDERLAY_MTU = 1500


def max_inner_mtu(
    underlay_mtu: int = DEFAULT_UNDERLAY_MTU,
    *,
    ipv6: bool = False,
    vlan: bool = False,
    ipsec: bool = False,
) -> int:
    """Largest inner IP MTU whose encapsulated packet still fits ``underlay_mtu``.

    1450 (VXLAN), 1446 (with a VLAN tag) and 1388 (with a VLAN tag and ESP)
    on a 1500-byte IPv4 underlay.
    """
    outer_ip = IPV6_HEADER if ipv6 else IPV4_HEADER
    # What rides inside the outer IP packet, apart from the inner IP packet itself.
    inner_framing = UDP_HEADER + VXLAN_HEADER + ETHERNET_HEADER + (VLAN_TAG if vlan else 0)
    room = underlay_mtu - outer_ip  # bytes available after the outer IP header
    if ipsec:
        ciphertext_room = room - ESP_HEADER - ESP_IV - ESP_ICV
        # The encrypted part is a whole number of blocks and ends with the trailer.
        largest_ciphertext = (ciphertext_room // ESP_BLOCK) * ESP_BLOCK
        room = largest_ciphertext - ESP_TRAILER
    inner = room - inner_framing
    if inner <= 0:
        raise ValueError(f"an underlay MTU of {underlay_mtu} leaves no room for overlay traffic")
    return inner


@dataclass(frozen=True)
class MtuReport:
    """The four path limits for one underlay, and what a given rule MTU exceeds."""

    rule_mtu: int
    underlay_mtu: int
    ipv6: bool
    plain: int  # same PDC, untagged network
    plain_vlan: int  # same PDC, network with a VLAN id
    ipsec: int  # across PDCs, untagged network
    ipsec_vlan: int  # across PDCs, network with a VLAN id
    warnings: list[str] = field(default_factory=list)

    @property
    def fits_everywhere(self) -> bool:
        return not self.warnings


def mtu_report(
    rule_mtu: int, underlay_mtu: int = DEFAULT_UNDERLAY_MTU, ipv6: bool = False
) -> MtuReport:
    """Compare a rule's MTU with every path its packets may take."""
    limits = {
        "plain": max_inner_mtu(underlay_mtu, ipv6=ipv6),
        "plain_vlan": max_inner_mtu(underlay_mtu, ipv6=ipv6, vlan=True),
        "ipsec": max_inner_mtu(underlay_mtu, ipv6=ipv6, ipsec=True),
        "ipsec_vlan": max_inner_mtu(underlay_mtu, ipv6=ipv6, vlan=True, ipsec=True),
    }
    family = "IPv6" if ipv6 else "IPv4"
    paths = {
        "plain": "stays within a PDC",
        "plain_vlan": "stays within a PDC with a VLAN tag",
        "ipsec": "crosses PDCs over IPSec",
        "ipsec_vlan": "crosses PDCs over IPSec with a VLAN tag",
    }
    warnings = [
        f"MTU {rule_mtu} exceeds {limit}, the largest that {paths[name]} "
        f"without fragmentation on a {underlay_mtu}-byte {family} underlay."
        for name, limit in limits.items()
        if rule_mtu > limit
    ]
    return MtuReport(
        rule_mtu=rule_mtu, underlay_mtu=underlay_mtu, ipv6=ipv6, warnings=warnings, **limits
    )
