"""The firewall (the global allow-list on external0) and the IPSec keys of node pairs."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from core.models import StrictTypesMixin
from core.validators import validate_source
from nodes.models import Node
from overlays import secretbox
from overlays.models.management import firewall_guards, management_sources


class FirewallSettings(StrictTypesMixin, models.Model):
    """Global ipfilter policy for external0; there is one row."""

    enabled = models.BooleanField(
        verbose_name="allow-list enabled",
        default=False,
        help_text="Block everything on external0 except the management server, administrator "
        "sources and other compute nodes; needs at least one administrator source. Plaintext "
        "overlay traffic on external0 is blocked either way.",
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
                normalised.append(str(validate_source(source)))
            except ValidationError as exc:
                bad.append(exc.messages[0])
        if bad:
            raise ValidationError({"allowed_sources": " ".join(bad)})
        self.allowed_sources = list(dict.fromkeys(normalised))
        if self.enabled is True:  # a non-boolean: StrictTypesMixin says so
            guards = firewall_guards(enabled=True, allowed_sources=self.allowed_sources)
            if guards:
                raise ValidationError(guards)

    @property
    def management_sources(self) -> tuple[str, ...]:
        """The management server's own sources, which every allow-list lets in first."""
        return management_sources()

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
