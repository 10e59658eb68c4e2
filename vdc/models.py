"""Virtual datacenters: tenant boundaries and what their admins may create."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from core.models import StrictTypesMixin
from core.querysets import RestrictedQuerySet
from core.validators import validate_object_name
from vdc.idranges import VLAN_MAX, VLAN_MIN, VXLAN_MAX, VXLAN_MIN, IdRangeError, IdRanges


class VdcQuerySet(RestrictedQuerySet):
    def visible_to(self, user: object) -> Q:
        """A vDC admin sees the vDCs they administer."""
        return Q(admins=user)


class Vdc(StrictTypesMixin, models.Model):
    name = models.CharField(
        verbose_name="name",
        max_length=64,
        unique=True,
        validators=[validate_object_name],
        help_text="Tenant, environment or department name.",
    )
    description = models.TextField(
        verbose_name="description",
        blank=True,
    )
    admins = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        verbose_name="admins",
        blank=True,
        related_name="administered_vdcs",
        help_text="Users who manage this vDC's virtual networks.",
    )
    vxlan_allowed = models.CharField(
        verbose_name="VMS_NET_VXLAN_ALLOWED",
        max_length=1000,
        blank=True,
        help_text='VXLAN ids this vDC\'s admins may use: ids and ranges, e.g. "100-199,250". '
        "Empty allows none.",
    )
    vlan_allowed = models.CharField(
        verbose_name="VMS_NET_VLAN_ALLOWED",
        max_length=1000,
        blank=True,
        help_text='VLAN ids this vDC\'s admins may use inside an overlay, e.g. "10-20".',
    )
    vxlan_restrict = models.BooleanField(
        verbose_name="VMS_NET_VXLAN_RESTRICT",
        default=True,
        help_text="Every network of this vDC must use an allowed VXLAN id, whoever creates it.",
    )
    vlan_restrict = models.BooleanField(
        verbose_name="VMS_NET_VLAN_RESTRICT",
        default=True,
        help_text="Every network of this vDC must use an allowed VLAN id, whoever creates it.",
    )
    network_limit = models.PositiveIntegerField(
        verbose_name="network limit",
        null=True,
        blank=True,
        help_text="Most virtual networks this vDC may own; empty means no limit.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = VdcQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = "virtual datacenter"

    def __str__(self) -> str:
        return self.name

    @property
    def vxlan_ranges(self) -> IdRanges:
        return IdRanges.parse(self.vxlan_allowed, minimum=VXLAN_MIN, maximum=VXLAN_MAX,
                              label="VXLAN id")

    @property
    def vlan_ranges(self) -> IdRanges:
        return IdRanges.parse(self.vlan_allowed, minimum=VLAN_MIN, maximum=VLAN_MAX,
                              label="VLAN id")

    def clean(self) -> None:
        errors: dict[str, str] = {}
        parsed: dict[str, IdRanges] = {}
        for field, (lo, hi, label) in {
            "vxlan_allowed": (VXLAN_MIN, VXLAN_MAX, "VXLAN id"),
            "vlan_allowed": (VLAN_MIN, VLAN_MAX, "VLAN id"),
        }.items():
            try:
                parsed[field] = IdRanges.parse(getattr(self, field) or "", minimum=lo,
                                               maximum=hi, label=label)
            except IdRangeError as exc:
                errors[field] = str(exc)
            else:
                setattr(self, field, str(parsed[field]))
        if self.pk and not errors:
            errors.update(self._shrink_errors(parsed))
        if self.pk and self.network_limit is not None:
            used = self.networks.count()
            if used > self.network_limit:
                errors["network_limit"] = (
                    f"This vDC already owns {used} networks; the limit cannot be lower."
                )
        if errors:
            raise ValidationError(errors)

    def _shrink_errors(self, parsed: dict[str, IdRanges]) -> dict[str, str]:
        """A range may not shrink below, or a restriction exclude, a network already using it."""
        previous = type(self).objects.filter(pk=self.pk).first()
        errors: dict[str, str] = {}
        checks = [
            ("vxlan_allowed", "vxlan_id", "VXLAN", self.vxlan_restrict,
             previous.vxlan_ranges if previous else None),
            ("vlan_allowed", "vlan_id", "VLAN", self.vlan_restrict,
             previous.vlan_ranges if previous else None),
        ]
        networks = list(self.networks.values_list("name", "vxlan_id", "vlan_id"))
        for field, id_field, label, restrict, old in checks:
            new = parsed[field]
            offenders = []
            for name, vxlan_id, vlan_id in networks:
                used = vxlan_id if id_field == "vxlan_id" else vlan_id
                was_allowed = old is not None and used in old
                if used not in new and (restrict or was_allowed):
                    offenders.append(f"{name} ({label} {used})")
            if offenders:
                errors[field] = (
                    f"Networks of this vDC use ids outside the new {label} range: "
                    f"{', '.join(sorted(offenders))}. Move or delete them first."
                )
        return errors


def is_vdc_admin(user: object) -> bool:
    """True for a signed-in, active user who administers at least one vDC.

    The API's delegated role; ``settings.CORE_HOOKS["is_vdc_admin"]`` names this function
    so that ``core.api.permissions`` can ask without importing this app.
    """
    return Vdc.objects.restrict(user).exists()


def range_overlaps() -> list[tuple[str, str, str, str]]:
    """Pairs of vDCs whose allowed ranges overlap: (vdc_a, vdc_b, "VXLAN"/"VLAN", ids).

    Overlaps are allowed (VLAN ids are reused per overlay) but a superuser should know.
    """
    vdcs = list(Vdc.objects.order_by("name"))
    found = []
    for i, a in enumerate(vdcs):
        for b in vdcs[i + 1:]:
            for label, ra, rb in (
                ("VXLAN", a.vxlan_ranges, b.vxlan_ranges),
                ("VLAN", a.vlan_ranges, b.vlan_ranges),
            ):
                common = ra.overlaps(rb)
                if not common.is_empty():
                    found.append((a.name, b.name, label, str(common)))
    return found
