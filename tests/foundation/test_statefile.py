"""The cluster state file: import all-or-nothing, export, round trips (DESIGN.md section 8)."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from nodes.models import Node
from overlays import services
from overlays.models import (
    AdminOverlay,
    AdminOverlayAddress,
    FirewallSettings,
    IpsecKey,
    OverlayRule,
    VirtualNetwork,
    Vnic,
)
from overlays.statefile import StateFileError, export_state, import_state
from vdc.models import Vdc

pytestmark = pytest.mark.django_db

MODELS = (Node, OverlayRule, AdminOverlay, AdminOverlayAddress, Vdc, VirtualNetwork, Vnic,
          IpsecKey)


def counts() -> dict[str, int]:
    users = get_user_model().objects.count()
    return {m.__name__: m.objects.count() for m in MODELS} | {"users": users}


def problems_of(doc) -> dict[str, list[str]]:
    with pytest.raises(StateFileError) as info:
        import_state(doc)
    found: dict[str, list[str]] = {}
    for path, message in info.value.problems:
        found.setdefault(path, []).append(message)
    return found


def overlay(*args: str, stdin: str | None = None) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    if stdin is not None:
        import sys

        saved, sys.stdin = sys.stdin, io.StringIO(stdin)
        try:
            call_command("overlay", *args, stdout=out, stderr=err)
        finally:
            sys.stdin = saved
    else:
        call_command("overlay", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def by(items: list[dict], key: str) -> dict[str, dict]:
    return {item[key]: item for item in items}


@pytest.fixture
def state_file(tmp_path):
    def write(doc: object) -> str:
        path = tmp_path / "cluster.json"
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return str(path)

    return write


# --- round trip and idempotency -----------------------------------------------------------

def test_demo_import_creates_the_whole_cluster(demo_cluster):
    assert counts() == {"Node": 5, "OverlayRule": 3, "AdminOverlay": 1,
                        "AdminOverlayAddress": 5, "Vdc": 2, "VirtualNetwork": 4, "Vnic": 7,
                        "IpsecKey": 4, "users": 2}


def test_export_gives_back_the_demo_facts_with_defaults_filled(demo_cluster, demo_state):
    exported = export_state()
    assert set(exported) == set(demo_state)
    nodes = by(exported["nodes"], "hostname")
    for node in demo_state["nodes"]:
        assert nodes[node["hostname"]] == {**node, "admin_netmask": "255.255.255.0",
                                           "nic_tags": sorted(node["nic_tags"])}
    rules = by(exported["overlay_rules"], "name")
    assert set(rules) == {rule["name"] for rule in demo_state["overlay_rules"]}
    for rule in demo_state["overlay_rules"]:
        defaults = {"listen_ip": "0.0.0.0", "mtu": 1400, "nodes": "all",
                    "arp_file": f"/opt/custom/networking/{rule['name']}_overlay.json"}
        expected = {**defaults, **rule}
        if expected["nodes"] != "all":
            expected["nodes"] = sorted(expected["nodes"])
        assert rules[rule["name"]] == expected
    assert exported["admin_overlay"] == demo_state["admin_overlay"]
    assert exported["firewall"] == demo_state["firewall"]
    vdcs = by(exported["vdcs"], "name")
    for vdc in demo_state["vdcs"]:
        assert vdcs[vdc["name"]] == {**vdc, "vxlan_restrict": True, "vlan_restrict": True}
    networks = by(exported["networks"], "name")
    for network in demo_state["networks"]:
        assert networks[network["name"]] == network
    vnics = by(exported["vnics"], "mac")
    assert len(vnics) == len(demo_state["vnics"])
    for vnic in demo_state["vnics"]:
        assert vnics[vnic["mac"]] == vnic


def test_export_contains_no_key_material(demo_cluster):
    text = json.dumps(export_state())
    for key in IpsecKey.objects.all():
        assert key.secret not in text
        assert key.secret_encrypted not in text


def test_importing_the_export_changes_nothing(demo_cluster):
    exported = export_state()
    report = import_state(json.loads(json.dumps(exported)))
    assert report.changes == []
    assert export_state() == exported


def test_importing_the_same_file_twice_changes_nothing_the_second_time(demo_cluster, demo_state):
    before = export_state()
    secrets = {k.pk: k.secret for k in IpsecKey.objects.all()}
    assert import_state(demo_state).changes == []
    assert export_state() == before
    assert {k.pk: k.secret for k in IpsecKey.objects.all()} == secrets


def test_round_trip_through_the_commands_says_nothing_to_change(demo_cluster, state_file):
    exported, _ = overlay("export")
    out, _ = overlay("import", state_file(exported))
    assert out.strip() == "Nothing to change."


def test_export_command_prints_the_state_as_json(demo_cluster):
    out, _ = overlay("export", "--indent", "0")
    assert json.loads(out) == export_state()


def test_export_of_an_empty_installation_is_a_valid_state_file(db):
    doc = export_state()
    assert doc == {"version": 2, "nodes": [], "overlay_rules": [],
                   "firewall": {"enabled": False, "allowed_sources": []},
                   "vdcs": [], "networks": [], "vnics": []}
    assert import_state(doc).changes == []


def test_import_of_a_changed_file_reports_only_the_changes(demo_cluster, demo_state):
    changed = copy.deepcopy(demo_state)
    changed["overlay_rules"][0]["mtu"] = 1450  # raised: networks keep 1400
    changed["vnics"][0]["ip"] = "192.168.10.21"
    report = import_state(changed)
    assert report.changes == ["update overlay rule customers: mtu",
                              "update vNIC 02:08:20:aa:00:01 of web01: ip"]


def test_import_report_lists_what_it_created(db, demo_state):
    changes = import_state(demo_state).changes
    assert "create node cn01.prague" in changes
    assert "create overlay rule customers" in changes
    assert "create network acme-web" in changes
    assert "create user alice (no usable password)" in changes
    assert "IPSec keys: 4 pair(s) created, 0 removed" in changes


# --- all or nothing -----------------------------------------------------------------------

def test_one_bad_vnic_at_the_end_rejects_the_whole_file_and_writes_nothing(db, demo_state):
    demo_state["vnics"][3]["ip"] = "10.99.0.11"
    found = problems_of(demo_state)
    assert list(found) == ["vnics[3].ip"]
    assert "10.99.0.11" in found["vnics[3].ip"][0]
    assert set(counts().values()) == {0}
    assert not FirewallSettings.objects.filter(enabled=True).exists()


def test_a_rejected_file_leaves_an_existing_installation_untouched(demo_cluster, demo_state):
    before = export_state()
    demo_state["overlay_rules"][0]["mtu"] = 1450
    demo_state["vnics"][-1]["mac"] = demo_state["vnics"][-2]["mac"]
    found = problems_of(demo_state)
    assert list(found) == ["vnics[6].mac"]
    assert "appears twice" in found["vnics[6].mac"][0]
    assert export_state() == before


def test_every_problem_is_listed_with_its_json_path(db, demo_state):
    demo_state["nodes"].append({"hostname": "cn05.prague", "pdc": "prague",
                                "admin_ip": "10.0.0.300"})
    demo_state["overlay_rules"] += [{"name": "jumbo", "mtu": 100}, {"name": "lab2"}]
    demo_state["admin_overlay"]["addresses"]["cn03.prague"]["mac"] = "00:00:00:00:00:00"
    demo_state["firewall"]["allowed_sources"] = ["banana"]
    demo_state["vdcs"].append({"name": "initech", "vxlan_allowed": "100-199,150"})
    demo_state["networks"][2]["gateway"] = "172.16.21.1"
    demo_state["vnics"][5]["mac"] = "01:00:5e:00:00:01"
    demo_state["vnics"][6]["ip"] = "10.77.0.0"
    found = problems_of(demo_state)
    expected = {
        "nodes[5].admin_ip": "IPv4",
        "overlay_rules[3].mtu": "576",
        "overlay_rules[4].name": "digit",
        "admin_overlay.addresses.cn03.prague.mac": "all-zero",
        "firewall.allowed_sources": "banana",
        "vdcs[2].vxlan_allowed": "overlaps",
        "networks[2].gateway": "172.16.21.1",
        "vnics[5].mac": "multicast",
        "vnics[6].ip": "network address",
    }
    for path, words in expected.items():
        assert path in found, f"{path} missing from {sorted(found)}"
        assert words in " ".join(found[path])
    # Items that refer to a rejected one say so rather than failing on their own.
    assert sorted(set(found) - set(expected)) == ["vnics[3].network", "vnics[4].network"]
    assert found["vnics[3].network"] == [
        "network globex-app is not imported because of the problems at networks[2]."]
    assert set(counts().values()) == {0}


def test_unknown_sections_and_keys_are_reported(db, demo_state):
    demo_state["routers"] = []
    demo_state["nodes"][0]["colour"] = "blue"
    demo_state["nodes"][0]["ssh_password"] = "hunter2"
    demo_state["overlay_rules"][0]["ttl"] = 5
    demo_state["admin_overlay"]["addresses"]["cn01.prague"]["ip6"] = "fd00::1"
    found = problems_of(demo_state)
    assert "unknown section" in found["routers"][0]
    assert "unknown key" in found["nodes[0].colour"][0]
    assert "unknown key" in found["nodes[0].ssh_password"][0]
    assert "unknown key" in found["overlay_rules[0].ttl"][0]
    assert "unknown key" in found["admin_overlay.addresses.cn01.prague.ip6"][0]


def test_missing_required_keys_are_reported(db):
    found = problems_of({"version": 2, "nodes": [{"hostname": "cn01"}], "overlay_rules": [{}],
                         "networks": [{"name": "n"}], "vnics": [{"vm_name": "x"}]})
    assert "nodes[0].pdc" in found
    assert "overlay_rules[0].name" in found
    assert {"networks[0].overlay_rule", "networks[0].vxlan_id",
            "networks[0].network"} <= set(found)
    assert {"vnics[0].node", "vnics[0].network", "vnics[0].mac", "vnics[0].ip"} <= set(found)


@pytest.mark.parametrize(("doc", "path", "words"), [
    ([], "$", "JSON object"),
    ({"nodes": {}}, "nodes", "list"),
    ({"nodes": ["cn01"]}, "nodes[0]", "object"),
    ({"firewall": {"enabled": "yes"}}, "firewall.enabled", "valid boolean"),
    ({"admin_overlay": []}, "admin_overlay", "object"),
    ({"vdcs": [{"name": "a", "admins": "alice"}]}, "vdcs[0].admins", "list"),
    ({"overlay_rules": [{"name": "a", "nodes": "some"}]}, "overlay_rules[0].nodes", "all"),
])
def test_wrong_json_types_are_reported_with_their_path(db, doc, path, words):
    found = problems_of(doc)
    assert words in " ".join(found[path])


@pytest.mark.parametrize(("section", "index", "key", "value"), [
    ("nodes", 0, "hostname", ["cn01"]),
    ("nodes", 0, "pdc", None),
    ("nodes", 0, "nic_tags", "admin"),
    ("nodes", 0, "uuid", "not-a-uuid"),
    ("overlay_rules", 0, "name", 42),
    ("overlay_rules", 0, "port", "x"),
    ("overlay_rules", 0, "port", 70000),
    ("overlay_rules", 0, "listen_ip", "everywhere"),
    ("overlay_rules", 0, "nodes", ["not a host"]),
    ("vdcs", 0, "network_limit", -1),
    ("vdcs", 0, "vxlan_allowed", ["100"]),
    ("vdcs", 0, "name", ""),
    ("vdcs", 0, "vxlan_restrict", "maybe"),
    ("networks", 0, "vxlan_id", "many"),
    ("networks", 0, "vxlan_id", 10**12),
    ("networks", 0, "vlan_id", 10**20),
    ("overlay_rules", 0, "port", 10**20),
    ("vnics", 0, "ip", 10**20),
    ("networks", 0, "vlan_id", 4096),
    ("networks", 0, "gateway", "banana"),
    ("networks", 0, "network", 42),
    ("networks", 0, "vdc", "nosuch"),
    ("networks", 0, "overlay_rule", "nosuch"),
    ("vnics", 0, "ip", "banana"),
    ("vnics", 0, "ip6", "10.0.0.1"),
    ("vnics", 0, "mac", 42),
    ("vnics", 0, "node", "cn99.prague"),
    ("vnics", 0, "network", "nosuch"),
    ("vnics", 0, "vm_uuid", "xyz"),
])
def test_a_bad_value_anywhere_is_reported_at_its_path_not_raised(db, demo_state, section, index,
                                                                  key, value):
    demo_state[section][index][key] = value
    found = problems_of(demo_state)
    assert f"{section}[{index}].{key}" in found, sorted(found)
    assert set(counts().values()) == {0}


@pytest.mark.parametrize(("key", "value"), [("subnet", "10.44.44.0/33"), ("vxlan_id", 0),
                                             ("vxlan_id", "two"), ("vlan_id", 5000),
                                             ("overlay_rule", "bad-name"),
                                             ("addresses", [])])
def test_bad_admin_overlay_values_are_reported_at_their_path(db, demo_state, key, value):
    demo_state["admin_overlay"][key] = value
    found = problems_of(demo_state)
    assert any(path.startswith(f"admin_overlay.{key}") for path in found), sorted(found)


def test_admin_overlay_address_for_an_unknown_node_is_reported(db, demo_state):
    demo_state["admin_overlay"]["addresses"]["cn99.prague"] = {"ip": "10.44.44.99"}
    found = problems_of(demo_state)
    assert found["admin_overlay.addresses.cn99.prague"] == ["no node named cn99.prague."]


def test_duplicate_node_in_the_file_is_reported(db, demo_state):
    demo_state["nodes"].append(copy.deepcopy(demo_state["nodes"][0]))
    found = problems_of(demo_state)
    assert "twice" in found["nodes[5].hostname"][0]


# --- dry run and the command ------------------------------------------------------------------

def test_dry_run_prints_the_changes_and_writes_nothing(db, state_file):
    from overlays.management.commands.demo import DEMO_FILE

    out, _ = overlay("import", "--dry-run", str(DEMO_FILE))
    assert "would create node cn01.prague" in out
    assert "would create vNIC 02:08:20:aa:00:01 of web01" in out
    assert "Dry run:" in out
    assert set(counts().values()) == {0}
    assert not FirewallSettings.objects.filter(enabled=True).exists()


def test_dry_run_of_a_file_already_applied_says_nothing_to_change(demo_cluster, state_file):
    out, _ = overlay("import", "--dry-run", state_file(demo_cluster))
    assert out.strip() == "Nothing to change."


def test_dry_run_still_lists_every_problem(db, demo_state, state_file):
    demo_state["vnics"][3]["ip"] = "10.99.0.11"
    with pytest.raises(CommandError, match="1 problem"):
        overlay("import", "--dry-run", state_file(demo_state))


def test_import_command_lists_problems_on_stderr_and_exits_non_zero(db, demo_state, state_file):
    demo_state["vnics"][3]["ip"] = "10.99.0.11"
    demo_state["networks"][0]["vlan_id"] = 9999
    err = io.StringIO()
    with pytest.raises(CommandError, match="nothing was changed") as info:
        call_command("overlay", "import", state_file(demo_state), stdout=io.StringIO(),
                     stderr=err)
    assert info.value.returncode == 1
    assert "vnics[3].ip: " in err.getvalue()
    assert "networks[0].vlan_id: " in err.getvalue()
    assert Node.objects.count() == 0


def test_import_command_rejects_bad_json_with_the_position(db, state_file):
    with pytest.raises(CommandError, match=r"not valid JSON: .* line 1, column"):
        overlay("import", state_file('{"nodes": [}'))


def test_import_command_rejects_a_missing_file(db, tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        overlay("import", str(tmp_path / "missing.json"))


def test_import_command_reads_standard_input(db, demo_state):
    out, _ = overlay("import", "-", stdin=json.dumps(demo_state))
    assert "create node cn01.prague" in out
    assert Node.objects.count() == 5


def test_import_command_exits_non_zero_in_a_real_process(tmp_path):
    import subprocess
    import sys

    from django.conf import settings

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = subprocess.run([sys.executable, "manage.py", "overlay", "import", str(bad)],
                            cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "not valid JSON" in result.stderr
    assert "Traceback" not in result.stderr


# --- defaults ---------------------------------------------------------------------------------

MINIMAL = {
    "version": 2,
    "nodes": [{"hostname": "cn01.prague", "pdc": "prague"},
              {"hostname": "cn21.brno", "pdc": "brno"}],
    "overlay_rules": [{"name": "customers"}],
    "admin_overlay": {"subnet": "10.44.44.0/24"},
    "networks": [{"name": "n", "overlay_rule": "customers", "vxlan_id": 5,
                  "network": "10.5.0.0/24"}],
}


def test_omitted_optional_fields_take_their_defaults(db):
    import_state(copy.deepcopy(MINIMAL))
    customers = OverlayRule.objects.get(name="customers")
    assert (customers.port, customers.mtu, customers.all_nodes, customers.arp_file,
            customers.listen_ip) == (
        4790, 1400, True, "/opt/custom/networking/customers_overlay.json", "0.0.0.0")
    admin_rule = OverlayRule.objects.get(name="adminoverlay")
    assert (admin_rule.mtu, admin_rule.port, admin_rule.all_nodes) == (1300, 4791, True)
    overlay_obj = AdminOverlay.objects.get()
    assert (overlay_obj.overlay_rule, overlay_obj.vxlan_id, overlay_obj.vlan_id) == (
        admin_rule, 2, 2)
    assigned = dict(AdminOverlayAddress.objects.values_list("node__hostname", "ip"))
    assert assigned == {"cn01.prague": "10.44.44.11", "cn21.brno": "10.44.44.12"}
    network = VirtualNetwork.objects.get()
    assert (network.vlan_id, network.mtu, network.gateway, network.vdc) == (0, 1400, None, None)
    node = Node.objects.get(hostname="cn01.prague")
    assert (node.ssh_port, node.ssh_user, node.admin_netmask) == (22, "root", "255.255.255.0")
    assert IpsecKey.objects.count() == 1


def test_defaults_are_stable_on_a_second_import(db):
    import_state(copy.deepcopy(MINIMAL))
    before = export_state()
    assert import_state(copy.deepcopy(MINIMAL)).changes == []
    assert export_state() == before


def test_admin_overlay_without_a_subnet_gets_a_random_one(db):
    doc = copy.deepcopy(MINIMAL)
    del doc["admin_overlay"]["subnet"]
    import_state(doc)
    subnet = AdminOverlay.objects.get().subnet
    assert subnet.startswith("10.") and subnet.endswith(".0/24")
    assert import_state(doc).changes == []


def test_admin_overlay_rule_listed_among_the_rules_is_used_as_given(db):
    doc = copy.deepcopy(MINIMAL)
    doc["overlay_rules"].append({"name": "adminoverlay", "port": 4800, "mtu": 1280})
    import_state(doc)
    assert AdminOverlay.objects.get().overlay_rule.port == 4800
    assert OverlayRule.objects.get(name="adminoverlay").mtu == 1280


def test_rule_without_a_port_does_not_take_a_port_another_rule_of_the_file_asks_for(db):
    doc = {"overlay_rules": [{"name": "first"}, {"name": "second", "port": 4790}]}
    import_state(doc)
    ports = dict(OverlayRule.objects.values_list("name", "port"))
    assert ports == {"second": 4790, "first": 4791}


def test_import_creates_missing_users_without_a_usable_password(db, demo_state):
    import_state(demo_state)
    alice = get_user_model().objects.get(username="alice")
    assert not alice.has_usable_password()
    assert list(alice.administered_vdcs.values_list("name", flat=True)) == ["acme"]


def test_import_keeps_existing_users_and_their_passwords(db, demo_state, alice):
    import_state(demo_state)
    alice.refresh_from_db()
    assert alice.check_password("pw")


def test_vdc_admins_in_the_file_replace_the_current_admins(demo_cluster, demo_state):
    demo_state["vdcs"][0]["admins"] = ["carol"]
    report = import_state(demo_state)
    assert "set admins of vDC acme: carol" in report.changes
    assert list(Vdc.objects.get(name="acme").admins.values_list("username", flat=True)) == [
        "carol"]


# --- identity of items ------------------------------------------------------------------------

def test_vnic_mac_written_differently_is_the_same_vnic_on_the_next_import(db, demo_state):
    demo_state["vnics"][0]["mac"] = "02-08-20-AA-00-01"
    import_state(demo_state)
    assert Vnic.objects.filter(mac="02:08:20:aa:00:01").count() == 1
    assert import_state(demo_state).changes == []


def test_node_pdc_change_in_the_file_replaces_the_keys(demo_cluster, demo_state):
    demo_state["nodes"][4]["pdc"] = "prague"
    report = import_state(demo_state)
    assert "update node cn21.brno: pdc" in report.changes
    assert "IPSec keys: 0 pair(s) created, 4 removed" in report.changes
    assert not IpsecKey.objects.exists()


def test_admin_overlay_subnet_change_in_the_file_moves_the_addresses(demo_cluster, demo_state):
    macs = dict(AdminOverlayAddress.objects.values_list("node__hostname", "mac"))
    demo_state["admin_overlay"]["subnet"] = "10.55.0.0/24"
    for spec in demo_state["admin_overlay"]["addresses"].values():
        spec["ip"] = spec["ip"].replace("10.44.44.", "10.55.0.")
    import_state(demo_state)
    found = AdminOverlayAddress.objects.values_list("node__hostname", "ip", "mac")
    assert {h: (ip, mac) for h, ip, mac in found} == {
        h: (spec["ip"], macs[h]) for h, spec in demo_state["admin_overlay"]["addresses"].items()}
    assert import_state(demo_state).changes == []


def test_swapping_two_admin_overlay_addresses_in_the_file_is_applied(demo_cluster, demo_state):
    wanted = demo_state["admin_overlay"]["addresses"]
    wanted["cn01.prague"]["ip"], wanted["cn02.prague"]["ip"] = (wanted["cn02.prague"]["ip"],
                                                                wanted["cn01.prague"]["ip"])
    import_state(demo_state)
    found = dict(AdminOverlayAddress.objects.values_list("node__hostname", "ip"))
    assert (found["cn01.prague"], found["cn02.prague"]) == ("10.44.44.12", "10.44.44.11")


def test_ipsec_keys_are_created_by_the_import(demo_cluster):
    pairs = {(k.node_a.hostname, k.node_b.hostname)
             for k in IpsecKey.objects.select_related("node_a", "node_b")}
    assert pairs == {(f"cn0{i}.prague", "cn21.brno") for i in range(1, 5)}


def test_services_and_import_agree_on_a_demo_edit(demo_cluster, demo_state):
    rule = OverlayRule.objects.get(name="customers")
    rule.mtu = 1450  # raised: its networks keep 1400
    services.save(rule)
    report = import_state(demo_state)
    assert report.changes == ["update overlay rule customers: mtu"]


# --- null and empty values ---------------------------------------------------------------------

@pytest.mark.parametrize(("section", "key"), [("vdcs", "description"),
                                              ("networks", "description"),
                                              ("nodes", "default_route_nic")])
def test_null_for_an_optional_text_is_read_as_empty(db, demo_state, section, key):
    demo_state[section][0][key] = None
    import_state(demo_state)
    assert import_state(export_state()).changes == []


@pytest.mark.parametrize(("section", "key"), [("nodes", "uuid"), ("vnics", "vm_uuid"),
                                              ("nodes", "external_ip"), ("vnics", "ip6")])
def test_empty_string_for_an_optional_value_is_read_as_none(db, demo_state, section, key):
    demo_state[section][2][key] = ""
    import_state(demo_state)
    name = "hostname" if section == "nodes" else "vm_name"
    exported = by(export_state()[section], name)[demo_state[section][2][name]]
    assert key not in exported


def test_null_admin_overlay_subnet_keeps_the_current_one(demo_cluster, demo_state):
    demo_state["admin_overlay"]["subnet"] = None
    assert import_state(demo_state).changes == []
    assert AdminOverlay.objects.get().subnet == "10.44.44.0/24"


def test_null_admin_overlay_rule_means_the_default_rule(demo_cluster, demo_state):
    demo_state["admin_overlay"]["overlay_rule"] = None
    assert import_state(demo_state).changes == []


@pytest.mark.parametrize("rule", [5, "", "bad-name"])
def test_bad_admin_overlay_rule_name_is_reported_at_its_path(db, demo_state, rule):
    del demo_state["overlay_rules"][2]
    demo_state["admin_overlay"]["overlay_rule"] = rule
    assert "admin_overlay.overlay_rule" in problems_of(demo_state)


# --- restore into an empty installation -------------------------------------------------------

def test_export_restores_the_same_installation_into_an_empty_database(demo_cluster):
    exported = export_state()
    for model in (Vnic, VirtualNetwork, AdminOverlay, IpsecKey, Vdc, OverlayRule, Node,
                  FirewallSettings):
        model.objects.all().delete()
    get_user_model().objects.all().delete()
    import_state(copy.deepcopy(exported))
    assert export_state() == exported


def test_network_with_a_null_vdc_is_a_global_network(db, demo_state):
    demo_state["networks"][3]["vdc"] = None
    import_state(demo_state)
    assert VirtualNetwork.objects.get(name="lab-net").vdc is None


def test_a_nul_character_is_reported_with_its_path_and_nothing_is_written(db, demo_state):
    from nodes.models import Node
    from overlays.statefile import StateFileError, import_state

    demo_state["networks"][1]["description"] = "bad\x00text"
    with pytest.raises(StateFileError) as caught:
        import_state(demo_state)
    assert caught.value.problems == [
        ("networks[1].description", "Null characters are not allowed.")]
    assert not Node.objects.exists()


# --- versions ---------------------------------------------------------------------------------

V1_FILE = Path(__file__).parent / "fixtures" / "cluster-v1.json"


@pytest.fixture
def v1_state() -> dict:
    """The demo cluster as version 1 wrote it (no "version"; nested ssh, vm, rule, nodes)."""
    return json.loads(V1_FILE.read_text())


def test_export_writes_version_2(demo_cluster):
    assert export_state()["version"] == 2


def test_a_version_1_file_imports_as_the_same_cluster(db, v1_state, demo_state):
    assert "version" not in v1_state
    import_state(v1_state)
    assert import_state(demo_state).changes == []
    assert import_state(v1_state).changes == []


def test_a_version_1_file_with_its_version_named_imports_too(db, v1_state):
    import_state({**v1_state, "version": 1})
    assert Vnic.objects.get(mac="02:08:20:aa:00:01").vm_name == "web01"
    assert Node.objects.get(hostname="cn01.prague").ssh_port == 2201
    assert AdminOverlayAddress.objects.get(node__hostname="cn21.brno").ip == "10.44.44.21"


def test_version_1_problems_are_reported_at_the_paths_the_file_uses(db, v1_state):
    v1_state["nodes"][0]["ssh"]["port"] = "many"
    v1_state["nodes"][1]["ssh"]["password"] = "hunter2"
    v1_state["admin_overlay"]["nodes"]["cn03.prague"]["mac"] = "01:00:5e:00:00:01"
    del v1_state["vnics"][2]["vm"]
    found = problems_of(v1_state)
    assert set(found) == {"nodes[0].ssh.port", "nodes[1].ssh.password",
                          "admin_overlay.nodes.cn03.prague.mac", "vnics[2].vm",
                          # what refers to the node that nodes[0] failed to create
                          "admin_overlay.nodes.cn01.prague", "vnics[0].node", "vnics[5].node"}
    assert found["vnics[2].vm"] == ["is required."]
    assert found["admin_overlay.nodes.cn01.prague"] == [
        "node cn01.prague is not imported because of the problems at nodes[0]."]
    assert set(counts().values()) == {0}


def test_a_bad_admin_overlay_rule_in_a_version_1_file_is_reported_at_rule(db, v1_state):
    del v1_state["overlay_rules"][2]
    v1_state["admin_overlay"]["rule"] = "bad-name"
    assert "admin_overlay.rule" in problems_of(v1_state)


def test_version_2_names_in_a_version_1_file_say_which_version_to_declare(db, v1_state):
    v1_state["vnics"][0]["vm_name"] = "web01"
    v1_state["nodes"][0]["ssh_user"] = "root"
    found = problems_of(v1_state)
    assert set(found) == {"vnics[0].vm_name", "nodes[0].ssh_user"}
    assert '"version": 2' in found["vnics[0].vm_name"][0]
    assert "ssh.user" in found["nodes[0].ssh_user"][0]


@pytest.mark.parametrize("version", [3, 0, "2", True, None, [2]])
def test_an_unknown_version_is_one_clear_error(db, demo_state, version):
    demo_state["version"] = version
    demo_state["vnics"][0]["ip"] = "banana"  # not reported: the file cannot be read at all
    with pytest.raises(StateFileError) as info:
        import_state(demo_state)
    assert info.value.problems == [(
        "version", f"unknown state file version {version!r}; this installation reads "
                   "versions 1 and 2 and writes version 2.")]


def test_the_import_command_reads_a_version_1_file(db):
    out, _ = overlay("import", str(V1_FILE))
    assert "create vNIC 02:08:20:aa:00:01 of web01" in out
    assert Vnic.objects.count() == 7


def test_the_demo_file_is_version_2_and_matches_the_version_1_fixture(v1_state, demo_state):
    from overlays.statefile.versions import upgrade

    upgraded, problems = upgrade(v1_state)
    assert problems == []
    assert upgraded == demo_state
