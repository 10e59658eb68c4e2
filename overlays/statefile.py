"""The cluster state file: the whole overlay configuration as one JSON document.

Import is all-or-nothing: every item is applied through the service layer inside
one transaction, every problem is collected with its JSON path, and on any error
(or a dry run) the transaction is rolled back. Only changed objects are saved, so
importing the same file twice changes nothing the second time. IPSec keys are
never part of the file; the server generates them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from nodes.models import Node
from overlays import services
from overlays.models import (
    ADMIN_OVERLAY_MTU,
    AdminOverlay,
    AdminOverlayAddress,
    FirewallSettings,
    OverlayRule,
    VirtualNetwork,
    Vnic,
)
from overlays.validators import normalize_mac, unstorable_text
from vdc.models import Vdc

SECTIONS = ("nodes", "overlay_rules", "admin_overlay", "firewall", "vdcs", "networks", "vnics")

# JSON key -> model field, per section; keys not listed here are rejected as unknown.
NODE_FIELDS = {"hostname": "hostname", "pdc": "pdc", "admin_ip": "admin_ip",
               "admin_netmask": "admin_netmask", "external_ip": "external_ip",
               "nic_tags": "nic_tags", "default_route_nic": "default_route_nic", "uuid": "uuid"}
SSH_FIELDS = {"host": "ssh_host", "port": "ssh_port", "user": "ssh_user",
              "host_key": "ssh_host_key"}
RULE_FIELDS = {"name": "name", "port": "port", "listen_ip": "listen_ip", "mtu": "mtu",
               "arp_file": "arp_file", "nodes": "node_names"}
VDC_FIELDS = {"name": "name", "description": "description", "vxlan_allowed": "vxlan_allowed",
              "vlan_allowed": "vlan_allowed", "vxlan_restrict": "vxlan_restrict",
              "vlan_restrict": "vlan_restrict", "network_limit": "network_limit"}
NETWORK_FIELDS = {"name": "name", "vxlan_id": "vxlan_id", "vlan_id": "vlan_id",
                  "network": "network", "gateway": "gateway", "mtu": "mtu",
                  "description": "description"}
VNIC_FIELDS = {"vm": "vm_name", "vm_uuid": "vm_uuid", "mac": "mac", "ip": "ip", "ip6": "ip6"}


class StateFileError(Exception):
    """The file was rejected; ``problems`` lists (JSON path, sentence) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s) in the state file")

    def lines(self) -> list[str]:
        return [f"{path}: {message}" for path, message in self.problems]


@dataclass
class ImportReport:
    changes: list[str] = field(default_factory=list)
    dry_run: bool = False


# --- export ----------------------------------------------------------------------

def _drop_empty(item: dict[str, Any], optional: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if not (k in optional and v in (None, "", []))}


