"""Web pages for vDC admins (and superusers): their vDCs, networks, vNICs and sync status.

Every object is looked up through ``.restrict(request.user)``, so another vDC's
objects answer 404 exactly like missing ones. Writes go through
``overlays.services``; its ValidationError sentences are shown next to the field
they name and its PermissionDenied becomes a 403. A vNIC's success message names
the nodes the change was queued for (``overlays.feedback``); a vNIC moves only
between networks of its own vDC.
"""

from __future__ import annotations

import copy
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from core.roles import sees_everything
from overlays import services
from overlays.feedback import capture_sync_requests, queued_sentence
from overlays.models import OverlayRule, VirtualNetwork, Vnic
from vdc import selectors
from vdc.forms import NetworkForm, VnicForm, VnicMoveForm, add_service_errors
from vdc.models import Vdc


def _visible_vdc(request: HttpRequest, name: str) -> Vdc:
    return get_object_or_404(Vdc.objects.restrict(request.user), name=name)


def _visible_network(request: HttpRequest, name: str) -> VirtualNetwork:
    networks = VirtualNetwork.objects.restrict(request.user).select_related("vdc", "overlay_rule")
    return get_object_or_404(networks, name=name)


def _visible_vnic(request: HttpRequest, pk: int) -> Vnic:
    vnics = Vnic.objects.restrict(request.user).select_related(
        "node", "network", "network__vdc", "network__overlay_rule")
    return get_object_or_404(vnics, pk=pk)


def _offered_rules(user: Any) -> Any:
    """The rules the network form offers: a vDC admin never gets the admin overlay's."""
    rules = OverlayRule.objects.order_by("name")
    return rules if user.is_superuser else rules.filter(admin_overlay__isnull=True)


def _warn(request: HttpRequest, saved: VirtualNetwork) -> None:
    """What the save allowed but is probably a mistake (services.warnings_of), as messages."""
    for sentences in services.warnings_of(saved).values():
        for sentence in sentences:
            messages.warning(request, sentence)


def _after_network_url(network: VirtualNetwork) -> str:
    """Where to go once a network is saved or deleted: its vDC, or home for a global one."""
    if network.vdc_id:
        return reverse("vdc:vdc-detail", args=[network.vdc.name])
    return reverse("vdc:home")


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """My virtual datacenters: ranges, usage and networks of each vDC the user administers."""
    vdcs = list(selectors.vdcs_with_networks(Vdc.objects.restrict(request.user)))
    usage = selectors.usage_by_vdc(vdcs)
    global_networks = None
    if sees_everything(request.user):
        global_networks = selectors.networks_with_counts(
            VirtualNetwork.objects.filter(vdc__isnull=True))
    return render(request, "vdc/home.html", {
        "rows": [(vdc, usage[vdc.pk]) for vdc in vdcs],
        "global_networks": global_networks,
    })


@login_required
def vdc_detail(request: HttpRequest, name: str) -> HttpResponse:
    vdc = _visible_vdc(request, name)
    return render(request, "vdc/vdc_detail.html", {
        "vdc": vdc,
        "usage": selectors.vdc_usage(vdc),
        "networks": selectors.networks_with_counts(vdc.networks.all()),
    })


@login_required
def network_detail(request: HttpRequest, name: str) -> HttpResponse:
    network = _visible_network(request, name)
    return render(request, "vdc/network_detail.html", {
        "network": network,
        "vnics": selectors.network_vnics(network),
        "nodes": selectors.network_nodes(network, with_messages=sees_everything(request.user)),
    })


def _save_network_form(request: HttpRequest, form: NetworkForm) -> VirtualNetwork | None:
    """Validate and save through the service; None when the form shows errors."""
    if not form.is_valid():
        return None
    network = form.save(commit=False)
    try:
        return services.save_network(network, user=request.user)
    except ValidationError as exc:
        add_service_errors(form, exc)
        return None


