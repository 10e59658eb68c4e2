"""What each resource shows and accepts, by role: natural-name lookups, filters, pagination,
vDC usage, admin overlay, firewall, keys, MTU, state file."""

from __future__ import annotations

import pytest

# --- nodes ---------------------------------------------------------------------------


def test_nodes_are_looked_up_by_host_name_and_filtered_by_pdc(su):
    response = su.get("/api/v1/nodes/", {"pdc": "brno"})

    assert [n["hostname"] for n in response.json()["results"]] == ["cn21.brno"]
    detail = su.get("/api/v1/nodes/cn21.brno/").json()
    assert detail["external_ip"] == "198.51.100.21"
    assert {"ssh_host", "ssh_port", "ssh_user", "ssh_host_key", "sync_status"} <= set(detail)


def test_superuser_creates_a_node_with_the_models_validation(su):
    bad = su.post("/api/v1/nodes/", {"hostname": "cn05.prague", "pdc": "prague",
                                     "admin_netmask": "255.0.255.0"}, format="json")
    good = su.post("/api/v1/nodes/", {"hostname": "cn05.prague", "pdc": "prague",
                                      "admin_ip": "10.0.0.15"}, format="json")

    assert bad.status_code == 400
    assert bad.json()["errors"] == {"admin_netmask": ["255.0.255.0 is not a contiguous netmask."]}
    assert good.status_code == 201
    assert good.json()["sync_status"] == "unknown"


def test_node_state_fields_are_read_only(su):
    response = su.patch("/api/v1/nodes/cn01.prague/",
                        {"sync_status": "in_sync", "loaded_overlay_rules": {"x": 1}},
                        format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["sync_status"], body["loaded_overlay_rules"]) == ("unknown", {})


# --- rules ---------------------------------------------------------------------------


def test_vdc_admins_see_rule_names_and_ports_only(alice):
    response = alice.get("/api/v1/overlay-rules/customers/")

    assert response.status_code == 200
    assert set(response.json()) == {"name", "port", "mtu", "description", "created_at",
                                    "updated_at"}
    assert response.json()["port"] == 4790


def test_superusers_see_the_whole_rule(su):
    rule = su.get("/api/v1/overlay-rules/lab/").json()

    assert rule["nodes"] == ["cn01.prague", "cn02.prague", "cn09.prague"]
    assert "all_nodes" not in rule and "node_names" not in rule
    assert rule["config_line"].startswith('overlay_rule_lab="-e vxlan')


def test_a_new_rule_takes_the_next_free_port_and_the_conventional_arp_file(su):
    highest = max(r["port"] for r in su.get("/api/v1/overlay-rules/").json()["results"])

    response = su.post("/api/v1/overlay-rules/", {"name": "backup"}, format="json")

    assert response.status_code == 201
    assert response.json()["port"] == highest + 1
    assert response.json()["arp_file"] == "/opt/custom/networking/backup_overlay.json"


def test_rules_filter_by_node(su):
    response = su.get("/api/v1/overlay-rules/", {"node": "cn09.prague"})
    partial = su.get("/api/v1/overlay-rules/", {"node": "cn09"})

    assert [r["name"] for r in response.json()["results"]] == ["lab"]
    assert partial.json()["count"] == 0


def test_rules_filter_on_all_nodes(su):
    response = su.get("/api/v1/overlay-rules/", {"nodes": "all"})

    assert [r["name"] for r in response.json()["results"]] == ["adminoverlay", "customers"]
    assert {r["nodes"] for r in response.json()["results"]} == {"all"}
    assert su.get("/api/v1/overlay-rules/", {"nodes": "some"}).status_code == 400


def test_a_rule_node_list_is_all_or_host_names(su):
    listed = su.patch("/api/v1/overlay-rules/customers/",
                      {"nodes": ["cn02.prague", "cn01.prague"]}, format="json")
    everywhere = su.patch("/api/v1/overlay-rules/lab/", {"nodes": "all"}, format="json")
    wrong = su.patch("/api/v1/overlay-rules/lab/", {"nodes": "some"}, format="json")
    empty = su.patch("/api/v1/overlay-rules/lab/", {"nodes": []}, format="json")

    assert listed.json()["nodes"] == ["cn01.prague", "cn02.prague"]
    assert everywhere.json()["nodes"] == "all"
    assert wrong.json()["errors"] == {"nodes": ['Nodes must be "all" or a list of host names.']}
    assert empty.json()["errors"] == {
        "nodes": ["List at least one node, or carry the rule on all nodes."]}


