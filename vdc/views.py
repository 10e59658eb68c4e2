"""Web pages for vDC admins (and superusers): their vDCs, networks, vNICs and sync status.

Every object is looked up through ``.restrict(request.user)``, so another vDC's
objects answer 404 exactly like missing ones. Writes go through
``overlays.services``; its ValidationError sentences are shown next to the field
they name and its PermissionDenied becomes a 403.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from overlays import services
from overlays.models import VirtualNetwork
from vdc import selectors
from vdc.forms import NetworkForm, add_service_errors
from vdc.models import Vdc


def _visible_vdc(request: HttpRequest, name: str) -> Vdc:
    return get_object_or_404(Vdc.objects.restrict(request.user), name=name)


def _visible_network(request: HttpRequest, name: str) -> VirtualNetwork:
    networks = VirtualNetwork.objects.restrict(request.user).select_related("vdc", "overlay_rule")
    return get_object_or_404(networks, name=name)


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
    if request.user.is_superuser:
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
        "nodes": selectors.network_nodes(network, with_messages=request.user.is_superuser),
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


@login_required
@require_http_methods(["GET", "POST"])
def network_create(request: HttpRequest, name: str) -> HttpResponse:
    vdc = _visible_vdc(request, name)
    network = VirtualNetwork(vdc=vdc)
    if request.method == "POST":
        form = NetworkForm(request.POST, instance=network, user=request.user)
        saved = _save_network_form(request, form)
        if saved is not None:
            messages.success(request, f"Network {saved.name} created.")
            return redirect(_after_network_url(saved))
    else:
        usage = selectors.vdc_usage(vdc)
        form = NetworkForm(instance=network, user=request.user, initial={
            "vxlan_id": usage["next_free_vxlan"],
            "vlan_id": selectors.next_free_vlan(vdc, rule_name=None, vxlan_id=None),
        })
    return render(request, "vdc/network_form.html", {"form": form, "vdc": vdc, "network": None})


@login_required
@require_http_methods(["GET", "POST"])
def network_edit(request: HttpRequest, name: str) -> HttpResponse:
    network = _visible_network(request, name)
    original = VirtualNetwork(pk=network.pk, name=network.name, vdc=network.vdc)
    if request.method == "POST":
        form = NetworkForm(request.POST, instance=network, user=request.user)
        saved = _save_network_form(request, form)
        if saved is not None:
            messages.success(request, f"Network {saved.name} changed.")
            return redirect(_after_network_url(saved))
    else:
        form = NetworkForm(instance=network, user=request.user)
    return render(request, "vdc/network_form.html",
                  {"form": form, "vdc": network.vdc, "network": original})


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
