"""Adopting a running cluster from the browser (issue 11), superusers only.

``/ops/adopt/``: choose hosts (none: every node) and look; the dry run shows the state
file built from the nodes, the conflicts and notes; with no conflict a confirm button
adopts exactly what was shown (the dry run's fingerprint is checked again, so nodes that
changed in between are read again rather than imported unseen). ``/ops/adopt/networks/``
gives the networks an adoption created (no vDC) to vDCs and renames them.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from nodes.models import Node
from nodes.transports import TransportError
from overlays import services
from overlays.adoption import (
    AdoptionChanged,
    AdoptionRefused,
    adopted_networks,
    apply_adoption,
    plan_adoption,
    read_cluster,
)
from overlays.models import AdoptionRecord
from overlays.pages.access import superuser_required
from vdc.forms import add_service_errors
from vdc.models import Vdc

RECENT_RECORDS = 10


class LookForm(forms.Form):
    hosts = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple,
        label="Nodes to read",
        help_text="None ticked: every known node. Adopting only some nodes keeps what the "
        "others carry.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["hosts"].choices = [
            (name, name) for name in Node.objects.order_by("hostname")
            .values_list("hostname", flat=True)]


class ConfirmForm(LookForm):
    fingerprint = forms.CharField(widget=forms.HiddenInput, max_length=64)


class GiveNetworkForm(forms.Form):
    network = forms.CharField(widget=forms.HiddenInput)
    name = forms.CharField(label="Name", max_length=64)
    vdc = forms.ModelChoiceField(
        queryset=Vdc.objects.order_by("name"), required=False, label="Give to vDC",
        empty_label="(keep without a vDC)", to_field_name="name",
        help_text="The vDC's allowed VXLAN and VLAN ids and its network limit apply.")


def _look(request: HttpRequest, form: LookForm) -> HttpResponse:
    hosts = form.cleaned_data["hosts"]
    try:
        adoption = plan_adoption(read_cluster(hosts or None))
    except (ValueError, TransportError) as exc:
        form.add_error(None, f"Cannot read the cluster: {exc}")
        return _start_page(request, form)
    confirm = ConfirmForm(initial={"hosts": hosts, "fingerprint": adoption.fingerprint()})
    return render(request, "ops/adopt_result.html", {
        "adoption": adoption, "confirm": confirm, "hosts": hosts,
        "summary": adoption.summary(),
        "state_json": json.dumps(adoption.state, indent=2, sort_keys=True),
        "pair_keys": sorted(adoption.pair_keys)})


def _adopt(request: HttpRequest, form: ConfirmForm) -> HttpResponse:
    hosts = form.cleaned_data["hosts"]
    try:
        adoption = plan_adoption(read_cluster(hosts or None))
        result = apply_adoption(adoption, user=request.user, entry_point="pages",
                                expect=form.cleaned_data["fingerprint"])
    except (ValueError, TransportError) as exc:
        form.add_error(None, f"Cannot read the cluster: {exc} Nothing was changed.")
        return _start_page(request, form)
    except AdoptionChanged as exc:
        messages.error(request, str(exc))
        return _look(request, form)
    except AdoptionRefused as exc:
        messages.error(request, f"{exc}.")
        return _look(request, form)
    messages.success(request, f"Adopted {len(adoption.hosts)} node(s): "
                              f"{len(result.changes)} change(s), {result.keys_adopted} pair "
                              "key(s) kept from the nodes.")
    return redirect("ops:adoption-record", pk=result.record.pk)


def _start_page(request: HttpRequest, form: LookForm) -> HttpResponse:
    return render(request, "ops/adopt.html", {
        "form": form,
        "records": AdoptionRecord.objects.select_related("user")[:RECENT_RECORDS],
        "adopted_networks": adopted_networks().count()})


@superuser_required
@require_http_methods(["GET", "POST"])
def adopt(request: HttpRequest) -> HttpResponse:
    """Look (a dry run), then confirm; nothing is imported without a look first."""
    if request.method == "GET":
        return _start_page(request, LookForm())
    if "fingerprint" in request.POST:
        form = ConfirmForm(request.POST)
        if form.is_valid():
            return _adopt(request, form)
        return _start_page(request, LookForm(request.POST))
    form = LookForm(request.POST)
    if not form.is_valid():
        return _start_page(request, form)
    return _look(request, form)


@superuser_required
@require_http_methods(["GET"])
def adoption_record(request: HttpRequest, pk: int) -> HttpResponse:
    record = get_object_or_404(AdoptionRecord.objects.select_related("user"), pk=pk)
    return render(request, "ops/adopt_record.html", {
        "record": record, "summary_json": json.dumps(record.summary, indent=2,
                                                     sort_keys=True)})


@superuser_required
@require_http_methods(["GET", "POST"])
def adopted_network_list(request: HttpRequest) -> HttpResponse:
    """Each network without a vDC, with a form to rename it and give it to a vDC."""
    networks = list(adopted_networks().annotate(vnic_count=Count("vnics")).order_by("name"))
    failed: GiveNetworkForm | None = None
    if request.method == "POST":
        form = GiveNetworkForm(request.POST)
        if form.is_valid():
            network = get_object_or_404(adopted_networks(), name=form.cleaned_data["network"])
            old_name, vdc = network.name, form.cleaned_data["vdc"]
            try:
                network = services.give_adopted_network(
                    network, user=request.user, vdc=vdc, name=form.cleaned_data["name"])
            except ValidationError as exc:
                add_service_errors(form, exc)
            else:
                what = [f"renamed to {network.name}"] if network.name != old_name else []
                if vdc is not None:
                    what.append(f"given to vDC {vdc.name}")
                messages.success(request, f"Network {old_name}: "
                                          f"{' and '.join(what) or 'unchanged'}.")
                return redirect("ops:adopted-networks")
        failed = form
    rows = []
    for index, network in enumerate(networks):
        form = (failed if failed is not None and failed.data.get("network") == network.name
                else GiveNetworkForm(initial={"network": network.name, "name": network.name}))
        form.auto_id = f"id_network{index}_%s"  # one page, many forms: ids stay unique
        rows.append({"network": network, "form": form})
    return render(request, "ops/adopt_networks.html", {"rows": rows,
                                                        "vdcs": Vdc.objects.exists()})
