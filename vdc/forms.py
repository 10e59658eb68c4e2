"""Forms of the vDC admin pages.

The forms only parse what the user typed; every rule about networks lives in the
model's ``clean()`` and in ``overlays.services``, whose ``ValidationError`` sentences
are put next to the field they name (unknown names go to the top of the form).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from overlays.models import OverlayRule, VirtualNetwork


def add_service_errors(form: forms.BaseForm, error: ValidationError) -> None:
    """Show a service's ValidationError on the form: per field, unknown fields at the top."""
    if not hasattr(error, "error_dict"):
        for message in error.messages:
            form.add_error(None, message)
        return
    for field, messages in error.message_dict.items():
        target = field if field in form.fields else None
        for message in messages:
            form.add_error(target, message)


class NetworkForm(forms.ModelForm):
    """Create or change a virtual network; its vDC is fixed by the page, not chosen here."""

    class Meta:
        model = VirtualNetwork
        fields = ["name", "overlay_rule", "vxlan_id", "vlan_id", "network", "gateway", "mtu",
                  "description"]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 3}),
            "network": forms.TextInput(attrs={"placeholder": "192.168.10.0/24"}),
            "gateway": forms.TextInput(attrs={"placeholder": "192.168.10.1"}),
        }

    def __init__(self, *args: Any, user: AbstractBaseUser | AnonymousUser,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        rules = OverlayRule.objects.order_by("name")
        if not user.is_superuser:
            # The admin overlay's rule is reserved for node management.
            rules = rules.filter(admin_overlay__isnull=True)
        rule_field = self.fields["overlay_rule"]
        rule_field.queryset = rules
        rule_field.empty_label = None
        rule_field.help_text = "The overlay rule; VM NICs get the NIC tag <rule>/<VXLAN id>."
        if self.initial.get("overlay_rule") is None:
            # Preselect a tenant rule, also for superusers who are offered the admin one.
            first = rules.filter(admin_overlay__isnull=True).first()
            if first is not None:
                self.initial["overlay_rule"] = first.pk
        if self.instance.vdc_id:
            vdc = self.instance.vdc
            self.fields["vxlan_id"].help_text = (
                f"Allowed in vDC {vdc.name}: {vdc.vxlan_allowed or 'none'}.")
            self.fields["vlan_id"].help_text = (
                f"VLAN inside the overlay; allowed in vDC {vdc.name}: "
                f"{vdc.vlan_allowed or 'none'} (0: untagged).")

    def add_error(self, field: str | None, error: Any) -> None:
        """As Form.add_error, but errors for fields the form lacks go to the top of the form.

        The model's ``clean()`` also names fields this form does not show (``vdc`` for
        the network limit); Django would raise ValueError for those.
        """
        if isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            if field is not None:
                raise TypeError("field must be None when error names several fields")
            for name, errors in error.error_dict.items():
                self.add_error(name, ValidationError(errors))
            return
        if field == NON_FIELD_ERRORS or (field is not None and field not in self.fields):
            field = None
        super().add_error(field, error)
