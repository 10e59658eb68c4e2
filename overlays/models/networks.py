"""Virtual networks (one L2 segment of an overlay rule, owned by a vDC or global) and vNICs.

The admin overlay also takes a segment and MACs on a rule, but its module builds on this
one; the checks here reach its rows through the relations of the rule and the node
(``admin_overlay``, ``admin_overlay_address``), so the import goes one way only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from core.models import StrictTypesMixin
from core.querysets import RestrictedQuerySet
from core.validators import (
    is_ipv4,
    parse_ipv4_network,
    parse_mac,
    usable_host,
    validate_object_name,
    validate_unicast_mac,
)
from nodes.models import Node
from overlays.models._common import SUPERUSER_ONLY, is_int
from overlays.models.rules import OverlayRule
from overlays.rulestring import DEFAULT_MTU, MTU_MAX, MTU_MIN
from vdc.idranges import VLAN_MAX, VLAN_MIN, VXLAN_MAX, VXLAN_MIN
from vdc.models import Vdc


def mac_owner_on_rule(rule_id: int, mac: str, *, viewer_vdc_id: int | None,
                      exclude_vnic: int | None = None,
                      exclude_address: int | None = None) -> str | None:
    """Who already uses this MAC on the rule (ARP tables are keyed by MAC alone).

    The owner is named only when it belongs to the same vDC as the object being saved
    (``viewer_vdc_id``; None: a global network, which only superusers manage), so one
    tenant's error never reveals another tenant's VMs or the nodes.
    """
    vnics = Vnic.objects.filter(network__overlay_rule_id=rule_id, mac=mac)
    if exclude_vnic:
        vnics = vnics.exclude(pk=exclude_vnic)
    vnic = vnics.select_related("network").first()
    if vnic:
        return vnic_owner(vnic.vm_name, vnic.network.name, vnic.network.vdc_id,
                          viewer_vdc_id=viewer_vdc_id)
    # A node's adminoverlay_0 on this rule (AdminOverlayAddress, through its node).
    nodes = Node.objects.filter(admin_overlay_address__admin_overlay__overlay_rule_id=rule_id,
                                admin_overlay_address__mac=mac)
    if exclude_address:
        nodes = nodes.exclude(admin_overlay_address__pk=exclude_address)
    node = nodes.first()
    if node:
        return address_owner(node.hostname, viewer_vdc_id=viewer_vdc_id)
    return None


def vnic_owner(vm_name: str, network_name: str, network_vdc_id: int | None, *,
               viewer_vdc_id: int | None) -> str:
    """A vNIC that holds a MAC, as ``mac_owner_on_rule`` names it to this viewer."""
    if viewer_vdc_id in (None, SUPERUSER_ONLY) or network_vdc_id == viewer_vdc_id:
        return f"the vNIC of {vm_name} on network {network_name}"
    return "a vNIC of another virtual datacenter"


def address_owner(hostname: str, *, viewer_vdc_id: int | None) -> str:
    """A node's adminoverlay_0 that holds a MAC, as ``mac_owner_on_rule`` names it."""
    if viewer_vdc_id in (None, SUPERUSER_ONLY):
        return f"the adminoverlay_0 of node {hostname}"
    return "a compute node's admin overlay vNIC"


class VirtualNetworkQuerySet(RestrictedQuerySet):
    def visible_to(self, user: object) -> Q:
        """A vDC admin sees the networks of the vDCs they administer."""
        return Q(vdc__admins=user)