# --- networks and vNICs ---------------------------------------------------------------


def test_each_vdc_admin_lists_only_their_networks(alice, bob, su):
    def names(client, **query):
        return {n["name"] for n in client.get("/api/v1/networks/", query).json()["results"]}

    assert names(alice) == {"acme-web", "acme-db"}
    assert names(bob) == {"globex-app"}
    assert names(su) == {"acme-web", "acme-db", "globex-app", "lab-net"}
    assert names(su, vdc="acme", vlan_id=11) == {"acme-db"}
    assert names(alice, vdc="globex") == set()


def test_lists_are_paginated(su):
    response = su.get("/api/v1/networks/", {"limit": 1, "offset": 1})

    body = response.json()
    assert body["count"] == 4
    assert [n["name"] for n in body["results"]] == ["acme-web"]
    assert "offset=2" in body["next"]


def test_vdc_admins_see_vnics_with_the_node_name_and_sync_status_only(alice):
    response = alice.get("/api/v1/vnics/", {"network": "acme-web"})

    vnics = response.json()["results"]
    assert [v["vm_name"] for v in vnics] == ["web01", "web02"]
    assert vnics[1]["node"] == "cn21.brno"
    assert vnics[1]["node_sync_status"] == "unknown"
    assert "198.51.100.21" not in response.content.decode()


def test_vdc_admin_registers_and_removes_a_vnic_on_their_network(alice):
    created = alice.post("/api/v1/vnics/", {
        "vm_name": "web03", "node": "cn02.prague", "network": "acme-web",
        "mac": "02:08:20:AA:00:09", "ip": "192.168.10.13"}, format="json")

    assert created.status_code == 201
    assert created.json()["mac"] == "02:08:20:aa:00:09"  # normalised by the model
    assert created.json()["nic_tag"] == "customers/100"
    assert alice.delete(f"/api/v1/vnics/{created.json()['id']}/").status_code == 204


def test_vdc_admin_cannot_move_a_vnic_to_another_vdcs_network(alice):
    web01 = alice.get("/api/v1/vnics/", {"vm_name": "web01"}).json()["results"][0]

    response = alice.patch(f"/api/v1/vnics/{web01['id']}/", {"network": "globex-app"},
                           format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"network": ["No network named globex-app."]}


def test_vnic_address_must_be_inside_the_network(su):
    response = su.post("/api/v1/vnics/", {"vm_name": "x", "node": "cn01.prague",
                                          "network": "acme-web", "mac": "02:08:20:aa:00:99",
                                          "ip": "10.1.1.1"}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"ip": ["Address 10.1.1.1 is outside 192.168.10.0/24."]}


# --- vDCs ----------------------------------------------------------------------------


def test_vdc_admin_reads_their_ranges_with_usage(alice):
    response = alice.get("/api/v1/vdcs/")

    assert [v["name"] for v in response.json()["results"]] == ["acme"]
    acme = response.json()["results"][0]
    assert (acme["vxlan_allowed"], acme["vlan_allowed"], acme["network_limit"]) == (
        "100-199", "10-20", 10)
    assert acme["next_free_vxlan"] == 101
    assert acme["usage"] == {
        "network_count": 2,
        "network_limit": 10,
        "networks_left": 8,
        "vxlan_allowed_count": 100,
        "vxlan_used": [100],
        "vxlan_free_count": 99,
        "next_free_vxlan": 101,
        "vlan_allowed_count": 11,
        "vlans_by_vxlan": [{"overlay_rule": "customers", "vxlan_id": 100, "vlan_used": [10, 11],
                            "vlan_free_count": 9, "next_free_vlan": 12}],
    }


