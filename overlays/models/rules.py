"""Overlay rules: the ``dladm create-overlay`` templates every node keeps in /usbkey/config."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from core.models import StrictTypesMixin
from core.validators import validate_hostname
from overlays.filegroups import merge_paths
from overlays.models._common import is_int
from overlays.rulestring import (
    DEFAULT_LISTEN_IP,
    DEFAULT_MTU,
    MTU_MAX,
    MTU_MIN,
    RuleParams,
    RuleStringError,
    check_arp_file,
    default_arp_file,
    render_rule_line,
    validate_rule_name,
)
from overlays.snapshot import carries

IANA_VXLAN_PORT = 4789


def _validate_rule_name(value: str) -> None:
    try:
        validate_rule_name(value)
    except RuleStringError as exc:
        raise ValidationError(str(exc)) from exc


def _validate_arp_file(value: str) -> None:
    """The generators' own check (``rulestring.check_arp_file``) in the configured directory,
    and never a file the manager writes for another purpose: what is stored renders."""
    try:
        check_arp_file(value, settings.OVERLAY_ARP_DIRECTORY)
    except RuleStringError as exc:
        raise ValidationError(str(exc)) from exc
    managed = {path: key for key, path in merge_paths(settings.OVERLAY_PATHS).items()}
    if value in managed:
        raise ValidationError(f"{value} is the node's {managed[value]} file; each rule's ARP "
                              "table needs a file of its own.")


def _valid_rule_name(value: object) -> bool:
    try:
        validate_rule_name(value)
    except RuleStringError:
        return False
    return True


class OverlayRule(StrictTypesMixin, models.Model):
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
        constraints = [
            # clean() says which rule has the file; this holds it under concurrent writes.
            models.UniqueConstraint(fields=["arp_file"], condition=~Q(arp_file=""),
                                    name="unique_rule_arp_file"),
        ]

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

    def validate_constraints(self, exclude: set[str] | None = None) -> None:
        # The ARP file is checked in clean(), with an error that says which rule has it.
        super().validate_constraints(exclude=set(exclude or ()) | {"arp_file"})

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if not self.arp_file and _valid_rule_name(self.name):
            self.arp_file = default_arp_file(self.name, settings.OVERLAY_ARP_DIRECTORY)
        if self.port is None:
            self.port = self.next_free_port(exclude_pk=self.pk)
        elif is_int(self.port):
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
        if self.pk and is_int(self.mtu) and MTU_MIN <= self.mtu <= MTU_MAX:
            larger = list(self.networks.filter(mtu__gt=self.mtu).order_by("name")
                          .values_list("name", "mtu"))
            if larger:
                shown = ", ".join(f"{name} ({mtu})" for name, mtu in larger[:5])
                more = f" and {len(larger) - 5} more" if len(larger) > 5 else ""
                errors["mtu"] = (
                    f"Networks on this rule have a larger MTU: {shown}{more}. A network's MTU "
                    "may not exceed its rule's; lower theirs first."
                )
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
