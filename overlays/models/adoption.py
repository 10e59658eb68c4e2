"""``AdoptionRecord``: who adopted which nodes' running configuration, when, and what came in.

An adoption (``overlays.adoption``) imports what the reference tool left on the nodes; the
record is written in the same transaction as the import, so a record exists exactly when
an adoption was applied. It holds no secret: pair keys are counted, never copied.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

ENTRY_POINTS = (("cli", "command line"), ("api", "API"), ("pages", "operator pages"))


class AdoptionRecord(models.Model):
    created_at = models.DateTimeField(
        verbose_name="adopted at",
        auto_now_add=True,
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name="user",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The account that adopted; empty for a command-line run without one.",
    )
    actor = models.CharField(
        verbose_name="actor",
        max_length=150,
        blank=True,
        help_text="The user name (or the OS user of a command-line run), kept if the "
        "account is deleted.",
    )
    entry_point = models.CharField(
        verbose_name="entry point",
        max_length=16,
        choices=ENTRY_POINTS,
    )
    hosts = models.JSONField(
        verbose_name="hosts read",
        default=list,
        help_text="Host names of the nodes whose configuration was read.",
    )
    summary = models.JSONField(
        verbose_name="summary",
        default=dict,
        help_text="How many rules, networks, vNICs and admin-overlay addresses the adopted "
        "state file held, how many pair keys were kept, and the notes.",
    )
    changes = models.JSONField(
        verbose_name="changes",
        default=list,
        blank=True,
        help_text="What the import changed, one line each (empty: the database already "
        "held it all).",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "adoption record"

    def __str__(self) -> str:
        return (f"adoption of {len(self.hosts)} node(s) by {self.actor or 'unknown'} "
                f"({self.get_entry_point_display()})")