SUGGEST_VLAN = "suggest_vlan"  # the form's second button: fill in the next free VLAN


def _as_int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _suggested_form(request: HttpRequest, network: VirtualNetwork,
                    vdc: Vdc | None) -> NetworkForm:
    """The form as typed, unsaved and without errors, with the next free VLAN filled in
    for the rule and VXLAN chosen: the no-script way to the suggestion."""
    typed = {key: request.POST.get(key) for key in NetworkForm.Meta.fields}
    form = NetworkForm(instance=network, user=request.user, initial=typed)
    if vdc is not None:
        vlan = selectors.next_free_vlan(vdc, rule_id=_as_int(typed["overlay_rule"]),
                                        vxlan_id=_as_int(typed["vxlan_id"]),
                                        exclude_network=network.pk)
        if vlan is not None:
            form.initial["vlan_id"] = vlan
    return form


def _network_form_page(request: HttpRequest, form: NetworkForm, *, vdc: Vdc | None,
                       network: VirtualNetwork | None) -> HttpResponse:
    """The network form with its guidance: MTU per rule, and the next free VLAN."""
    guidance = selectors.mtu_guidance(_offered_rules(request.user))
    rule_id = _as_int(form["overlay_rule"].value())
    vxlan_id = _as_int(form["vxlan_id"].value())
    hints = {}
    if rule_id in guidance:
        hints["mtu"] = guidance[rule_id].sentence
    if vdc is not None:
        hints["vlan_id"] = _vlan_hint(vdc, rule_id, vxlan_id,
                                      exclude_network=network.pk if network else None)
    return render(request, "vdc/network_form.html", {
        "form": form, "vdc": vdc, "network": network, "hints": hints,
        "live_hints": ("vlan_id", "mtu") if vdc is not None else ("mtu",),
        "mtu_guidance": {str(pk): g.sentence for pk, g in guidance.items()},
        "next_vlan_url": (reverse("vdc:next-free-vlan", args=[vdc.name])
                          + (f"?network={network.name}" if network else "")) if vdc else "",
        "suggest_vlan": SUGGEST_VLAN,
    })


def _vlan_hint(vdc: Vdc, rule_id: int | None, vxlan_id: int | None, *,
               exclude_network: int | None) -> str:
    rule = OverlayRule.objects.filter(pk=rule_id).values_list("name", flat=True).first()
    if rule is None or vxlan_id is None:
        return ""
    vlan = selectors.next_free_vlan(vdc, rule_id=rule_id, vxlan_id=vxlan_id,
                                    exclude_network=exclude_network)
    if vlan is None:
        return f"No VLAN id allowed in vDC {vdc.name} is free in {rule}/{vxlan_id}."
    return f"Next free VLAN id in {rule}/{vxlan_id}: {vlan}."


@login_required
@require_GET
def next_free_vlan(request: HttpRequest, name: str) -> JsonResponse:
    """The next free VLAN id for ?overlay_rule=<id>&vxlan_id=<id> (and ?network=<name>
    when editing it), for the network form's script. Answers only with ids."""
    vdc = _visible_vdc(request, name)
    rule_id = _as_int(request.GET.get("overlay_rule"))
    vxlan_id = _as_int(request.GET.get("vxlan_id"))
    if not _offered_rules(request.user).filter(pk=rule_id).exists() or vxlan_id is None:
        return JsonResponse({"next_free_vlan": None, "hint": ""})
    exclude = None
    if request.GET.get("network"):
        exclude = (VirtualNetwork.objects.restrict(request.user)
                   .filter(name=request.GET["network"]).values_list("pk", flat=True).first())
    vlan = selectors.next_free_vlan(vdc, rule_id=rule_id, vxlan_id=vxlan_id,
                                    exclude_network=exclude)
    return JsonResponse({"next_free_vlan": vlan,
                         "hint": _vlan_hint(vdc, rule_id, vxlan_id, exclude_network=exclude)})


