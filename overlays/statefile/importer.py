"""Import: a state file applied through the services, all or nothing.

The document is read as version 2 (a version 1 file is mapped once, first), then
each item becomes a service call inside one transaction. Every problem is
collected with its JSON path; on any problem, or a dry run, the transaction rolls
back. Each object is validated once, by the service that saves it, and saved only
when something changed, so importing the same file twice changes nothing the
second time. IPSec keys are never part of the file; the server makes them.

Before anything is read the document's nesting is bounded (``core.jsondoc``), and before
the transaction commits every node's files are rendered from the imported state: the
model validators accept only what the generators render, and this check keeps it so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, models, transaction

from core.jsondoc import JsonDocumentError, check_depth
from core.validators import normalize_mac, unstorable_text
from nodes.models import Node
from overlays import changes, services
from overlays.generators import render_node
from overlays.models import (
    ADMIN_OVERLAY_RULE,
    AdminOverlay,
    AdminOverlayAddress,
    FirewallSettings,
    IpsecKey,
    OverlayRule,
    VirtualNetwork,
    Vnic,
)
from overlays.nodelist import NODES_MESSAGE, parse_nodes
from overlays.selectors import load_snapshot, node_paths
from overlays.statefile.schema import (
    ADDRESS_KEYS,
    ADMIN_OVERLAY_KEYS,
    FIREWALL_KEYS,
    NETWORK_FIELDS,
    NODE_FIELDS,
    RULE_FIELDS,
    TOP_LEVEL_KEYS,
    VDC_FIELDS,
    VNIC_FIELDS,
    StateFileError,
)
from overlays.statefile.versions import upgrade, v1_path, version_of
from vdc.models import Vdc


@dataclass
class ImportReport:
    """What an import changed (or, in a dry run, would change), one sentence each."""

    changes: list[str] = field(default_factory=list)
    dry_run: bool = False


def import_state(doc: Any, *, dry_run: bool = False) -> ImportReport:
    """Apply a state document completely or not at all; raise StateFileError listing problems."""
    if not isinstance(doc, dict):
        raise StateFileError([("$", "the state file must be a JSON object.")])
    try:
        check_depth(doc)
    except JsonDocumentError as exc:
        raise StateFileError([("$", f"{exc}.")]) from None
    version = version_of(doc)
    problems: list[tuple[str, str]] = [
        (path, " ".join(messages)) for path, messages in unstorable_text(doc).items()]
    if problems:
        raise StateFileError(problems)
    if version == 1:
        doc, problems = upgrade(doc)
    importer = _Importer(dry_run=dry_run)
    with transaction.atomic():
        with changes.batch():  # each affected node scheduled once
            importer.run(doc)
            if version == 1:
                importer.problems = [(v1_path(path), message)
                                     for path, message in importer.problems]
            problems += importer.problems
            if not problems:
                problems = render_problems()
            if problems:
                raise StateFileError(problems)
        if dry_run:  # after the batch has written its requests: they are undone too
            transaction.set_rollback(True)
    return importer.report


def render_problems() -> list[tuple[str, str]]:
    """Every node's files rendered from the state as it stands; a problem for each that fails.

    The validators make this impossible; it is the check that they stay in step with the
    generators, so that an accepted state file never leaves nodes that cannot be synced.
    """
    snapshot = load_snapshot()
    paths = node_paths()
    problems = []
    for node in sorted(snapshot.nodes, key=lambda view: view.hostname):
        try:
            render_node(snapshot, node, paths)
        except ValueError as exc:
            problems.append(("$", f"the files of node {node.hostname} cannot be rendered from "
                                  f"this state: {exc}"))
    return problems


class _Importer:
    def __init__(self, *, dry_run: bool) -> None:
        self.problems: list[tuple[str, str]] = []
        # Where the file declares each named item, to explain a reference to a failed one.
        self.declared: dict[tuple[str, str], str] = {}
        self.report = ImportReport(dry_run=dry_run)

    # --- helpers

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

    def save(self, obj: models.Model, path: str, label: str, keymap: dict[str, str]) -> bool:
        """Save through the services if anything changed; map field errors to JSON paths."""
        try:
            changed = services.save_changes(obj)
        except ValidationError as exc:
            self.validation_problem(exc, path, keymap)
            return False
        except IntegrityError as exc:  # a rule the validation missed; the savepoint rolled back
            self.problem(path, f"the database refused it: {exc}")
            return False
        if changed is None:
            self.report.changes.append(f"create {label}")
        elif changed:
            self.report.changes.append(f"update {label}: {', '.join(changed)}")
        return True

    def validation_problem(self, exc: ValidationError, path: str, keymap: dict[str, str]) -> None:
        """Each message at the JSON key of the field it names; the item's path otherwise."""
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

    # --- sections, in the order their references need

    def run(self, doc: dict) -> None:
        for key in sorted(set(doc) - set(TOP_LEVEL_KEYS)):
            self.problem(key, f"unknown section; expected {', '.join(TOP_LEVEL_KEYS)}.")
        keys_before = _key_pairs()
        self.nodes(doc)
        self.rules(doc)
        self.admin_overlay(doc)
        self.firewall(doc)
        self.vdcs(doc)
        self.networks(doc)
        self.vnics(doc)
        if not self.problems:
            services.reconcile_ipsec_keys()
            keys_after = _key_pairs()
            created, removed = len(keys_after - keys_before), len(keys_before - keys_after)
            if created or removed:
                self.report.changes.append(
                    f"IPSec keys: {created} pair(s) created, {removed} removed")

    def nodes(self, doc: dict) -> None:
        seen: set[str] = set()
        for path, item in self.items(doc, "nodes"):
            if not self.known_keys(item, set(NODE_FIELDS), {"hostname", "pdc"}, path):
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
            _fill(node, item, NODE_FIELDS)
            self.save(node, path, f"node {hostname}", NODE_FIELDS)

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
            rule = OverlayRule.objects.filter(name=item["name"]).first() or OverlayRule(port=None)
            try:
                rule.all_nodes, rule.node_names = parse_nodes(item.get("nodes", "all"))
            except ValueError:
                self.problem(f"{path}.nodes", NODES_MESSAGE)
                continue
            _fill(rule, {k: v for k, v in item.items() if k != "nodes"}, RULE_FIELDS)
            self.save(rule, path, f"overlay rule {rule.name}", RULE_FIELDS)

    def admin_overlay(self, doc: dict) -> None:
        if "admin_overlay" not in doc:
            return
        path, item = "admin_overlay", doc["admin_overlay"]
        if not self.expect(item, dict, path, "an object"):
            return
        if not self.known_keys(item, set(ADMIN_OVERLAY_KEYS), set(), path):
            return
        if not self.names(item, ("overlay_rule",), path, nullable=("overlay_rule",)):
            return
        addresses = self.admin_addresses(item.get("addresses", {}), f"{path}.addresses")
        rule_name = item.get("overlay_rule") or ADMIN_OVERLAY_RULE
        before = _admin_overlay_facts()
        rule_existed = OverlayRule.objects.filter(name=rule_name).exists()
        try:
            # null: keep the current value, or take the default
            services.admin_overlay_init(
                overlay_rule=rule_name, subnet=item.get("subnet"), vxlan_id=item.get("vxlan_id"),
                vlan_id=item.get("vlan_id"), addresses=addresses)
        except ValidationError as exc:
            # The service names its errors as the file does (addresses.<host>.ip, ...).
            errors = exc.message_dict if hasattr(exc, "error_dict") else {
                NON_FIELD_ERRORS: exc.messages}
            for key, messages in errors.items():
                for message in messages:
                    self.problem(_admin_overlay_path(path, key), message)
            return
        if not rule_existed:
            self.report.changes.append(f"create overlay rule {rule_name}")
        self.report.changes += _admin_overlay_changes(before, _admin_overlay_facts(), addresses)

    def admin_addresses(self, wanted: Any, path: str) -> dict[str, dict]:
        """The file's node addresses that are well formed and name known nodes.

        The others are reported here; the rest still go to the service, so that its
        problems are listed too.
        """
        if not self.expect(wanted, dict, path, "an object keyed by host name"):
            return {}
        valid = {}
        for hostname, spec in sorted(wanted.items()):
            address_path = f"{path}.{hostname}"
            if not self.expect(spec, dict, address_path,
                               'an object like {"ip": ..., "mac": ...}'):
                continue
            if not self.known_keys(spec, set(ADDRESS_KEYS), set(), address_path):
                continue
            if not Node.objects.filter(hostname=hostname).exists():
                self.problem(address_path, self.missing("node", hostname))
                continue
            valid[hostname] = spec
        return valid

    def firewall(self, doc: dict) -> None:
        if "firewall" not in doc:
            return
        path, item = "firewall", doc["firewall"]
        if not self.expect(item, dict, path, "an object"):
            return
        if not self.known_keys(item, set(FIREWALL_KEYS), set(), path):
            return
        fw = FirewallSettings.load()  # a non-boolean "enabled": the model's type check
        _fill(fw, item, {key: key for key in FIREWALL_KEYS})
        self.save(fw, path, "firewall settings", {key: key for key in FIREWALL_KEYS})

    def vdcs(self, doc: dict) -> None:
        for path, item in self.items(doc, "vdcs"):
            if not self.known_keys(item, set(VDC_FIELDS) | {"admins"}, {"name"}, path):
                continue
            if not self.names(item, ("name",), path):
                continue
            self.declared["vDC", item["name"]] = path
            vdc = Vdc.objects.filter(name=item["name"]).first() or Vdc()
            _fill(vdc, item, VDC_FIELDS)
            if not self.save(vdc, path, f"vDC {vdc.name}", VDC_FIELDS):
                continue
            admins = item.get("admins", [])
            if not self.expect(admins, list, f"{path}.admins", "a list of user names"):
                continue
            usernames = []
            for index, username in enumerate(admins):
                if not isinstance(username, str) or not username.strip():
                    self.problem(f"{path}.admins[{index}]", "must be a user name.")
                else:
                    usernames.append(username)
            if len(usernames) < len(admins):
                continue
            result = services.vdc_set_admins(vdc, usernames, create_missing_users=True)
            self.report.changes += [f"create user {name} (no usable password)"
                                    for name in result.created_users]
            if result.changed:
                self.report.changes.append(
                    f"set admins of vDC {vdc.name}: {', '.join(result.usernames)}")

    def networks(self, doc: dict) -> None:
        keymap = {**NETWORK_FIELDS, "vdc": "vdc", "overlay_rule": "overlay_rule"}
        for path, item in self.items(doc, "networks"):
            required = {"name", "overlay_rule", "vxlan_id", "network"}
            if not self.known_keys(item, set(keymap), required, path):
                continue
            if not self.names(item, ("name", "overlay_rule", "vdc"), path, nullable=("vdc",)):
                continue
            self.declared["network", item["name"]] = path
            network = (VirtualNetwork.objects.filter(name=item["name"]).first()
                       or VirtualNetwork())
            _fill(network, item, NETWORK_FIELDS)
            rule = OverlayRule.objects.filter(name=item["overlay_rule"]).first()
            if rule is None:
                self.problem(f"{path}.overlay_rule",
                             self.missing("overlay rule", item["overlay_rule"]))
                continue
            network.overlay_rule = rule
            vdc_name = item.get("vdc")
            network.vdc = Vdc.objects.filter(name=vdc_name).first() if vdc_name else None
            if vdc_name and network.vdc is None:
                self.problem(f"{path}.vdc", self.missing("vDC", vdc_name))
                continue
            self.save(network, path, f"network {network.name}", keymap)

    def vnics(self, doc: dict) -> None:
        keymap = {**VNIC_FIELDS, "node": "node", "network": "network"}
        seen: dict[tuple[str, str], str] = {}
        for path, item in self.items(doc, "vnics"):
            required = {"vm_name", "node", "network", "mac", "ip"}
            if not self.known_keys(item, set(keymap), required, path):
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
            # A vNIC is known by its network and MAC, compared as stored (normalised);
            # a bad MAC is kept as written, for the model to report at the item's path.
            mac = normalize_mac(item["mac"]) or item["mac"].strip().lower()
            if (network.name, mac) in seen:
                self.problem(f"{path}.mac", f"{mac} appears twice on network {network.name}, "
                                            f"also at {seen[network.name, mac]}.")
                continue
            seen[network.name, mac] = path
            vnic = Vnic.objects.filter(network=network, mac=mac).first() or Vnic(network=network)
            vnic.node = node
            _fill(vnic, item, VNIC_FIELDS)
            self.save(vnic, path, f"vNIC {item['mac']} of {item['vm_name']}", keymap)


