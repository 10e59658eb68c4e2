"""One error shape for every failure, with the model layer's words."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient


def test_field_errors_are_keyed_by_field_with_the_models_words(su):
    response = su.post("/api/v1/networks/", {
        "name": "bad", "overlay_rule": "customers", "vxlan_id": 900, "vlan_id": 1,
        "network": "192.168.70.0/24", "gateway": "192.168.71.1"}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["errors"] == {"gateway": ["Gateway 192.168.71.1 is outside 192.168.70.0/24."]}
    assert body["detail"] == "gateway: Gateway 192.168.71.1 is outside 192.168.70.0/24."


def test_type_errors_come_from_the_serializer_on_the_field(su):
    response = su.post("/api/v1/networks/", {"name": "x", "overlay_rule": "customers",
                                             "vxlan_id": "many", "network": "10.9.9.0/24"},
                       format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"vxlan_id": ["A valid integer is required."]}


def test_model_range_checks_keep_the_models_message(su):
    response = su.patch("/api/v1/networks/lab-net/", {"vxlan_id": 16777216}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"]["vxlan_id"] == [
        "Ensure this value is less than or equal to 16777215."]


def test_uniqueness_is_checked_by_the_model(su):
    response = su.post("/api/v1/overlay-rules/", {"name": "customers"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"]["name"] == [
        "Overlay rule with this Name already exists."]


def test_unknown_related_names_are_field_errors(su):
    response = su.post("/api/v1/vnics/", {"vm_name": "x", "node": "cn77.nowhere",
                                          "network": "acme-web", "mac": "02:00:00:00:00:77",
                                          "ip": "192.168.10.77"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"node": ["No node named cn77.nowhere."]}


def test_nested_errors_are_flattened_to_paths(su):
    response = su.post("/api/v1/overlay-rules/", {"name": "nested",
                                                  "nodes": ["cn01.prague", 5, {"x": 1}]},
                       format="json")

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"nodes[1]", "nodes[2]"}  # 5 is not a string


def test_malformed_json_is_a_400_with_a_detail(su):
    response = su.generic("POST", "/api/v1/networks/", "{not json",
                          content_type="application/json")

    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


def test_objects_out_of_scope_are_404_with_a_reason(bob):
    response = bob.get("/api/v1/networks/acme-web/")

    assert response.status_code == 404
    assert response.json() == {"detail": "No virtual network named acme-web."}


def test_forbidden_actions_are_403_with_a_reason(alice):
    response = alice.delete("/api/v1/vdcs/acme/")

    assert response.status_code == 403
    assert response.json() == {"detail": "Only superusers create, change or delete vDCs."}


def test_plain_users_are_told_why_they_are_refused(client_for):
    response = client_for("plain").get("/api/v1/networks/")

    assert response.status_code == 403
    assert "neither a superuser nor an admin of any vDC" in response.json()["detail"]


def test_anonymous_requests_get_401_with_a_token_challenge(demo_cluster):
    response = APIClient().get("/api/v1/networks/")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_a_wrong_token_is_401(demo_cluster):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token nonsense")

    response = client.get("/api/v1/networks/")

    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


def test_deleting_an_object_in_use_is_a_409_naming_the_users(su):
    response = su.delete("/api/v1/overlay-rules/lab/")

    assert response.status_code == 409
    assert "lab-net" in response.json()["detail"]


def test_unknown_api_paths_answer_json(su):
    response = su.get("/api/v1/nothing-here/")

    assert response.status_code == 404
    assert "no API endpoint" in response.json()["detail"]


def test_method_not_allowed_is_in_the_error_shape(su):
    response = su.delete("/api/v1/firewall/")

    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "DELETE" not allowed.'}


@pytest.mark.parametrize("query", ["vxlan_id=abc", "vxlan_id=99999999999999999999",
                                   "vlan_id=-1"])
def test_invalid_filter_values_are_400_naming_the_parameter(su, query):
    response = su.get(f"/api/v1/networks/?{query}")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [query.split("=")[0]]


@pytest.mark.parametrize("path", ["/api/v1/vnics/99999999999999999999999/",
                                  "/api/v1/ipsec-keys/0/", "/api/v1/networks/%00/",
                                  "/api/v1/nodes/cn01.prague%00/"])
def test_impossible_lookups_are_404(su, path):
    response = su.get(path)

    assert response.status_code == 404
    assert response.json()["detail"]


def test_nul_characters_in_text_are_refused(su):
    response = su.post("/api/v1/overlay-rules/", {"name": "nul\x00rule"}, format="json")

    assert response.status_code == 400
    assert "name" in response.json()["errors"]


@pytest.mark.parametrize("path,method,body,field", [
    ("/api/v1/state/import/?dry_run=true", "post",
     {"nodes": [{"hostname": "cn\x0001", "pdc": "x"}]}, "nodes[0].hostname"),
    ("/api/v1/admin-overlay/", "put", {"addresses": {"cn\x00": {"ip": "10.44.44.99"}}},
     "addresses.cn\\x00"),
    ("/api/v1/overlay-rules/", "post", {"name": "ok", "description": "bad \ud800"},
     "description"),
])
def test_text_no_database_can_store_is_refused_before_the_models(su, path, method, body,
                                                                  field):
    response = su.generic(method.upper(), path, json.dumps(body),  # \u-escaped, as sent
                          content_type="application/json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_unknown_api_paths_answer_json_for_writes_with_a_session_cookie_too(db):
    client = APIClient(enforce_csrf_checks=True)
    client.cookies["sessionid"] = "stale"

    response = client.put("/api/v1/vnics/not-a-number/", {}, format="json")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