@login_required
@require_http_methods(["GET", "POST"])
def network_create(request: HttpRequest, name: str) -> HttpResponse:
    vdc = _visible_vdc(request, name)
    network = VirtualNetwork(vdc=vdc)
    if request.method == "POST" and SUGGEST_VLAN in request.POST:
        form = _suggested_form(request, network, vdc)
    elif request.method == "POST":
        form = NetworkForm(request.POST, instance=network, user=request.user)
        saved = _save_network_form(request, form)
        if saved is not None:
            messages.success(request, f"Network {saved.name} created.")
            _warn(request, saved)
            return redirect(_after_network_url(saved))
    else:
        usage = selectors.vdc_usage(vdc)
        form = NetworkForm(instance=network, user=request.user,
                           initial={"vxlan_id": usage["next_free_vxlan"]})
        rule_id = form.initial.get("overlay_rule")
        vlan = selectors.next_free_vlan(vdc, rule_id=rule_id, vxlan_id=usage["next_free_vxlan"])
        form.initial["vlan_id"] = vlan
        rule = OverlayRule.objects.filter(pk=rule_id).first()
        if rule is not None:
            # The largest MTU that needs no fragmenting on the rule's paths (at most its own).
            guide = selectors.mtu_guidance([rule])[rule.pk]
            form.initial["mtu"] = min(rule.mtu, guide.tagged if vlan else guide.untagged)
    return _network_form_page(request, form, vdc=vdc, network=None)


@login_required
@require_http_methods(["GET", "POST"])
def network_edit(request: HttpRequest, name: str) -> HttpResponse:
    network = _visible_network(request, name)
    original = VirtualNetwork(pk=network.pk, name=network.name, vdc=network.vdc)
    if request.method == "POST" and SUGGEST_VLAN in request.POST:
        form = _suggested_form(request, network, network.vdc)
    elif request.method == "POST":
        form = NetworkForm(request.POST, instance=network, user=request.user)
        saved = _save_network_form(request, form)
        if saved is not None:
            messages.success(request, f"Network {saved.name} changed.")
            _warn(request, saved)
            return redirect(_after_network_url(saved))
    else:
        form = NetworkForm(instance=network, user=request.user)
    return _network_form_page(request, form, vdc=network.vdc, network=original)


@login_required
@require_http_methods(["GET", "POST"])
def network_delete(request: HttpRequest, name: str) -> HttpResponse:
    network = _visible_network(request, name)
    error = None
    if request.method == "POST":
        try:
            services.delete_network(network, user=request.user)
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            messages.success(request, f"Network {network.name} deleted.")
            return redirect(_after_network_url(network))
    return render(request, "vdc/network_confirm_delete.html", {
        "network": network,
        "vnic_count": network.vnics.count(),
        "error": error,
    })


# ----------------------------------------------------------------------------- vNICs

@login_required
def vdc_vnics(request: HttpRequest, name: str) -> HttpResponse:
    """Every vNIC on the vDC's networks, with edit, move and delete."""
    vdc = _visible_vdc(request, name)
    return render(request, "vdc/vnic_list.html", {
        "vdc": vdc, "vnics": selectors.vdc_vnics(vdc),
        "networks": vdc.networks.order_by("name").only("name"),
    })


def _after_vnic_url(vnic: Vnic) -> str:
    return reverse("vdc:network-detail", args=[vnic.network.name])


def _save_vnic_form(request: HttpRequest, form: VnicForm | VnicMoveForm,
                    ) -> tuple[Vnic | None, str]:
    """Validate and save through the service: the vNIC (None when the form shows errors)
    and a sentence naming the nodes the change was queued for, and how far they got."""
    if not form.is_valid():
        return None, ""
    vnic = form.save(commit=False)
    try:
        with capture_sync_requests() as queued:
            services.save(vnic)
    except ValidationError as exc:
        add_service_errors(form, exc)
        return None, ""
    return vnic, queued_sentence(queued)