def _fill(obj: models.Model, item: dict, keymap: dict[str, str]) -> None:
    """Set the model fields the item gives, reading null and "" as "empty" in each field's terms.

    Text fields that may be blank store "" (a null would pass validation and then fail
    at the database); nullable non-text fields (UUIDs, IPs) store None for "".
    """
    for key, field_name in keymap.items():
        if key not in item:
            continue
        value = item[key]
        model_field = obj._meta.get_field(field_name)
        if value is None and model_field.blank and not model_field.null and \
                model_field.empty_strings_allowed:
            value = ""
        elif value == "" and model_field.null and not model_field.empty_strings_allowed:
            value = None
        setattr(obj, model_field.attname, value)


def _admin_overlay_path(path: str, key: str) -> str:
    if key == NON_FIELD_ERRORS:
        return path
    if key.split(".")[0] in ADMIN_OVERLAY_KEYS:
        return f"{path}.{key}"
    return f"{path}.overlay_rule"  # the port or MTU of the rule it would create


def _key_pairs() -> set[tuple[int, int]]:
    return set(IpsecKey.objects.values_list("node_a_id", "node_b_id"))


def _admin_overlay_facts() -> tuple[dict[str, object] | None, dict[str, tuple[str, str]]]:
    overlay = AdminOverlay.objects.first()
    addresses = {hostname: (ip, mac) for hostname, ip, mac in
                 AdminOverlayAddress.objects.values_list("node__hostname", "ip", "mac")}
    return (services.field_values(overlay) if overlay else None), addresses


def _admin_overlay_changes(before: tuple, after: tuple, named: dict[str, dict]) -> list[str]:
    """The report lines of the admin overlay part: what differs between two pictures."""
    (overlay_before, addresses_before), (overlay_after, addresses_after) = before, after
    lines = []
    if overlay_before is None:
        lines.append("create admin overlay")
    else:
        changed = sorted(k for k in overlay_after if overlay_before.get(k) != overlay_after[k])
        if changed:
            lines.append(f"update admin overlay: {', '.join(changed)}")
    for hostname in sorted(addresses_after):
        old, new = addresses_before.get(hostname), addresses_after[hostname]
        label = f"admin overlay address of {hostname}"
        if old is None and set(named.get(hostname, {})) >= {"ip", "mac"}:
            lines.append(f"create {label}")
        elif old is None:
            lines.append(f"assign admin overlay address {new[0]} {new[1]} to {hostname}")
        elif old != new:
            fields = [name for name, a, b in zip(("ip", "mac"), old, new, strict=True) if a != b]
            lines.append(f"update {label}: {', '.join(fields)}")
    return lines
