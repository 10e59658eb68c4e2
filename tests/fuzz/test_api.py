"""Fuzz the API's writes: no 500, every refusal in the error shape, every accepted state renders.

For each resource a body is drawn from ``strategies.RESOURCES`` (good values, values at the
edge of each rule, and any JSON value) and sent as a create or as a change to one of the
demo cluster's objects, by a superuser or, where vDC admins may write, by alice. A 5xx is
a failure (the test client re-raises the exception, so hypothesis shows the smallest body
that causes it); a 4xx must be in the API's error shape; a 2xx must leave a state that
renders every node's files and whose export imports back unchanged.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from overlays.models import Vnic
from tests.fuzz.conftest import (
    FUZZ_API,
    assert_error_shape,
    assert_renders_and_reimports,
    rolled_back,
)
from tests.fuzz.strategies import anything, bodies

pytestmark = pytest.mark.django_db

# resource -> (collection path, item paths of demo objects to change, roles that may write)
TARGETS = {
    "overlay_rules": ("/api/v1/overlay-rules/", ["customers", "lab", "adminoverlay"],
                      ["superuser"]),
    "networks": ("/api/v1/networks/", ["acme-web", "globex-app", "lab-net"],
                 ["superuser", "alice"]),
    "vnics": ("/api/v1/vnics/", ["#0", "#2", "#6"], ["superuser", "alice"]),  # by position
    "nodes": ("/api/v1/nodes/", ["cn01.prague", "cn21.brno"], ["superuser"]),
    "vdcs": ("/api/v1/vdcs/", ["acme", "globex"], ["superuser"]),
}


def item_path(collection: str, where: str) -> str:
    """The path of a demo object; vNICs by their position (ids differ from test to test)."""
    if where.startswith("#"):
        where = str(Vnic.objects.order_by("pk").values_list("pk", flat=True)[int(where[1:])])
    return f"{collection}{where}/"


def send(client, method: str, path: str, body: object) -> None:
    with rolled_back():
        response = client.generic(method, path, json.dumps(body),
                                  content_type="application/json")
        event(f"{method} {response.status_code}")  # see --hypothesis-show-statistics
        if response.status_code >= 300:
            assert_error_shape(response)
        else:
            assert_renders_and_reimports()


def _fuzz_resource(resource: str):
    collection, items, roles = TARGETS[resource]

    @FUZZ_API
    @given(body=bodies(resource), where=st.sampled_from([None] * len(items) + items),
           method=st.sampled_from(["PATCH", "PUT"]), role=st.sampled_from(roles))
    def test(client_for, body, where, method, role):
        if where is None:
            send(client_for(role), "POST", collection, body)
        else:
            send(client_for(role), method, item_path(collection, where), body)

    test.__doc__ = f"Create or change {resource} with fuzzed bodies."
    return test


test_overlay_rules = _fuzz_resource("overlay_rules")
test_networks = _fuzz_resource("networks")
test_vnics = _fuzz_resource("vnics")
test_nodes = _fuzz_resource("nodes")
test_vdcs = _fuzz_resource("vdcs")


@FUZZ_API
@given(body=bodies("admin_overlay"))
def test_admin_overlay(su, body):
    send(su, "PUT", "/api/v1/admin-overlay/", body)


@FUZZ_API
@given(body=bodies("firewall"), method=st.sampled_from(["PUT", "PATCH"]))
def test_firewall(su, body, method):
    send(su, method, "/api/v1/firewall/", body)


@FUZZ_API
@given(body=anything, target=st.sampled_from([
    ("/api/v1/overlay-rules/", None), ("/api/v1/networks/", None), ("/api/v1/vnics/", None),
    ("/api/v1/nodes/", None), ("/api/v1/vdcs/", None), ("/api/v1/admin-overlay/", None),
    ("/api/v1/firewall/", None), ("/api/v1/state/import/?dry_run=true", None),
    ("/api/v1/networks/", "acme-web"), ("/api/v1/vnics/", "#0")]),
    method=st.sampled_from(["POST", "PUT", "PATCH"]))
def test_any_json_anywhere(su, body, target, method):
    """Not an object, or an object of anything: refused in the error shape, never a 500."""
    collection, where = target
    send(su, method, collection if where is None else item_path(collection, where), body)
