"""The admin overlay: the virtual admin network on every node, and each node's address in it.

Its defaults live here once (``ADMIN_OVERLAY_*``): the services, the command line and the
API's help texts take them from this module.
"""

from __future__ import annotations

import ipaddress

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.models import StrictTypesMixin
from core.validators import (
    is_ipv4,
    parse_ipv4_network,
    parse_mac,
    usable_host,
    validate_unicast_mac,
)
from nodes.models import Node
from overlays.models._common import SUPERUSER_ONLY, is_int
from overlays.models.networks import VirtualNetwork, mac_owner_on_rule
from overlays.models.rules import OverlayRule
from vdc.idranges import VLAN_MAX, VLAN_MIN, VXLAN_MAX, VXLAN_MIN

# Defaults of a new admin overlay (as the platform's adminoverlay_0 is usually set up).
ADMIN_OVERLAY_RULE = "adminoverlay"
ADMIN_OVERLAY_MTU = 1300
ADMIN_OVERLAY_VXLAN_ID = 2
ADMIN_OVERLAY_VLAN_ID = 2


class AdminOverlay(StrictTypesMixin, models.Model):
    """The virtual admin network spanning every node; there is at most one."""

    overlay_rule = models.OneToOneField(
        OverlayRule,
        verbose_name="overlay rule",
        on_delete=models.PROTECT,
        related_name="admin_overlay",
    )
    subnet = models.CharField(
        verbose_name="subnet",
        max_length=18,
        help_text="IPv4 subnet of the adminoverlay_0 vNICs, e.g. 10.44.44.0/24.",
    )
    vxlan_id = models.PositiveIntegerField(
        verbose_name="VXLAN id",
        default=ADMIN_OVERLAY_VXLAN_ID,
        validators=[MinValueValidator(VXLAN_MIN), MaxValueValidator(VXLAN_MAX)],
    )
    vlan_id = models.PositiveIntegerField(
        verbose_name="VLAN id",
        default=ADMIN_OVERLAY_VLAN_ID,
        validators=[MinValueValidator(VLAN_MIN), MaxValueValidator(VLAN_MAX)],
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "admin overlay"
        verbose_name_plural = "admin overlay"

    def __str__(self) -> str:
        return f"{self.overlay_rule.name}{self.vxlan_id} ({self.subnet})"

    @property
    def ip_network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if AdminOverlay.objects.exclude(pk=self.pk).exists():
            errors["overlay_rule"] = "There is already an admin overlay; change it instead."
        try:
            net = parse_ipv4_network(self.subnet or "", field_label="subnet")
            self.subnet = str(net)
        except ValidationError as exc:
            errors["subnet"] = exc.messages[0]
        else:
            if self.pk:
                outside = [a for a in self.addresses.values_list("ip", flat=True)
                           if ipaddress.IPv4Address(a) not in net]
                if outside:
                    errors["subnet"] = (
                        f"Node addresses {', '.join(sorted(outside))} are outside {net}; "
                        "move them into it first, or change the subnet with 'overlay "
                        "adminoverlay update --subnet', which renumbers them."
                    )
        if self.overlay_rule_id and is_int(self.vxlan_id) and is_int(self.vlan_id):
            taken = VirtualNetwork.objects.filter(overlay_rule_id=self.overlay_rule_id,
                                                  vxlan_id=self.vxlan_id,
                                                  vlan_id=self.vlan_id).first()
            if taken:
                errors["vlan_id"] = (
                    f"VLAN {self.vlan_id} of VXLAN {self.vxlan_id} on rule "
                    f"{self.overlay_rule.name} is already network {taken.name}."
                )
        if errors:
            raise ValidationError(errors)


class AdminOverlayAddress(StrictTypesMixin, models.Model):
    """A node's adminoverlay_0 vNIC: fixed IP and MAC that survive reboots."""

    admin_overlay = models.ForeignKey(
        AdminOverlay,
        verbose_name="admin overlay",
        on_delete=models.CASCADE,
        related_name="addresses",
    )
    node = models.OneToOneField(
        Node,
        verbose_name="node",
        on_delete=models.CASCADE,
        related_name="admin_overlay_address",
    )
    ip = models.GenericIPAddressField(
        verbose_name="IP address",
        protocol="IPv4",
        unique=True,
    )
    mac = models.CharField(
        verbose_name="MAC address",
        max_length=17,
        unique=True,
        help_text="Unicast MAC (new ones are generated 02:...); never changes.",
    )

    class Meta:
        ordering = ["node__hostname"]
        verbose_name = "admin overlay address"
        verbose_name_plural = "admin overlay addresses"

    def __str__(self) -> str:
        return f"{self.node.hostname} {self.ip}"

    def validate_unique(self, exclude: set[str] | None = None) -> None:
        # IP and MAC uniqueness are checked in clean(), with errors that say who has them.
        super().validate_unique(exclude=set(exclude or ()) | {"ip", "mac"})

    def clean(self) -> None:
        errors: dict[str, str] = {}
        overlay = self.admin_overlay if self.admin_overlay_id else None
        try:
            self.mac = parse_mac(self.mac or "")
            validate_unicast_mac(self.mac)
        except ValidationError as exc:
            errors["mac"] = exc.messages[0]
        if overlay and "mac" not in errors:
            clash = AdminOverlayAddress.objects.filter(mac=self.mac).exclude(pk=self.pk).first()
            owner = (f"the adminoverlay_0 of node {clash.node.hostname}" if clash else
                     mac_owner_on_rule(overlay.overlay_rule_id, self.mac,
                                       viewer_vdc_id=SUPERUSER_ONLY, exclude_address=self.pk))
            if owner:
                errors["mac"] = f"{self.mac} is already used by {owner}."
        if overlay and self.ip and is_ipv4(self.ip):
            try:
                usable_host(overlay.ip_network, self.ip, what="Address")
            except ValidationError as exc:
                errors["ip"] = exc.messages[0]
            else:
                clash = AdminOverlayAddress.objects.filter(ip=self.ip).exclude(pk=self.pk).first()
                if clash:
                    errors["ip"] = (
                        f"Address {self.ip} is already the admin overlay address of "
                        f"{clash.node.hostname}."
                    )
        if errors:
            raise ValidationError(errors)
