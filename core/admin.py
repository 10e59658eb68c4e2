"""Django admin glue every app's admin uses: ``ServiceAdmin`` and ``LineListField``.

Imports Django and ``core.hooks`` only; the service functions it calls are named in
``settings.CORE_HOOKS``. core is not an installed app, so admin autodiscovery never
imports this module by itself: each app's ``admin.py`` does.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db import models, transaction
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest

from core import hooks


class ServiceAdmin(admin.ModelAdmin):
    """Writes through the service layer, so an admin edit is validated and syncs like any other.

    Every way the admin writes goes through it: the change form (``save_model``), inline
    rows (``save_formset``), the delete page (``delete_model``) and the changelist's bulk
    "Delete selected" action (``delete_queryset``), which Django would otherwise run as
    one ``QuerySet.delete()`` that no service sees, so nothing would be synced.
    """

    def save_model(self, request: HttpRequest, obj: models.Model, form: ModelForm,
                   change: bool) -> None:
        hooks.save(obj)

    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        hooks.delete(obj)

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet) -> None:
        """Bulk delete: each object through the services, all in one transaction."""
        with transaction.atomic():
            for obj in queryset:
                hooks.delete(obj)

    def save_formset(self, request: HttpRequest, form: ModelForm, formset: BaseInlineFormSet,
                     change: bool) -> None:
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            hooks.delete(obj)
        for obj in instances:
            hooks.save(obj)
        formset.save_m2m()


class LineListField(forms.CharField):
    """A list of strings edited as one item per line (commas also separate), not raw JSON."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 40})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return "\n".join(str(v) for v in value)
        return value

    def to_python(self, value: Any) -> list[str]:
        if isinstance(value, list):
            return value
        text = str(value or "").replace(",", "\n")
        return [line.strip() for line in text.splitlines() if line.strip()]

    def has_changed(self, initial: Any, data: Any) -> bool:
        return self.to_python(initial) != self.to_python(data)