@login_required
@require_http_methods(["GET", "POST"])
def vnic_create(request: HttpRequest, name: str) -> HttpResponse:
    network = _visible_network(request, name)
    vnic = Vnic(network=network)
    if request.method == "POST":
        form = VnicForm(request.POST, instance=vnic, network=network)
        saved, queued = _save_vnic_form(request, form)
        if saved is not None:
            messages.success(request, f"vNIC of {saved.vm_name} ({saved.mac}) created on "
                                      f"network {network.name}. {queued}")
            return redirect(_after_vnic_url(saved))
    else:
        form = VnicForm(instance=vnic, network=network, initial={
            "mac": selectors.free_mac_on_rule(network.overlay_rule_id),
            "ip": selectors.next_free_ip(network),
        })
    return render(request, "vdc/vnic_form.html",
                  {"form": form, "network": network, "vnic": None})


@login_required
@require_http_methods(["GET", "POST"])
def vnic_edit(request: HttpRequest, pk: int) -> HttpResponse:
    vnic = _visible_vnic(request, pk)
    network = vnic.network
    original = Vnic(pk=vnic.pk, vm_name=vnic.vm_name, mac=vnic.mac, network=network)
    if request.method == "POST":
        form = VnicForm(request.POST, instance=vnic, network=network)
        saved, queued = _save_vnic_form(request, form)
        if saved is not None:
            messages.success(request, f"vNIC of {saved.vm_name} ({saved.mac}) changed. "
                                      f"{queued}")
            return redirect(_after_vnic_url(saved))
    else:
        form = VnicForm(instance=vnic, network=network)
    return render(request, "vdc/vnic_form.html",
                  {"form": form, "network": network, "vnic": original})


def _move_targets(request: HttpRequest, vnic: Vnic) -> Any:
    """The other networks of the vNIC's vDC (global networks: other global ones)."""
    networks = VirtualNetwork.objects.restrict(request.user).select_related("overlay_rule")
    if vnic.network.vdc_id is None:
        networks = networks.filter(vdc__isnull=True)
    else:
        networks = networks.filter(vdc_id=vnic.network.vdc_id)
    return networks.exclude(pk=vnic.network_id).order_by("name")


@login_required
@require_http_methods(["GET", "POST"])
def vnic_move(request: HttpRequest, pk: int) -> HttpResponse:
    vnic = _visible_vnic(request, pk)
    shown = copy.copy(vnic)  # the form's validation changes vnic; the page shows it as it is
    source = vnic.network
    targets = _move_targets(request, vnic)
    if request.method == "POST":
        form = VnicMoveForm(request.POST, instance=vnic, targets=targets)
        saved, queued = _save_vnic_form(request, form)
        if saved is not None:
            messages.success(request, f"vNIC of {saved.vm_name} ({saved.mac}) moved from "
                                      f"network {source.name} to {saved.network.name}. "
                                      f"{queued}")
            return redirect(_after_vnic_url(saved))
    else:
        form = VnicMoveForm(instance=vnic, targets=targets, initial={"network": None})
    return render(request, "vdc/vnic_move.html", {
        "form": form, "vnic": shown, "network": source, "has_targets": targets.exists()})


@login_required
@require_http_methods(["GET", "POST"])
def vnic_delete(request: HttpRequest, pk: int) -> HttpResponse:
    vnic = _visible_vnic(request, pk)
    error = None
    if request.method == "POST":
        try:
            with capture_sync_requests() as queued:
                services.delete(vnic)
        except ValidationError as exc:
            error = " ".join(exc.messages)
        else:
            messages.success(request, f"vNIC of {vnic.vm_name} ({vnic.mac}) deleted from "
                                      f"network {vnic.network.name}. {queued_sentence(queued)}")
            return redirect(reverse("vdc:network-detail", args=[vnic.network.name]))
    return render(request, "vdc/vnic_confirm_delete.html",
                  {"vnic": vnic, "network": vnic.network, "error": error})
