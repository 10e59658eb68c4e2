"""Overlay rules, virtual networks, vNICs, the admin overlay, firewall and IPSec keys.

Single-object and cross-object invariants live in each model's ``clean()`` so the
admin, the API, the state-file import and the command line all give the same
errors; ``overlays.services`` calls ``full_clean()`` before every save.
"""

from __future__ import annotations

import ipaddress

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from core.querysets import RestrictedQuerySet
from core.validators import (
    is_ipv4,
    parse_ipv4_network,
    parse_mac,
    usable_host,
    validate_hostname,
    validate_local_mac,
    validate_object_name,
    validate_source,
    validate_unicast_mac,
)
from nodes.models import Node
from overlays import secretbox
from overlays.rulestring import (
    DEFAULT_LISTEN_IP,
    DEFAULT_MTU,
    MTU_MAX,
    MTU_MIN,
    RuleParams,
    RuleStringError,
    default_arp_file,
    render_rule_line,
    validate_rule_name,
)
from overlays.snapshot import carries
from vdc.idranges import VLAN_MAX, VLAN_MIN, VXLAN_MAX, VXLAN_MIN
from vdc.models import Vdc

IANA_VXLAN_PORT = 4789
ADMIN_OVERLAY_RULE = "adminoverlay"
ADMIN_OVERLAY_MTU = 1300


def _validate_rule_name(value: str) -> None:
    try:
        validate_rule_name(value)
    except RuleStringError as exc:
        raise ValidationError(str(exc)) from exc


def _validate_arp_file(value: str) -> None:
    if not value.startswith("/") or any(c.isspace() or c in "'\"\\,=" for c in value):
        raise ValidationError(
            f"“{value}” must be an absolute path without spaces, quotes, commas or '='."
        )
    if "/../" in value or value.endswith("/..") or value.endswith("/"):
        raise ValidationError(f"“{value}” must name a file, without '..'.")


def _is_int(value: object) -> bool:
    """True for a real integer; field values that failed validation keep their raw type."""
    return isinstance(value, int) and not isinstance(value, bool)


_SUPERUSER_ONLY = -1  # viewer_vdc_id of objects only superusers edit: name every owner


def _mac_owner_on_rule(rule_id: int, mac: str, *, viewer_vdc_id: int | None,
                       exclude_vnic: int | None = None,
                       exclude_address: int | None = None) -> str | None:
    """Who already uses this MAC on the rule (ARP tables are keyed by MAC alone).

    The owner is named only when it belongs to the same vDC as the object being saved
    (``viewer_vdc_id``; None: a global network, which only superusers manage), so one
    tenant's error never reveals another tenant's VMs or the nodes.
    """
    superuser_only = viewer_vdc_id in (None, _SUPERUSER_ONLY)
    vnics = Vnic.objects.filter(network__rule_id=rule_id, mac=mac)
    if exclude_vnic:
        vnics = vnics.exclude(pk=exclude_vnic)
    vnic = vnics.select_related("network").first()
    if vnic:
        if superuser_only or vnic.network.vdc_id == viewer_vdc_id:
            return f"the vNIC of {vnic.vm_name} on network {vnic.network.name}"
        return "a vNIC of another virtual datacenter"
    addresses = AdminOverlayAddress.objects.filter(admin_overlay__rule_id=rule_id, mac=mac)
    if exclude_address:
        addresses = addresses.exclude(pk=exclude_address)
    address = addresses.select_related("node").first()
    if address:
        if superuser_only:
            return f"the adminoverlay_0 of node {address.node.hostname}"
        return "a compute node's admin overlay vNIC"
    return None