def export_state() -> dict[str, Any]:
    """The whole configuration in the state-file schema (no secrets)."""
    nodes = [
        _drop_empty({
            "hostname": n.hostname, "pdc": n.pdc, "admin_ip": n.admin_ip,
            "admin_netmask": n.admin_netmask, "external_ip": n.external_ip,
            "nic_tags": list(n.nic_tags), "default_route_nic": n.default_route_nic,
            "uuid": str(n.uuid) if n.uuid else None,
            "ssh": _drop_empty({"host": n.ssh_host, "port": n.ssh_port, "user": n.ssh_user,
                                "host_key": n.ssh_host_key}, ("host", "host_key")),
        }, ("uuid", "external_ip", "admin_ip", "default_route_nic"))
        for n in Node.objects.order_by("hostname")
    ]
    rules = [
        {"name": r.name, "port": r.port, "listen_ip": r.listen_ip, "mtu": r.mtu,
         "arp_file": r.arp_file, "nodes": "all" if r.all_nodes else list(r.node_names)}
        for r in OverlayRule.objects.order_by("name")
    ]
    admin = AdminOverlay.objects.select_related("rule").first()
    admin_doc = None
    if admin:
        admin_doc = {
            "rule": admin.rule.name, "subnet": admin.subnet, "vxlan_id": admin.vxlan_id,
            "vlan_id": admin.vlan_id,
            "nodes": {a.node.hostname: {"ip": a.ip, "mac": a.mac}
                      for a in admin.addresses.select_related("node").order_by("node__hostname")},
        }
    fw = FirewallSettings.load()
    vdcs = [
        _drop_empty({
            "name": v.name, "description": v.description,
            "admins": sorted(v.admins.values_list("username", flat=True)),
            "vxlan_allowed": v.vxlan_allowed, "vlan_allowed": v.vlan_allowed,
            "vxlan_restrict": v.vxlan_restrict, "vlan_restrict": v.vlan_restrict,
            "network_limit": v.network_limit,
        }, ("description", "network_limit"))
        for v in Vdc.objects.prefetch_related("admins").order_by("name")
    ]
    networks = [
        _drop_empty({
            "name": n.name, "vdc": n.vdc.name if n.vdc else None, "overlay_rule": n.rule.name,
            "vxlan_id": n.vxlan_id, "vlan_id": n.vlan_id, "network": n.network,
            "gateway": n.gateway, "mtu": n.mtu, "description": n.description,
        }, ("vdc", "gateway", "description"))
        for n in VirtualNetwork.objects.select_related("vdc", "rule").order_by("name")
    ]
    vnics = [
        _drop_empty({
            "vm": v.vm_name, "vm_uuid": str(v.vm_uuid) if v.vm_uuid else None,
            "node": v.node.hostname, "network": v.network.name, "mac": v.mac, "ip": v.ip,
            "ip6": v.ip6,
        }, ("vm_uuid", "ip6"))
        for v in Vnic.objects.select_related("node", "network").order_by("network__name", "mac")
    ]
    doc: dict[str, Any] = {"nodes": nodes, "overlay_rules": rules}
    if admin_doc:
        doc["admin_overlay"] = admin_doc
    doc["firewall"] = {"enabled": fw.enabled, "allowed_sources": list(fw.allowed_sources)}
    doc.update({"vdcs": vdcs, "networks": networks, "vnics": vnics})
    return doc


# --- import ----------------------------------------------------------------------

def import_state(doc: Any, *, dry_run: bool = False) -> ImportReport:
    """Apply a state document completely or not at all; raise StateFileError listing problems."""
    importer = _Importer(dry_run=dry_run)
    with transaction.atomic():
        importer.run(doc)
        if importer.problems:
            raise StateFileError(importer.problems)
        if dry_run:
            transaction.set_rollback(True)
    return importer.report


