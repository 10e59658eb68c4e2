"""The record of IPSec key rotations: who asked, when, for which pair, and what came of it."""

from __future__ import annotations

from django.db import models

from overlays.models.security import IpsecKey


class RotationOutcome(models.TextChoices):
    DONE = "done", "done"
    DEFERRED = "deferred", "deferred"


class KeyRotation(models.Model):
    """One pair's rotation, done or deferred (an end could not be reached); never the key.

    The host names are kept as text so that the record outlives the pair's key and nodes.
    """

    key = models.ForeignKey(
        IpsecKey,
        verbose_name="IPSec key",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="rotations",
    )
    node_a = models.CharField(
        verbose_name="node A",
        max_length=253,
        help_text="Host name of the pair's first node.",
    )
    node_b = models.CharField(
        verbose_name="node B",
        max_length=253,
        help_text="Host name of the pair's second node.",
    )
    requested_at = models.DateTimeField(
        verbose_name="requested at",
        auto_now_add=True,
        db_index=True,
    )
    requested_by = models.CharField(
        verbose_name="requested by",
        max_length=150,
        blank=True,
        help_text="User name, or what asked (the periodic rotation).",
    )
    entry_point = models.CharField(
        verbose_name="entry point",
        max_length=20,
        blank=True,
        help_text="cli, api, pages, admin or beat.",
    )
    outcome = models.CharField(
        verbose_name="outcome",
        max_length=10,
        choices=RotationOutcome.choices,
        help_text="done: a new key for both ends, pushed in one batch; deferred: an end could "
        "not be reached, the pair keeps its key.",
    )
    reason = models.TextField(
        verbose_name="reason",
        blank=True,
        help_text="Why the rotation was deferred.",
    )

    class Meta:
        ordering = ["-requested_at", "-id"]
        verbose_name = "key rotation"

    def __str__(self) -> str:
        return f"rotation {self.node_a} <-> {self.node_b}: {self.outcome}"
