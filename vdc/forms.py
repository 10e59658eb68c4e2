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
from django.db.models import QuerySet

from nodes.models import Node
from overlays.models import OverlayRule, VirtualNetwork, Vnic

# What a vDC admin is told when a network name is in use: names are unique in the whole
# cloud, so the name may be another tenant's; the sentence must not confirm more than that.
NAME_TAKEN = "This name is taken; network names are unique across the cloud. Choose another."


def add_service_errors(form: forms.BaseForm, error: ValidationError) -> None:
    """Show a service's ValidationError on the form: per field, unknown fields at the top."""
    if not hasattr(error, "error_dict"):
        for message in error.messages:
            form.add_error(None, message)
        return
    for field, errors in error.error_dict.items():
        target = field if field in form.fields else None
        for one in errors:
            form.add_error(target, one)


class ServiceErrorsMixin:
    """Errors for fields the form lacks go to the top of the form instead of raising.

    The model's ``clean()`` also names fields a form does not show (``vdc`` for the
    network limit, ``mac`` on the move form); Django would raise ValueError for those.
    """

    def add_error(self, field: str | None, error: Any) -> None:
        if isinstance(error, ValidationError) and hasattr(error, "error_dict"):
            if field is not None:
                raise TypeError("field must be None when error names several fields")
            for name, errors in error.error_dict.items():
                self.add_error(name, ValidationError(errors))
            return
        if field == NON_FIELD_ERRORS or (field is not None and field not in self.fields):
            field = None
        super().add_error(field, error)  # type: ignore[misc]


class NetworkForm(ServiceErrorsMixin, forms.ModelForm):
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
        """As the mixin's, but a vDC admin is told only that a network name is taken.

        The model's unique-name sentence (the form's own check, or the service's after a
        race) stays as it is for superusers, who see every network anyway.
        """
        if not self.user.is_superuser:
            error = _without_name_owner(field, error)
        super().add_error(field, error)


def _without_name_owner(field: str | None, error: Any) -> Any:
    """The same errors, with the unique-name error on ``name`` replaced by NAME_TAKEN."""
    if not isinstance(error, ValidationError):
        return error
    if hasattr(error, "error_dict"):
        return ValidationError({name: [_without_name_owner(name, e) for e in errors]
                                for name, errors in error.error_dict.items()})
    if field != "name":
        return error
    return ValidationError([
        ValidationError(NAME_TAKEN, code="unique") if one.code == "unique" else one
        for one in error.error_list])


class NodeChoiceField(forms.ModelChoiceField):
    """Nodes by host name; a node that does not carry the network's rule says so."""

    def __init__(self, *args: Any, rule: OverlayRule, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rule = rule

    def label_from_instance(self, obj: Node) -> str:
        if self.rule.carries(obj.hostname):
            return obj.hostname
        return f"{obj.hostname} (does not carry rule {self.rule.name})"


class VnicForm(ServiceErrorsMixin, forms.ModelForm):
    """Create or change a VM NIC; its network is fixed by the page (moving is VnicMoveForm)."""

    class Meta:
        model = Vnic
        fields = ["vm_name", "vm_uuid", "node", "mac", "ip", "ip6"]

    def __init__(self, *args: Any, network: VirtualNetwork, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance.network = network
        rule = network.overlay_rule
        self.fields["node"] = NodeChoiceField(
            queryset=Node.objects.only("hostname").order_by("hostname"), rule=rule, label="Node",
            help_text=f"The compute node hosting the VM; it should carry rule {rule.name}.")
        self.fields["mac"].help_text = (
            f"Unique on overlay rule {rule.name}: its ARP table is keyed by MAC. "
            "The suggestion is a new locally administered MAC.")
        self.fields["ip"].help_text = (f"Inside {network.network}"
                                       + (f", not the gateway {network.gateway}."
                                          if network.gateway else "."))
        self.fields["vm_uuid"].help_text = "Optional."
        self.fields["ip6"].help_text = "Optional."


class VnicMoveForm(ServiceErrorsMixin, forms.ModelForm):
    """Move a VM NIC to another network of the same vDC, with an address inside it."""

    class Meta:
        model = Vnic
        fields = ["network", "ip"]

    def __init__(self, *args: Any, targets: QuerySet[VirtualNetwork], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["network"]
        field.queryset = targets
        field.empty_label = None
        field.label = "New network"
        field.help_text = "Another network of the same vDC."
        field.label_from_instance = lambda net: (  # type: ignore[method-assign]
            f"{net.name} ({net.nic_tag}, VLAN {net.vlan_id}, {net.network})")
        self.fields["ip"].help_text = "Its IPv4 address on the new network, inside its subnet."