class _Importer:
    def __init__(self, *, dry_run: bool) -> None:
        self.problems: list[tuple[str, str]] = []
        # Where the file declares each named item, to explain a reference to a failed one.
        self.declared: dict[tuple[str, str], str] = {}
        self.report = ImportReport(dry_run=dry_run)

    # helpers
    def problem(self, path: str, message: str) -> None:
        self.problems.append((path, message))

    def missing(self, kind: str, name: object) -> str:
        """The sentence for a reference to an item that does not exist."""
        where = self.declared.get((kind, str(name)))
        if where:
            return f"{kind} {name} is not imported because of the problems at {where}."
        return f"no {kind} named {name}."

    def expect(self, value: Any, kind: type, path: str, what: str) -> bool:
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.problem(path, f"must be {what}.")
            return False
        return True

    def names(self, item: dict, keys: tuple[str, ...], path: str,
              nullable: tuple[str, ...] = ()) -> bool:
        """The keys that identify items (names, host names) must be non-empty strings."""
        ok = True
        for key in keys:
            if key in nullable and item.get(key) is None:
                continue
            if key in item and (not isinstance(item[key], str) or not item[key].strip()):
                self.problem(f"{path}.{key}", "must be a non-empty string.")
                ok = False
        return ok

    def known_keys(self, item: dict, allowed: set[str], required: set[str], path: str) -> bool:
        for key in sorted(set(item) - allowed):
            expected = ", ".join(sorted(allowed))
            self.problem(f"{path}.{key}", f"unknown key; expected one of {expected}.")
        missing = sorted(required - set(item))
        for key in missing:
            self.problem(f"{path}.{key}", "is required.")
        return not missing

    def save(self, obj: models.Model, path: str, label: str, keymap: dict[str, str],
             save: Callable[[], Any] | None = None) -> bool:
        """Save through the services if anything changed; map field errors to JSON paths."""
        created = obj.pk is None
        before = None if created else _field_values(type(obj).objects.get(pk=obj.pk))
        try:
            obj.full_clean()
        except ValidationError as exc:
            self.validation_problem(exc, path, keymap)
            return False
        after = _field_values(obj)
        if not created and before == after:
            return True
        try:
            (save or (lambda: services.save(obj)))()
        except ValidationError as exc:
            self.validation_problem(exc, path, keymap)
            return False
        except IntegrityError as exc:  # a rule the validation missed; the savepoint rolled back
            self.problem(path, f"the database refused it: {exc}")
            return False
        if created:
            self.report.changes.append(f"create {label}")
        else:
            changed = sorted(k for k in after if before.get(k) != after[k])
            self.report.changes.append(f"update {label}: {', '.join(changed)}")
        return True

    def validation_problem(self, exc: ValidationError, path: str, keymap: dict[str, str]) -> None:
        reverse = {model_field: key for key, model_field in keymap.items()}
        if hasattr(exc, "error_dict"):
            for model_field, errors in exc.message_dict.items():
                key = reverse.get(model_field)
                where = f"{path}.{key}" if key else path
                for message in errors:
                    self.problem(where, message)
        else:
            for message in exc.messages:
                self.problem(path, message)

    def items(self, doc: dict, section: str) -> list[tuple[str, dict]]:
        value = doc.get(section, [])
        if not self.expect(value, list, section, "a list"):
            return []
        found = []
        for index, item in enumerate(value):
            path = f"{section}[{index}]"
            if self.expect(item, dict, path, "an object"):
                found.append((path, item))
        return found

    # sections
    def run(self, doc: Any) -> None:
        if not isinstance(doc, dict):
            self.problem("$", "the state file must be a JSON object.")
            return
        for key in sorted(set(doc) - set(SECTIONS)):
            self.problem(key, f"unknown section; expected {', '.join(SECTIONS)}.")
        unstorable = unstorable_text(doc)
        for path, messages in unstorable.items():
            self.problem(path, " ".join(messages))
        if unstorable:
            return
        self.nodes(doc)
        self.rules(doc)
        self.admin_overlay(doc)
        self.firewall(doc)
        self.vdcs(doc)
        self.networks(doc)
        self.vnics(doc)
        if not self.problems:
            created, deleted = services.reconcile_ipsec_keys()
            if created or deleted:
                self.report.changes.append(
                    f"IPSec keys: {created} pair(s) created, {deleted} removed")

    def nodes(self, doc: dict) -> None:
        seen: set[str] = set()
        for path, item in self.items(doc, "nodes"):
            if not self.known_keys(item, set(NODE_FIELDS) | {"ssh"}, {"hostname", "pdc"}, path):
                continue
            if not self.names(item, ("hostname",), path):
                continue
            hostname = item["hostname"]
            if hostname in seen:
                self.problem(f"{path}.hostname", f"node {hostname} appears twice.")
                continue
            seen.add(hostname)
            self.declared["node", hostname] = path
            node = Node.objects.filter(hostname=hostname).first() or Node(hostname=hostname)
            for key, model_field in NODE_FIELDS.items():
                if key in item:
                    _assign(node, model_field, item[key])
            ssh = item.get("ssh", {})
            if self.expect(ssh, dict, f"{path}.ssh", "an object"):
                for key in sorted(set(ssh) - set(SSH_FIELDS)):
                    self.problem(f"{path}.ssh.{key}",
                                 f"unknown key; expected one of {', '.join(SSH_FIELDS)}.")
                for key, model_field in SSH_FIELDS.items():
                    if key in ssh:
                        _assign(node, model_field, ssh[key])
            keymap = {**NODE_FIELDS, **{f"ssh.{k}": v for k, v in SSH_FIELDS.items()}}
            self.save(node, path, f"node {hostname}", keymap)

    def rules(self, doc: dict) -> None:
        items = self.items(doc, "overlay_rules")
        # Rules that name their port go first, so that "next free port" for a rule
        # without one never takes a port that a later rule of the file asks for.
        for path, item in sorted(items, key=lambda found: "port" not in found[1]):
            if not self.known_keys(item, set(RULE_FIELDS), {"name"}, path):
                continue
            if not self.names(item, ("name",), path):
                continue
            self.declared["overlay rule", item["name"]] = path
            rule = OverlayRule.objects.filter(name=item["name"]).first() or OverlayRule()
            self.fill_rule(rule, item, path)

    def fill_rule(self, rule: OverlayRule, item: dict, path: str) -> OverlayRule | None:
        for key, model_field in RULE_FIELDS.items():
            if key in item and key != "nodes":
                _assign(rule, model_field, item[key])
        if not rule.pk and "port" not in item:
            rule.port = None
        nodes = item.get("nodes", "all")
        if nodes == "all":
            rule.all_nodes, rule.node_names = True, []
        elif isinstance(nodes, list):
            rule.all_nodes, rule.node_names = False, nodes
        else:
            self.problem(f"{path}.nodes", 'must be "all" or a list of host names.')
            return None
        ok = self.save(rule, path, f"overlay rule {rule.name}", RULE_FIELDS)
        return rule if ok else None

    def admin_overlay(self, doc: dict) -> None:
        if "admin_overlay" not in doc:
            return
        path, item = "admin_overlay", doc["admin_overlay"]
        if not self.expect(item, dict, path, "an object"):
            return
        allowed = {"rule", "subnet", "vxlan_id", "vlan_id", "nodes"}
        if not self.known_keys(item, allowed, set(), path):
            return
        if not self.names(item, ("rule",), path, nullable=("rule",)):
            return
        rule_name = item.get("rule") or "adminoverlay"
        rule = OverlayRule.objects.filter(name=rule_name).first()
        if rule is None:
            rule = self.fill_rule(OverlayRule(mtu=ADMIN_OVERLAY_MTU), {"name": rule_name},
                                  f"{path}.rule")
            if rule is None:
                return
        overlay = AdminOverlay.objects.first() or AdminOverlay()
        overlay.rule = rule
        for key in ("subnet", "vxlan_id", "vlan_id"):
            if item.get(key) is not None:  # null: keep the current value or the default
                setattr(overlay, key, item[key])
        if not overlay.subnet:
            overlay.subnet = services.random_admin_subnet()
        keymap = {"rule": "rule", "subnet": "subnet", "vxlan_id": "vxlan_id",
                  "vlan_id": "vlan_id"}
        try:
            # A new subnet: move the node addresses into it first (MACs stay).
            moved = services.admin_overlay_renumber(overlay)
        except ValidationError as exc:
            self.validation_problem(exc, path, keymap)
            return
        for address in moved:
            self.report.changes.append(
                f"move admin overlay address of {address.node.hostname} to {address.ip}")
        if not self.save(overlay, path, "admin overlay", keymap):
            return
        wanted = item.get("nodes", {})
        if not self.expect(wanted, dict, f"{path}.nodes", "an object keyed by host name"):
            return
        self.admin_addresses(overlay, wanted, f"{path}.nodes")
        for node in Node.objects.filter(admin_overlay_address__isnull=True):
            self.record_assign(node, f"{path}.nodes", {})

    def admin_addresses(self, overlay: AdminOverlay, wanted: dict, path: str) -> None:
        """Apply the file's node addresses; IPs and MACs may move between nodes (a swap)."""
        plans = []
        for hostname in sorted(wanted):
            address_path = f"{path}.{hostname}"
            spec = wanted[hostname]
            if not self.expect(spec, dict, address_path, 'an object like {"ip": ..., "mac": ...}'):
                continue
            if not self.known_keys(spec, {"ip", "mac"}, set(), address_path):
                continue
            node = Node.objects.filter(hostname=hostname).first()
            if node is None:
                self.problem(address_path, self.missing("node", hostname))
                continue
            current = AdminOverlayAddress.objects.filter(node=node).first()
            ip = spec.get("ip") or (current.ip if current else None)
            mac = spec.get("mac") or (current.mac if current else None)
            if not ip or not mac:
                self.record_assign(node, address_path, spec)
                continue
            if isinstance(mac, str):
                mac = _normal_mac(mac)
            plans.append((address_path, node, current, ip, mac))
        # Rows whose IP or MAC changes are released before any is written again, so that
        # uniqueness holds between the old and the new state, not at every step between.
        changing = [plan for plan in plans
                    if plan[2] and (plan[2].ip, plan[2].mac) != (plan[3], plan[4])]
        for _, _, current, _, _ in changing:
            services.delete(current)
        for address_path, node, current, ip, mac in plans:
            if current and (current.ip, current.mac) == (ip, mac):
                continue
            address = AdminOverlayAddress(admin_overlay=overlay, node=node, ip=ip, mac=mac)
            try:
                services.save(address)
            except ValidationError as exc:
                self.validation_problem(exc, address_path, {"ip": "ip", "mac": "mac"})
                continue
            label = f"admin overlay address of {node.hostname}"
            if current is None:
                self.report.changes.append(f"create {label}")
            else:
                changed = [f for f in ("ip", "mac") if getattr(current, f) != getattr(address, f)]
                self.report.changes.append(f"update {label}: {', '.join(changed)}")

    def record_assign(self, node: Node, path: str, spec: dict) -> None:
        try:
            address = services.admin_overlay_assign(node, ip=spec.get("ip"), mac=spec.get("mac"))
        except ValidationError as exc:
            self.validation_problem(exc, path, {"ip": "ip", "mac": "mac"})
            return
        if address:
            self.report.changes.append(
                f"assign admin overlay address {address.ip} {address.mac} to {node.hostname}")

    def firewall(self, doc: dict) -> None:
        if "firewall" not in doc:
            return
        path, item = "firewall", doc["firewall"]
        if not self.expect(item, dict, path, "an object"):
            return
        if not self.known_keys(item, {"enabled", "allowed_sources"}, set(), path):
            return
        fw = FirewallSettings.load()
        if "enabled" in item:
            if not self.expect(item["enabled"], bool, f"{path}.enabled", "true or false"):
                return
            fw.enabled = item["enabled"]
        if "allowed_sources" in item:
            fw.allowed_sources = item["allowed_sources"]
        self.save(fw, path, "firewall settings",
                  {"enabled": "enabled", "allowed_sources": "allowed_sources"})

    def vdcs(self, doc: dict) -> None:
        users = get_user_model()
        for path, item in self.items(doc, "vdcs"):
            if not self.known_keys(item, set(VDC_FIELDS) | {"admins"}, {"name"}, path):
                continue
            if not self.names(item, ("name",), path):
                continue
            self.declared["vDC", item["name"]] = path
            vdc = Vdc.objects.filter(name=item["name"]).first() or Vdc()
            for key, model_field in VDC_FIELDS.items():
                if key in item:
                    _assign(vdc, model_field, item[key])
            if not self.save(vdc, path, f"vDC {vdc.name}", VDC_FIELDS):
                continue
            admins = item.get("admins", [])
            if not self.expect(admins, list, f"{path}.admins", "a list of user names"):
                continue
            wanted = []
            for index, username in enumerate(admins):
                if not isinstance(username, str) or not username.strip():
                    self.problem(f"{path}.admins[{index}]", "must be a user name.")
                    continue
                user = users.objects.filter(username=username).first()
                if user is None:
                    user = users(username=username)
                    user.set_unusable_password()
                    user.save()
                    self.report.changes.append(f"create user {username} (no usable password)")
                wanted.append(user)
            current = set(vdc.admins.values_list("pk", flat=True))
            if current != {u.pk for u in wanted}:
                vdc.admins.set(wanted)
                names = ", ".join(sorted(u.username for u in wanted))
                self.report.changes.append(f"set admins of vDC {vdc.name}: {names}")

    def networks(self, doc: dict) -> None:
        for path, item in self.items(doc, "networks"):
            required = {"name", "overlay_rule", "vxlan_id", "network"}
            if not self.known_keys(item, set(NETWORK_FIELDS) | {"vdc", "overlay_rule"},
                                   required, path):
                continue
            if not self.names(item, ("name", "overlay_rule", "vdc"), path, nullable=("vdc",)):
                continue
            self.declared["network", item["name"]] = path
            network = (VirtualNetwork.objects.filter(name=item["name"]).first()
                       or VirtualNetwork())
            for key, model_field in NETWORK_FIELDS.items():
                if key in item:
                    _assign(network, model_field, item[key])
            rule = OverlayRule.objects.filter(name=item["overlay_rule"]).first()
            if rule is None:
                self.problem(f"{path}.overlay_rule",
                             self.missing("overlay rule", item["overlay_rule"]))
                continue
            network.rule = rule
            vdc_name = item.get("vdc")
            network.vdc = Vdc.objects.filter(name=vdc_name).first() if vdc_name else None
            if vdc_name and network.vdc is None:
                self.problem(f"{path}.vdc", self.missing("vDC", vdc_name))
                continue
            self.save(network, path, f"network {network.name}",
                      {**NETWORK_FIELDS, "vdc": "vdc", "overlay_rule": "rule"})

    def vnics(self, doc: dict) -> None:
        seen: dict[tuple[str, str], str] = {}
        for path, item in self.items(doc, "vnics"):
            required = {"vm", "node", "network", "mac", "ip"}
            if not self.known_keys(item, set(VNIC_FIELDS) | {"node", "network"}, required, path):
                continue
            if not self.names(item, ("node", "network", "mac"), path):
                continue
            network = VirtualNetwork.objects.filter(name=item["network"]).first()
            node = Node.objects.filter(hostname=item["node"]).first()
            if network is None:
                self.problem(f"{path}.network", self.missing("network", item["network"]))
            if node is None:
                self.problem(f"{path}.node", self.missing("node", item["node"]))
            if network is None or node is None:
                continue
            # A vNIC is known by its network and MAC, compared as stored (normalised).
            mac = _normal_mac(item["mac"])
            if (network.name, mac) in seen:
                self.problem(f"{path}.mac", f"{mac} appears twice on network {network.name}, "
                                            f"also at {seen[network.name, mac]}.")
                continue
            seen[network.name, mac] = path
            vnic = Vnic.objects.filter(network=network, mac=mac).first() or Vnic(network=network)
            vnic.node = node
            for key, model_field in VNIC_FIELDS.items():
                if key in item:
                    _assign(vnic, model_field, item[key])
            self.save(vnic, path, f"vNIC {item['mac']} of {item['vm']}",
                      {**VNIC_FIELDS, "node": "node", "network": "network"})


def _assign(obj: models.Model, field_name: str, value: Any) -> None:
    """Set a model field from JSON, reading null and "" as "empty" in the field's own terms.

    Text fields that may be blank store "" (a null would pass validation and then fail
    at the database); nullable non-text fields (UUIDs, IPs) store None for "".
    """
    field = obj._meta.get_field(field_name)
    if value is None and field.blank and not field.null and field.empty_strings_allowed:
        value = ""
    elif value == "" and field.null and not field.empty_strings_allowed:
        value = None
    setattr(obj, field.attname, value)


def _normal_mac(value: str) -> str:
    try:
        return normalize_mac(value)
    except ValidationError:
        return value.strip().lower()  # the model reports the bad MAC at the item's path


def _field_values(obj: models.Model) -> dict[str, Any]:
    return {
        f.attname: _comparable(getattr(obj, f.attname))
        for f in obj._meta.concrete_fields
        if not getattr(f, "auto_now", False) and not getattr(f, "auto_now_add", False)
    }


def _comparable(value: Any) -> Any:
    return str(value) if value is not None and not isinstance(value, (int, bool, list)) else value