class OverlayRule(models.Model):
    name = models.CharField(
        verbose_name="name",
        max_length=19,
        unique=True,
        validators=[_validate_rule_name],
        help_text="Letters, digits and underscores, under 20 characters, not ending in a digit "
        "(the VXLAN id is appended to form overlay names).",
    )
    listen_ip = models.GenericIPAddressField(
        verbose_name="listen IP",
        protocol="IPv4",
        default=DEFAULT_LISTEN_IP,
        help_text="vxlan/listen_ip; 0.0.0.0 listens on all interfaces (admin and external).",
    )
    port = models.PositiveIntegerField(
        verbose_name="UDP port",
        unique=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text="vxlan/listen_port, unique across rules. Empty picks the highest used port "
        "+ 1 (4789 is never picked automatically).",
    )
    mtu = models.PositiveIntegerField(
        verbose_name="MTU",
        default=DEFAULT_MTU,
        validators=[MinValueValidator(MTU_MIN), MaxValueValidator(MTU_MAX)],
        help_text="Inner MTU of overlays of this rule (576-8900).",
    )
    arp_file = models.CharField(
        verbose_name="virtual ARP table file",
        max_length=255,
        blank=True,
        validators=[_validate_arp_file],
        help_text="files/config path on the node; empty means "
        "/opt/custom/networking/<name>_overlay.json.",
    )
    all_nodes = models.BooleanField(
        verbose_name="on all nodes",
        default=True,
        help_text="Carry this rule on every node; otherwise only on the listed host names.",
    )
    node_names = models.JSONField(
        verbose_name="node host names",
        default=list,
        blank=True,
        help_text="Host names that carry the rule when it is not on all nodes. Names of nodes "
        "not installed yet are allowed.",
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "overlay rule"

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def next_free_port(exclude_pk: int | None = None) -> int:
        ports = OverlayRule.objects.exclude(pk=exclude_pk).values_list("port", flat=True)
        candidate = max([IANA_VXLAN_PORT, *ports]) + 1
        if candidate > 65535:
            raise ValidationError({"port": "No UDP port above the ones in use is left; give one."})
        return candidate

    def validate_unique(self, exclude: set[str] | None = None) -> None:
        # The port is checked in clean(), with an error that says which rule has it.
        super().validate_unique(exclude=set(exclude or ()) | {"port"})

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if not self.arp_file and self.name:
            self.arp_file = default_arp_file(self.name)
        if self.port is None:
            self.port = self.next_free_port(exclude_pk=self.pk)
        elif _is_int(self.port):
            owner = OverlayRule.objects.filter(port=self.port).exclude(pk=self.pk).first()
            if owner:
                errors["port"] = (
                    f"UDP port {self.port} is already used by overlay rule {owner.name}; "
                    "each rule needs its own port."
                )
        names = self.node_names if self.node_names is not None else []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            errors["node_names"] = "Node host names must be a list of names."
        else:
            bad = []
            for name in names:
                try:
                    validate_hostname(name)
                except ValidationError:
                    bad.append(name)
            if bad:
                errors["node_names"] = f"Not host names: {', '.join(map(repr, bad))}."
            elif not self.all_nodes and not names:
                errors["node_names"] = "List at least one node, or carry the rule on all nodes."
            self.node_names = sorted(set(names)) if not self.all_nodes else []
        if self.pk and self.networks.exists() and OverlayRule.objects.filter(
                pk=self.pk).exclude(name=self.name).exists():
            # VM NICs carry "<rule>/<vxlan>" as their NIC tag; a rename would orphan them.
            errors["name"] = ("Networks use this rule and their VMs' NIC tags name it; "
                              "delete or move the networks before renaming the rule.")
        if self.arp_file and self.pk:
            clash = OverlayRule.objects.filter(arp_file=self.arp_file).exclude(pk=self.pk)
        else:
            clash = OverlayRule.objects.filter(arp_file=self.arp_file)
        if self.arp_file and clash.exists():
            errors["arp_file"] = (
                f"Rule {clash.first().name} already writes {self.arp_file}; "
                "each rule needs its own ARP table."
            )
        if errors:
            raise ValidationError(errors)

    @property
    def params(self) -> RuleParams:
        return RuleParams(listen_ip=self.listen_ip, port=self.port, arp_file=self.arp_file,
                          mtu=self.mtu)

    @property
    def config_line(self) -> str:
        """The rule as its /usbkey/config line."""
        return render_rule_line(self.name, self.params)

    def carries(self, hostname: str) -> bool:
        return carries(self.all_nodes, self.node_names, hostname)


class VirtualNetworkQuerySet(RestrictedQuerySet):
    def visible_to(self, user: object) -> Q:
        """A vDC admin sees the networks of the vDCs they administer."""
        return Q(vdc__admins=user)


class VirtualNetwork(models.Model):
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
    rule = models.ForeignKey(
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
                fields=["rule", "vxlan_id", "vlan_id"], name="unique_overlay_segment"
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
        return f"{self.rule.name}/{self.vxlan_id}"

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
        ids_valid = _is_int(self.vxlan_id) and _is_int(self.vlan_id)
        if self.rule_id and ids_valid:
            errors.update(self._segment_errors())
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

    def _segment_errors(self) -> dict[str, str]:
        taken = (VirtualNetwork.objects.filter(rule_id=self.rule_id, vxlan_id=self.vxlan_id,
                                               vlan_id=self.vlan_id).exclude(pk=self.pk).first())
        if taken:
            # Name the other network only within the same vDC, or to superusers (the only
            # editors of global networks): tenants must not learn each other's networks.
            owner = (f"network {taken.name}" if self.vdc_id in (None, taken.vdc_id)
                     else "a network of another virtual datacenter")
            return {"vlan_id": (
                f"VLAN {self.vlan_id} of VXLAN {self.vxlan_id} on rule {self.rule.name} is "
                f"already {owner}; each (rule, VXLAN, VLAN) is one L2 segment."
            )}
        admin = AdminOverlay.objects.filter(rule_id=self.rule_id).first()
        if admin and (admin.vxlan_id, admin.vlan_id) == (self.vxlan_id, self.vlan_id):
            return {"vlan_id": (
                f"VLAN {self.vlan_id} of VXLAN {self.vxlan_id} on rule {self.rule.name} is the "
                "admin overlay network."
            )}
        if self.pk and self.vnics.exists():
            # vNICs carry "<rule>/<vxlan>" as their NIC tag: the overlay cannot change under them.
            before = VirtualNetwork.objects.filter(pk=self.pk).values("rule_id", "vxlan_id").first()
            if before and before["rule_id"] != self.rule_id:
                return {"rule": "vNICs use this network; move or delete them before changing "
                                "its overlay rule."}
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


class Vnic(models.Model):
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
        errors: dict[str, str] = {}
        try:
            self.mac = parse_mac(self.mac or "")
            validate_unicast_mac(self.mac)
        except ValidationError as exc:
            errors["mac"] = exc.messages[0]
        if self.network_id:
            network = self.network
            if "mac" not in errors:
                owner = _mac_owner_on_rule(network.rule_id, self.mac,
                                           viewer_vdc_id=network.vdc_id, exclude_vnic=self.pk)
                if owner:
                    errors["mac"] = (
                        f"{self.mac} is already used on overlay rule {network.rule.name} "
                        f"by {owner}."
                    )
            if self.ip and is_ipv4(self.ip):
                try:
                    usable_host(network.ip_network, self.ip, what="Address")
                    if self.ip == network.gateway:
                        raise ValidationError(f"Address {self.ip} is the network's gateway.")
                except ValidationError as exc:
                    errors["ip"] = exc.messages[0]
                else:
                    taken = network.vnics.filter(ip=self.ip).exclude(pk=self.pk).first()
                    if taken:
                        errors["ip"] = (
                            f"Address {self.ip} is already used on network {network.name} "
                            f"by {taken.vm_name}."
                        )
        if errors:
            raise ValidationError(errors)


class AdminOverlay(models.Model):
    """The virtual admin network spanning every node; there is at most one."""

    rule = models.OneToOneField(
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
        default=2,
        validators=[MinValueValidator(VXLAN_MIN), MaxValueValidator(VXLAN_MAX)],
    )
    vlan_id = models.PositiveIntegerField(
        verbose_name="VLAN id",
        default=2,
        validators=[MinValueValidator(VLAN_MIN), MaxValueValidator(VLAN_MAX)],
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "admin overlay"
        verbose_name_plural = "admin overlay"

    def __str__(self) -> str:
        return f"{self.rule.name}{self.vxlan_id} ({self.subnet})"

    @property
    def ip_network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if AdminOverlay.objects.exclude(pk=self.pk).exists():
            errors["rule"] = "There is already an admin overlay; change it instead."
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
        if self.rule_id and _is_int(self.vxlan_id) and _is_int(self.vlan_id):
            taken = VirtualNetwork.objects.filter(rule_id=self.rule_id, vxlan_id=self.vxlan_id,
                                                  vlan_id=self.vlan_id).first()
            if taken:
                errors["vlan_id"] = (
                    f"VLAN {self.vlan_id} of VXLAN {self.vxlan_id} on rule {self.rule.name} is "
                    f"already network {taken.name}."
                )
        if errors:
            raise ValidationError(errors)


class AdminOverlayAddress(models.Model):
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
        help_text="Locally administered unicast MAC; never changes.",
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
            validate_local_mac(self.mac)
        except ValidationError as exc:
            errors["mac"] = exc.messages[0]
        if overlay and "mac" not in errors:
            clash = AdminOverlayAddress.objects.filter(mac=self.mac).exclude(pk=self.pk).first()
            owner = (f"the adminoverlay_0 of node {clash.node.hostname}" if clash else
                     _mac_owner_on_rule(overlay.rule_id, self.mac, viewer_vdc_id=_SUPERUSER_ONLY,
                                        exclude_address=self.pk))
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


class FirewallSettings(models.Model):
    """Global ipfilter policy for external0; there is one row."""

    enabled = models.BooleanField(
        verbose_name="allow-list enabled",
        default=False,
        help_text="Block everything on external0 except administrator sources and other "
        "compute nodes. Plaintext overlay traffic on external0 is blocked either way.",
    )
    allowed_sources = models.JSONField(
        verbose_name="administrator sources",
        default=list,
        blank=True,
        help_text='Addresses or networks allowed in on external0, e.g. ["198.51.100.0/24"].',
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "firewall settings"
        verbose_name_plural = "firewall settings"

    def __str__(self) -> str:
        return "firewall: allow-list " + ("enabled" if self.enabled else "disabled")

    def save(self, *args: object, **kwargs: object) -> None:
        self.pk = 1
        super().save(*args, **kwargs)

    def clean(self) -> None:
        sources = self.allowed_sources if self.allowed_sources is not None else []
        if not isinstance(sources, list):
            raise ValidationError({"allowed_sources": "Give a list of addresses or networks."})
        normalised, bad = [], []
        for source in sources:
            try:
                normalised.append(str(validate_source(str(source))))
            except ValidationError as exc:
                bad.append(exc.messages[0])
        if bad:
            raise ValidationError({"allowed_sources": " ".join(bad)})
        self.allowed_sources = list(dict.fromkeys(normalised))

    @classmethod
    def load(cls) -> FirewallSettings:
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class IpsecKey(models.Model):
    """Pre-shared key of one node pair in different PDCs; one leaked key exposes one pair."""

    node_a = models.ForeignKey(
        Node,
        verbose_name="node A",
        on_delete=models.CASCADE,
        related_name="+",
    )
    node_b = models.ForeignKey(
        Node,
        verbose_name="node B",
        on_delete=models.CASCADE,
        related_name="+",
    )
    secret_encrypted = models.TextField(
        verbose_name="encrypted secret",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["node_a__hostname", "node_b__hostname"]
        verbose_name = "IPSec key"
        constraints = [
            models.UniqueConstraint(fields=["node_a", "node_b"], name="unique_ipsec_pair"),
            models.CheckConstraint(condition=Q(node_a__lt=F("node_b")),
                                   name="ipsec_pair_ordered"),
        ]

    def __str__(self) -> str:
        return f"IPSec key {self.node_a.hostname} <-> {self.node_b.hostname}"

    def __repr__(self) -> str:
        return f"<IpsecKey {self.node_a_id}-{self.node_b_id}>"

    @property
    def secret(self) -> str:
        return secretbox.decrypt(self.secret_encrypted)

    @secret.setter
    def secret(self, value: str) -> None:
        self.secret_encrypted = secretbox.encrypt(value)