def test_superuser_creates_a_vdc_with_admins_by_user_name(su, users):
    response = su.post("/api/v1/vdcs/", {"name": "initech", "admins": ["carol"],
                                         "vxlan_allowed": "700-799", "vlan_allowed": "0-10"},
                       format="json")

    assert response.status_code == 201
    assert response.json()["admins"] == ["carol"]
    assert response.json()["usage"]["next_free_vxlan"] == 700


def test_unknown_admin_names_are_refused(su):
    response = su.post("/api/v1/vdcs/", {"name": "initech", "admins": ["nobody"]}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"admins": ["No user named nobody."]}


def test_a_new_vdc_admin_can_use_the_api_at_once(su, client_for):
    su.patch("/api/v1/vdcs/globex/", {"admins": ["bob", "carol"]}, format="json")

    response = client_for("plain").get("/api/v1/networks/")

    assert response.status_code == 200
    assert [n["name"] for n in response.json()["results"]] == ["globex-app"]


# --- admin overlay, firewall, keys ------------------------------------------------------


def test_admin_overlay_shows_every_nodes_address(su):
    overlay = su.get("/api/v1/admin-overlay/").json()

    assert (overlay["overlay_rule"], overlay["subnet"], overlay["vxlan_id"], overlay["mtu"]) == (
        "adminoverlay", "10.44.44.0/24", 2, 1300)
    assert overlay["addresses"]["cn21.brno"] == {"ip": "10.44.44.21",
                                                 "mac": "02:e5:dc:d5:d4:21"}


def test_admin_overlay_update_assigns_a_wanted_address(su):
    response = su.put("/api/v1/admin-overlay/", {
        "addresses": {"cn01.prague": {"ip": "10.44.44.101"}}}, format="json")

    assert response.status_code == 200
    assert response.json()["addresses"]["cn01.prague"]["ip"] == "10.44.44.101"
    assert response.json()["vxlan_id"] == 2  # omitted fields keep their value


