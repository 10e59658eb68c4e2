"""Query parameters out of range or of the wrong type are 400s naming the parameter."""

from __future__ import annotations

import pytest

from core.api.pagination import MAX_OFFSET, MAX_PAGE_SIZE

pytestmark = pytest.mark.django_db

LISTS = ["/api/v1/networks/", "/api/v1/vnics/", "/api/v1/overlay-rules/", "/api/v1/vdcs/",
         "/api/v1/nodes/", "/api/v1/ipsec-keys/"]
PAGING = [
    ("limit", "99999999999999999999", "less than or equal to 1000"),
    ("limit", "1001", "less than or equal to 1000"),
    ("limit", "0", "greater than or equal to 1"),
    ("limit", "-1", "greater than or equal to 1"),
    ("limit", "ten", "A valid integer is required."),
    ("limit", "", "A valid integer is required."),
    ("offset", "99999999999999999999", "less than or equal to 2147483647"),
    ("offset", "-5", "greater than or equal to 0"),
    ("offset", "1.5", "A valid integer is required."),
]


def _refused(response, parameter: str, words: str) -> None:
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert list(errors) == [parameter]
    assert words in errors[parameter][0]


@pytest.mark.parametrize(("parameter", "value", "words"), PAGING)
@pytest.mark.parametrize("path", LISTS)
def test_paging_parameters_out_of_range_are_400s(su, path, parameter, value, words):
    _refused(su.get(path, {parameter: value}), parameter, words)


@pytest.mark.parametrize(("parameter", "value", "words"), PAGING[:1] + PAGING[6:7])
def test_a_vdc_admin_gets_the_same_400(alice, parameter, value, words):
    _refused(alice.get("/api/v1/networks/", {parameter: value}), parameter, words)


def test_paging_within_the_bounds_works(su):
    full = su.get("/api/v1/vnics/", {"limit": MAX_PAGE_SIZE}).json()
    past_the_end = su.get("/api/v1/vnics/", {"limit": 1, "offset": MAX_OFFSET}).json()

    assert len(full["results"]) == full["count"] == 7
    assert past_the_end["results"] == [] and past_the_end["next"] is None


@pytest.mark.parametrize(("path", "query", "parameter"), [
    ("/api/v1/overlay-rules/", "port=99999999999999999999", "port"),
    ("/api/v1/networks/", "vxlan_id=1e3", "vxlan_id"),
    ("/api/v1/networks/", "vlan_id=true", "vlan_id"),
    ("/api/v1/mtu/", "mtu=99999999999999999999", "mtu"),
    ("/api/v1/mtu/", "mtu=1400&underlay_mtu=-1", "underlay_mtu"),
    ("/api/v1/state/import/", "dry_run=maybe", "dry_run"),
])
def test_other_parameters_out_of_range_are_400s(su, path, query, parameter):
    method = su.post if "import" in path else su.get
    response = method(f"{path}?{query}", {} if "import" in path else None, format="json")

    assert response.status_code == 400, response.content
    assert parameter in response.json()["errors"]


def test_the_schema_documents_the_bounds_and_the_400(su):
    schema = su.get("/api/v1/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/networks/"]["get"]
    parameters = {p["name"]: p["schema"] for p in operation["parameters"]}

    assert parameters["limit"] == {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}
    assert parameters["offset"] == {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}
    assert "400" in operation["responses"]
    assert "413" in schema["paths"]["/api/v1/networks/"]["post"]["responses"]