class VirtualNetwork(StrictTypesMixin, models.Model):
    name = models.CharField(
        verbose_name="name",
        max_length=64,
        unique=True,
        validators=[validate_object_name],
    )
    vdc = models.ForeignKey(
        Vdc,
        verbose_name="virtual datacenter",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="networks",
        help_text="Owning vDC; empty for a global network only superusers manage.",
    )
    overlay_rule = models.ForeignKey(
        OverlayRule,
        verbose_name="overlay rule",
        on_delete=models.PROTECT,
        related_name="networks",
    )
    vxlan_id = models.PositiveIntegerField(
        verbose_name="VXLAN id",
        validators=[MinValueValidator(VXLAN_MIN), MaxValueValidator(VXLAN_MAX)],
        help_text=f"{VXLAN_MIN}-{VXLAN_MAX}; the overlay is the rule name with this id appended.",
    )
    vlan_id = models.PositiveIntegerField(
        verbose_name="VLAN id",
        default=0,
        validators=[MinValueValidator(VLAN_MIN), MaxValueValidator(VLAN_MAX)],
        help_text="VLAN inside the overlay, 0-4095 (0: untagged).",
    )
    network = models.CharField(
        verbose_name="IPv4 network",
        max_length=18,
        help_text="Subnet in address/prefix form, e.g. 192.168.10.0/24.",
    )
    gateway = models.GenericIPAddressField(
        verbose_name="gateway",
        protocol="IPv4",
        null=True,
        blank=True,
    )
    mtu = models.PositiveIntegerField(
        verbose_name="MTU",
        default=DEFAULT_MTU,
        validators=[MinValueValidator(MTU_MIN), MaxValueValidator(MTU_MAX)],
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = VirtualNetworkQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "virtual network"
        constraints = [
            models.UniqueConstraint(
                fields=["overlay_rule", "vxlan_id", "vlan_id"], name="unique_overlay_segment"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def ip_network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.network)

    @property
    def netmask(self) -> str:
        return str(self.ip_network.netmask)

    @property
    def nic_tag(self) -> str:
        return f"{self.overlay_rule.name}/{self.vxlan_id}"

    def validate_constraints(self, exclude: set[str] | None = None) -> None:
        # The segment triple is checked in clean(), with an error that names the field.
        super().validate_constraints(exclude=set(exclude or ()) | {"vlan_id"})

    def clean(self) -> None:
        errors: dict[str, str] = {}
        net = None
        try:
            net = parse_ipv4_network(self.network or "")
            self.network = str(net)
        except ValidationError as exc:
            errors["network"] = exc.messages[0]
        if net is not None and self.gateway and is_ipv4(self.gateway):
            try:
                usable_host(net, self.gateway, what="Gateway")
            except ValidationError as exc:
                errors["gateway"] = exc.messages[0]
        ids_valid = is_int(self.vxlan_id) and is_int(self.vlan_id)
        if self.overlay_rule_id and ids_valid:
            errors.update(self._segment_errors())
        if self.overlay_rule_id and is_int(self.mtu) and MTU_MIN <= self.mtu <= MTU_MAX \
                and self.mtu > self.overlay_rule.mtu:
            rule = self.overlay_rule
            errors["mtu"] = (
                f"MTU {self.mtu} is larger than overlay rule {rule.name}'s MTU {rule.mtu}: "
                "larger packets would not cross the overlay. Use at most "
                f"{rule.mtu}, or raise the rule's MTU first."
            )
        if self.vdc_id and ids_valid:
            errors.update(self._vdc_errors())
        if net is not None and self.pk:
            outside = [str(ip) for ip in self.vnics.values_list("ip", flat=True)
                       if ipaddress.IPv4Address(ip) not in net]
            if outside:
                errors["network"] = (
                    f"vNICs with addresses outside {net} use this network: "
                    f"{', '.join(sorted(outside))}."
                )
        if errors:
            raise ValidationError(errors)

    def overlapping(self, siblings: Iterable[VirtualNetwork] | None = None
                    ) -> list[VirtualNetwork]:
        """Other networks of the same vDC whose subnets overlap this one's.

        ``siblings``: networks that include the vDC's, when the caller read them already
        (a list of networks reads them once, not once per network).
        """
        try:
            net = parse_ipv4_network(self.network or "")
        except ValidationError:
            return []
        if self.vdc_id is None:
            return []
        if siblings is None:
            others = list(VirtualNetwork.objects.filter(vdc_id=self.vdc_id)
                          .exclude(pk=self.pk).order_by("name"))
        else:
            others = sorted((n for n in siblings if n.vdc_id == self.vdc_id and n.pk != self.pk),
                            key=lambda n: n.name)
        return [other for other in others
                if net.overlaps(ipaddress.IPv4Network(other.network))]

    def overlap_message(self, siblings: Iterable[VirtualNetwork] | None = None) -> str | None:
        """The sentence about overlapping subnets (refused for vDC admins, a warning else)."""
        found = self.overlapping(siblings)
        if not found:
            return None
        shown = ", ".join(f"{other.name} ({other.network})" for other in found)
        return (f"{self.network} overlaps network{'s' if len(found) > 1 else ''} {shown} of "
                f"vDC {self.vdc.name}: addresses in the overlap are ambiguous to the VMs "
                "routing between them.")

    def warnings(self, siblings: Iterable[VirtualNetwork] | None = None
                 ) -> dict[str, list[str]]:
        """What is allowed but probably a mistake, by field: shown after a save
        (``siblings``: see ``overlapping``)."""
        message = self.overlap_message(siblings)
        return {"network": [message]} if message else {}

    def _segment_errors(self) -> dict[str, str]:
        taken = (VirtualNetwork.objects.filter(overlay_rule_id=self.overlay_rule_id,
                                               vxlan_id=self.vxlan_id, vlan_id=self.vlan_id)
                 .exclude(pk=self.pk).first())
        if taken:
            # Name the other network only within the same vDC, or to superusers (the only
            # editors of global networks): tenants must not learn each other's networks.
            owner = (f"network {taken.name}" if self.vdc_id in (None, taken.vdc_id)
                     else "a network of another virtual datacenter")
            return {"vlan_id": (
                f"VLAN {self.vlan_id} of VXLAN {self.vxlan_id} on rule {self.overlay_rule.name} "
                f"is already {owner}; each (rule, VXLAN, VLAN) is one L2 segment."
            )}
        admin_segment = OverlayRule.objects.filter(  # the admin overlay's, through its rule
            pk=self.overlay_rule_id, admin_overlay__vxlan_id=self.vxlan_id,
            admin_overlay__vlan_id=self.vlan_id)
        if admin_segment.exists():
            return {"vlan_id": (
                f"VLAN {self.vlan_id} of VXLAN {self.vxlan_id} on rule {self.overlay_rule.name} is "
                "the admin overlay network."
            )}
        if self.pk and self.vnics.exists():
            # vNICs carry "<rule>/<vxlan>" as their NIC tag: the overlay cannot change under them.
            before = (VirtualNetwork.objects.filter(pk=self.pk)
                      .values("overlay_rule_id", "vxlan_id").first())
            if before and before["overlay_rule_id"] != self.overlay_rule_id:
                return {"overlay_rule": "vNICs use this network; move or delete them before "
                                        "changing its overlay rule."}
            valid_id = VXLAN_MIN <= self.vxlan_id <= VXLAN_MAX  # else the field says why
            if before and before["vxlan_id"] != self.vxlan_id and valid_id:
                return {"vxlan_id": "vNICs use this network; move or delete them before "
                                    "changing its VXLAN id."}
        return {}

    def _vdc_errors(self) -> dict[str, str]:
        vdc = self.vdc
        errors: dict[str, str] = {}
        if vdc.vxlan_restrict and self.vxlan_id not in vdc.vxlan_ranges:
            errors["vxlan_id"] = (
                f"VXLAN {self.vxlan_id} is outside vDC {vdc.name}'s allowed VXLAN ids "
                f"({vdc.vxlan_allowed or 'none'})."
            )
        if vdc.vlan_restrict and self.vlan_id not in vdc.vlan_ranges:
            errors["vlan_id"] = (
                f"VLAN {self.vlan_id} is outside vDC {vdc.name}'s allowed VLAN ids "
                f"({vdc.vlan_allowed or 'none'})."
            )
        if vdc.network_limit is not None:
            others = vdc.networks.exclude(pk=self.pk).count()
            if others >= vdc.network_limit:
                errors["vdc"] = (
                    f"vDC {vdc.name} already has {others} networks, its limit."
                )
        return errors


class VnicQuerySet(RestrictedQuerySet):
    def visible_to(self, user: object) -> Q:
        """A vDC admin sees the vNICs on networks of the vDCs they administer."""
        return Q(network__vdc__admins=user)


class Vnic(StrictTypesMixin, models.Model):
    vm_name = models.CharField(
        verbose_name="VM name",
        max_length=100,
    )
    vm_uuid = models.UUIDField(
        verbose_name="VM UUID",
        null=True,
        blank=True,
    )
    node = models.ForeignKey(
        Node,
        verbose_name="node",
        on_delete=models.PROTECT,
        related_name="vnics",
        help_text="Compute node hosting the VM.",
    )
    network = models.ForeignKey(
        VirtualNetwork,
        verbose_name="network",
        on_delete=models.PROTECT,
        related_name="vnics",
    )
    mac = models.CharField(
        verbose_name="MAC address",
        max_length=17,
        help_text="Unique within the network's overlay rule: its ARP table is keyed by MAC.",
    )
    ip = models.GenericIPAddressField(
        verbose_name="IPv4 address",
        protocol="IPv4",
    )
    ip6 = models.GenericIPAddressField(
        verbose_name="IPv6 address",
        protocol="IPv6",
        null=True,
        blank=True,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = VnicQuerySet.as_manager()

    class Meta:
        ordering = ["network__name", "vm_name", "mac"]
        verbose_name = "vNIC"
        constraints = [
            models.UniqueConstraint(fields=["network", "ip"], name="unique_vnic_ip_in_network"),
        ]

    def __str__(self) -> str:
        return f"{self.vm_name} {self.mac}"

    def validate_constraints(self, exclude: set[str] | None = None) -> None:
        # The address is checked in clean(), with an error that names the field.
        super().validate_constraints(exclude=set(exclude or ()) | {"ip"})

    def clean(self) -> None:
        errors = self.row_errors()
        if self.network_id:
            network = self.network
            if "mac" not in errors:
                owner = mac_owner_on_rule(network.overlay_rule_id, self.mac,
                                          viewer_vdc_id=network.vdc_id, exclude_vnic=self.pk)
                if owner:
                    errors["mac"] = self.mac_taken(owner)
            if "ip" not in errors and self.ip and is_ipv4(self.ip):
                taken = network.vnics.filter(ip=self.ip).exclude(pk=self.pk).first()
                if taken:
                    errors["ip"] = self.ip_taken(taken.vm_name)
        if errors:
            raise ValidationError(dict(sorted(errors.items())))  # mac, then ip

    def row_errors(self) -> dict[str, str]:
        """The rules this row alone decides: the MAC's form (normalised here), the address
        inside its network. ``clean()`` adds the rules across rows (``mac_taken``,
        ``ip_taken``), which the state-file import checks over the whole file at once."""
        errors: dict[str, str] = {}
        try:
            self.mac = parse_mac(self.mac or "")
            validate_unicast_mac(self.mac)
        except ValidationError as exc:
            errors["mac"] = exc.messages[0]
        if self.network_id and self.ip and is_ipv4(self.ip):
            network = self.network
            try:
                usable_host(network.ip_network, self.ip, what="Address")
                if self.ip == network.gateway:
                    raise ValidationError(f"Address {self.ip} is the network's gateway.")
            except ValidationError as exc:
                errors["ip"] = exc.messages[0]
        return errors

    def mac_taken(self, owner: str) -> str:
        """The sentence for this MAC already used on the rule by ``owner`` (``vnic_owner``)."""
        return f"{self.mac} is already used on overlay rule {self.network.overlay_rule.name} " \
               f"by {owner}."

    def ip_taken(self, vm_name: str) -> str:
        """The sentence for this address already used on the network by VM ``vm_name``."""
        return f"Address {self.ip} is already used on network {self.network.name} by {vm_name}."