def test_admin_overlay_errors_name_the_request_field(su):
    response = su.put("/api/v1/admin-overlay/", {"subnet": "10.44.44.0/33"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["subnet"]


def test_admin_overlay_address_errors_are_under_the_address(su):
    response = su.put("/api/v1/admin-overlay/", {
        "addresses": {"cn01.prague": {"ip": "10.99.0.1"}, "cn99.nowhere": {}}}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"]["addresses.cn99.nowhere"] == ["No node named cn99.nowhere."]
    assert list(response.json()["errors"]) == ["addresses.cn99.nowhere",
                                               "addresses.cn01.prague.ip"]


def test_admin_overlay_addresses_can_be_swapped(su):
    response = su.put("/api/v1/admin-overlay/", {"addresses": {
        "cn01.prague": {"ip": "10.44.44.12"}, "cn02.prague": {"ip": "10.44.44.11"}}},
        format="json")

    assert response.status_code == 200
    addresses = response.json()["addresses"]
    assert (addresses["cn01.prague"]["ip"], addresses["cn02.prague"]["ip"]) == (
        "10.44.44.12", "10.44.44.11")


def test_firewall_update_and_validation(su):
    ok = su.patch("/api/v1/firewall/", {"allowed_sources": ["198.51.100.7", "192.0.2.0/28"]},
                  format="json")
    bad = su.patch("/api/v1/firewall/", {"allowed_sources": ["not-an-address"]}, format="json")

    assert ok.status_code == 200
    assert ok.json()["enabled"] is True
    assert ok.json()["allowed_sources"] == ["198.51.100.7/32", "192.0.2.0/28"]
    assert bad.status_code == 400
    assert list(bad.json()["errors"]) == ["allowed_sources"]


def test_firewall_put_needs_both_fields(su):
    response = su.put("/api/v1/firewall/", {"enabled": False}, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"allowed_sources": ["This field is required."]}


def test_keys_show_pairs_and_dates_never_secrets(su):
    from overlays.models import IpsecKey

    response = su.get("/api/v1/ipsec-keys/", {"node": "cn21.brno"})

    keys = response.json()["results"]
    assert len(keys) == 4  # cn21.brno with each node in prague
    assert set(keys[0]) == {"id", "node_a", "pdc_a", "node_b", "pdc_b", "created_at",
                            "rotated_at", "age_days"}
    for key in IpsecKey.objects.all():
        assert key.secret not in response.content.decode()
        assert key.secret_encrypted not in response.content.decode()


def test_rotating_a_key_changes_only_that_pairs_secret(su):
    from overlays.models import IpsecKey

    before = {k.pk: k.secret for k in IpsecKey.objects.all()}
    target = min(before)

    response = su.post(f"/api/v1/ipsec-keys/{target}/rotate/")

    after = {k.pk: k.secret for k in IpsecKey.objects.all()}
    assert response.json()["rotated"] == 1 and response.json()["deferred"] == 0
    assert [p["key"] for p in response.json()["pairs"]] == [target]
    assert [pk for pk in before if before[pk] != after[pk]] == [target]
    assert su.get(f"/api/v1/ipsec-keys/{target}/").json()["rotated_at"] is not None


def test_rotating_all_keys(su):
    from overlays.models import IpsecKey

    response = su.post("/api/v1/ipsec-keys/rotate/")

    assert response.json()["rotated"] == IpsecKey.objects.count()
    assert response.json()["deferred"] == 0


def test_reconcile_creates_keys_for_a_new_remote_node(su):
    su.post("/api/v1/nodes/", {"hostname": "cn31.ostrava", "pdc": "ostrava",
                               "admin_ip": "10.3.0.31"}, format="json")

    response = su.post("/api/v1/ipsec-keys/reconcile/")

    assert response.status_code == 200
    assert response.json()["created"] in (0, 5)  # 0 when node creation already added them
    assert su.get("/api/v1/ipsec-keys/", {"node": "cn31.ostrava"}).json()["count"] == 5


# --- MTU, state file, me ------------------------------------------------------------


def test_mtu_calculator(alice):
    response = alice.get("/api/v1/mtu/", {"mtu": 1400})

    body = response.json()
    assert (body["plain"], body["plain_vlan"], body["ipsec_vlan"]) == (1450, 1446, 1388)
    assert body["fits_everywhere"] is False
    assert len(body["warnings"]) == 2


@pytest.mark.parametrize("query,field", [({}, "mtu"), ({"mtu": 100}, "mtu"),
                                         ({"mtu": 1400, "underlay_mtu": "x"}, "underlay_mtu")])
def test_mtu_calculator_rejects_bad_input_on_the_field(alice, query, field):
    response = alice.get("/api/v1/mtu/", query)

    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_export_is_the_state_file(su):
    from overlays.statefile import export_state

    response = su.get("/api/v1/state/")

    assert response.json() == export_state()


def test_import_dry_run_lists_changes_and_applies_nothing(su, demo_state):
    demo_state["networks"][0]["mtu"] = 1300

    response = su.post("/api/v1/state/import/?dry_run=true", demo_state, format="json")

    assert response.status_code == 200
    assert response.json() == {"dry_run": True, "changes": ["update network acme-web: mtu"],
                               "warnings": {}}
    assert su.get("/api/v1/networks/acme-web/").json()["mtu"] == 1400


def test_import_applies_a_changed_file(su, demo_state):
    demo_state["networks"][0]["mtu"] = 1300

    response = su.post("/api/v1/state/import/", demo_state, format="json")

    assert response.json()["dry_run"] is False
    assert su.get("/api/v1/networks/acme-web/").json()["mtu"] == 1300


def test_import_problems_are_400s_keyed_by_json_path(su, demo_state):
    demo_state["networks"][0]["vxlan_id"] = 300
    demo_state["nodes"][1]["color"] = "red"

    response = su.post("/api/v1/state/import/?dry_run=true", demo_state, format="json")

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "nodes[1].color" in errors
    assert errors["networks[0].vxlan_id"] == [
        "VXLAN 300 is outside vDC acme's allowed VXLAN ids (100-199)."]


def test_me_tells_the_role(alice, su):
    assert alice.get("/api/v1/me/").json() == {"username": "alice", "is_superuser": False,
                                                "is_auditor": False, "vdcs": ["acme"]}
    assert su.get("/api/v1/me/").json()["is_superuser"] is True
