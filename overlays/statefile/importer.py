"""Import: a state file compared with the installation, and only the differences written.

The document is read as version 2 (a version 1 file is mapped once, first). The current
state is read in a fixed number of queries and each item compared with it in memory: an
item equal to what is stored is neither validated again nor written, so importing the same
file twice changes nothing the second time, and costs about what an export costs. An item
that differs goes through the services (nodes, rules, the admin overlay, the firewall,
vDCs, networks: the same locks, validation and follow-ups as any other write).

vNICs, the one section that grows to tens of thousands, are written in bulk: each new or
changed vNIC is validated by the model's own rules of one row (``Vnic.row_errors`` and the
field validators), the rules across rows (a MAC once per overlay rule, an address once per
network) are checked once over the whole desired state with maps, in the model's words
(``Vnic.mac_taken``, ``Vnic.ip_taken``), and the rows are created and updated in a few
statements under the locks ``services.locking.lock_for_vnic_writes`` takes. They keep an
audit entry each (``core.bulk_audit``), and the nodes they affect are
scheduled once (``changes.vnics_written``).

Every problem is collected with its JSON path; on any problem, or a dry run, the one
transaction rolls back. IPSec keys are never part of the file; the server makes them.

Before anything is read the document's nesting is bounded (``core.jsondoc``), and before
the transaction commits every node's files are rendered from the imported state: the
model validators accept only what the generators render, and this check keeps it so.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from core.bulk_audit import log_bulk_writes
from core.jsondoc import JsonDocumentError, check_depth
from core.validators import normalize_mac, unstorable_text
from nodes.models import Node
from overlays import changes, services
from overlays.filegroups import ARP_PREFIX
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
from overlays.models.networks import address_owner, vnic_owner
from overlays.nodelist import NODES_MESSAGE, parse_nodes
from overlays.selectors import load_snapshot, node_paths
from overlays.services.locking import lock_for_vnic_writes
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
    # (JSON path, sentence): accepted, but probably a mistake (services.warnings_of)
    warnings: list[tuple[str, str]] = field(default_factory=list)

    def warnings_by_path(self) -> dict[str, list[str]]:
        """The warnings shaped like the API's errors: {path: [sentence]}."""
        shaped: dict[str, list[str]] = {}
        for path, sentence in self.warnings:
            shaped.setdefault(path, []).append(sentence)
        return shaped


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
        with changes.batch() as batch:  # each affected node scheduled once
            importer.run(doc)
            if version == 1:
                importer.problems = [(v1_path(path), message)
                                     for path, message in importer.problems]
            problems += importer.problems
            if not problems:
                problems = render_problems(batch.files)
            if problems:
                raise StateFileError(problems)
        if dry_run:  # after the batch has written its requests: they are undone too
            transaction.set_rollback(True)
    return importer.report


def render_problems(files: changes.Affected | None = None) -> list[tuple[str, str]]:
    """Nodes' files rendered from the state as it stands; a problem for each that fails.

    ``files``: only these nodes, and of each only these file groups (None: every file),
    those the import changed (``changes.SyncBatch.files``); the others render as before.
    A node whose only changed files are ARP tables is left out: an ARP table is rendered
    from vNIC rows the model validated and refuses none of them (it leaves out what it
    cannot route, which ``overlay check`` reports), and a rule change that reshapes the
    table changes the node's ``/usbkey/config`` line too, so that node is rendered. This
    keeps a one-vNIC import from loading the whole cluster to render tables that cannot
    fail. Without ``files``, every node's every file. The validators make a failure
    impossible; this is the check that they stay in step with the generators, so that an
    accepted state file never leaves nodes that cannot be synced.
    """
    if files is not None:
        files = {node_id: scope for node_id, scope in files.items()
                 if scope is None or any(not group.startswith(ARP_PREFIX) for group in scope)}
        if not files:
            return []
    snapshot = load_snapshot()
    paths = node_paths()
    problems = []
    for node in sorted(snapshot.nodes, key=lambda view: view.hostname):
        if files is not None and node.id not in files:
            continue
        groups = files.get(node.id) if files is not None else None
        try:
            if groups is None:
                render_node(snapshot, node, paths)
            else:
                render_node(snapshot, node, paths, groups=groups)
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
        self.nodes_by_name: dict[str, Node] = {}  # every node, as the import leaves it

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
        reverse = {model_field: key for key, model_field in keymap.items()}
        for model_field, sentences in services.warnings_of(obj).items():
            where = f"{path}.{reverse[model_field]}" if model_field in reverse else path
            self.report.warnings += [(where, sentence) for sentence in sentences]
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
        with services.keys_reconciled_by_caller():  # once, below, not once per node
            self.nodes(doc)
        self.rules(doc)
        self.admin_overlay(doc)
        self.firewall(doc)
        self.vdcs(doc)
        self.networks(doc)
        self.vnics(doc)
        if not self.problems:
            services.reconcile_ipsec_keys()  # also repairs a database written around them
            keys_after = _key_pairs()
            created, removed = len(keys_after - keys_before), len(keys_before - keys_after)
            if created or removed:
                self.report.changes.append(
                    f"IPSec keys: {created} pair(s) created, {removed} removed")

    def nodes(self, doc: dict) -> None:
        self.nodes_by_name = {node.hostname: node for node in Node.objects.all()}
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
            stored = self.nodes_by_name.get(hostname)
            node = _copy(stored) if stored else Node(hostname=hostname)
            _fill(node, item, NODE_FIELDS)
            if _same(node, stored):
                continue
            if self.save(node, path, f"node {hostname}", NODE_FIELDS):
                self.nodes_by_name[hostname] = node

    def rules(self, doc: dict) -> None:
        stored_rules = {rule.name: rule for rule in OverlayRule.objects.all()}
        items = self.items(doc, "overlay_rules")
        # Rules that name their port go first, so that "next free port" for a rule
        # without one never takes a port that a later rule of the file asks for.
        for path, item in sorted(items, key=lambda found: "port" not in found[1]):
            if not self.known_keys(item, set(RULE_FIELDS), {"name"}, path):
                continue
            if not self.names(item, ("name",), path):
                continue
            self.declared["overlay rule", item["name"]] = path
            stored = stored_rules.get(item["name"])
            rule = _copy(stored) if stored else OverlayRule(port=None)
            try:
                rule.all_nodes, rule.node_names = parse_nodes(item.get("nodes", "all"))
            except ValueError:
                self.problem(f"{path}.nodes", NODES_MESSAGE)
                continue
            _fill(rule, {k: v for k, v in item.items() if k != "nodes"}, RULE_FIELDS)
            if _same(rule, stored):
                continue
            if self.save(rule, path, f"overlay rule {rule.name}", RULE_FIELDS):
                stored_rules[rule.name] = rule

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
        if _admin_overlay_unchanged(before, item, rule_name, addresses,
                                    set(self.nodes_by_name)):
            return
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
            if hostname not in self.nodes_by_name:
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
        stored = FirewallSettings.load()  # a non-boolean "enabled": the model's type check
        fw = _copy(stored)
        _fill(fw, item, {key: key for key in FIREWALL_KEYS})
        if not _same(fw, stored):
            self.save(fw, path, "firewall settings", {key: key for key in FIREWALL_KEYS})

    def vdcs(self, doc: dict) -> None:
        stored_vdcs = {vdc.name: vdc for vdc in Vdc.objects.prefetch_related("admins")}
        for path, item in self.items(doc, "vdcs"):
            if not self.known_keys(item, set(VDC_FIELDS) | {"admins"}, {"name"}, path):
                continue
            if not self.names(item, ("name",), path):
                continue
            self.declared["vDC", item["name"]] = path
            stored = stored_vdcs.get(item["name"])
            vdc = _copy(stored) if stored else Vdc()
            _fill(vdc, item, VDC_FIELDS)
            if not _same(vdc, stored):
                if not self.save(vdc, path, f"vDC {vdc.name}", VDC_FIELDS):
                    continue
                stored_vdcs.pop(vdc.name, None)  # its admins are read again below
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
            if stored is not None and vdc.name in stored_vdcs and set(usernames) == {
                    user.get_username() for user in stored.admins.all()}:
                continue  # the same users (prefetched): nothing to ask the service
            result = services.vdc_set_admins(vdc, usernames, create_missing_users=True)
            self.report.changes += [f"create user {name} (no usable password)"
                                    for name in result.created_users]
            if result.changed:
                self.report.changes.append(
                    f"set admins of vDC {vdc.name}: {', '.join(result.usernames)}")

    def networks(self, doc: dict) -> None:
        keymap = {**NETWORK_FIELDS, "vdc": "vdc", "overlay_rule": "overlay_rule"}
        stored_networks = {network.name: network for network in VirtualNetwork.objects.all()}
        rules = {rule.name: rule for rule in OverlayRule.objects.all()}
        vdcs = {vdc.name: vdc for vdc in Vdc.objects.all()}
        for path, item in self.items(doc, "networks"):
            required = {"name", "overlay_rule", "vxlan_id", "network"}
            if not self.known_keys(item, set(keymap), required, path):
                continue
            if not self.names(item, ("name", "overlay_rule", "vdc"), path, nullable=("vdc",)):
                continue
            self.declared["network", item["name"]] = path
            stored = stored_networks.get(item["name"])
            network = _copy(stored) if stored else VirtualNetwork()
            _fill(network, item, NETWORK_FIELDS)
            rule = rules.get(item["overlay_rule"])
            if rule is None:
                self.problem(f"{path}.overlay_rule",
                             self.missing("overlay rule", item["overlay_rule"]))
                continue
            network.overlay_rule = rule
            vdc_name = item.get("vdc")
            network.vdc = vdcs.get(vdc_name) if vdc_name else None
            if vdc_name and network.vdc is None:
                self.problem(f"{path}.vdc", self.missing("vDC", vdc_name))
                continue
            if _same(network, stored):
                continue
            if self.save(network, path, f"network {network.name}", keymap):
                stored_networks[network.name] = network

    def vnics(self, doc: dict) -> None:
        _VnicSection(self).run(self.items(doc, "vnics"))


class _StoredVnic(NamedTuple):
    """A stored vNIC as the comparison reads it (one query for all of them)."""

    pk: int
    network_id: int
    mac: str
    vm_name: str
    vm_uuid: uuid.UUID | None
    node_id: int
    ip: str
    ip6: str | None


def _stored_as_given(item: dict, row: _StoredVnic, node_id: int) -> bool:
    """Whether the item says exactly what the row holds, written as export writes it.

    Only a sure "the same": anything written otherwise (a MAC in capitals, an empty string
    for none) goes through the model, which decides whether it is the same after cleaning.
    """
    if not (node_id == row.node_id and item["mac"] == row.mac
            and item["vm_name"] == row.vm_name and item["ip"] == row.ip):
        return False
    for key in ("vm_uuid", "ip6"):
        if key in item:  # a key left out keeps the stored value
            stored = getattr(row, key)
            given = item[key]
            if given != (None if stored is None else str(stored)):
                return False
    return True


@dataclass
class _VnicWrite:
    """A vNIC of the file that differs from what is stored: to create (``old`` None) or update."""

    path: str
    vnic: Vnic
    old: Vnic | None
    label: str
    takes_freed: bool = False  # its address is one another vNIC of the file gives up


class _VnicSection:
    """The vNICs: compared in memory, validated once over the whole state, written in bulk."""

    KEYMAP = {**VNIC_FIELDS, "node": "node", "network": "network"}
    UPDATED_FIELDS = ("vm_name", "vm_uuid", "node", "mac", "ip", "ip6", "updated_at")

    def __init__(self, importer: _Importer) -> None:
        self.importer = importer
        self.load_networks()
        self.nodes = importer.nodes_by_name
        self.seen: dict[tuple[str, str], str] = {}  # (network, MAC) -> where the file has it

    def load_networks(self) -> None:
        self.networks = {n.name: n for n in
                         VirtualNetwork.objects.select_related("vdc", "overlay_rule")}
        self.networks_by_id = {n.pk: n for n in self.networks.values()}

    def run(self, items: list[tuple[str, dict]]) -> None:
        items = [(path, item) for path, item in items if self.well_formed(path, item)]
        # Lock what the vNICs of the file hang on before reading the rows they are checked
        # against, as the services do for one vNIC.
        lock_for_vnic_writes(
            [self.networks[item["network"]].pk for _path, item in items
             if item["network"] in self.networks],
            [self.nodes[item["node"]].pk for _path, item in items if item["node"] in self.nodes])
        self.load_networks()  # again, as the locks left them
        # Plain rows, not model objects: most vNICs of a file are compared and left alone.
        stored = {(row.network_id, row.mac): row for row in
                  Vnic.objects.order_by("pk").values_list(*_StoredVnic._fields, named=True)}
        candidates = [found for found in (self.resolve(path, item, stored)
                                          for path, item in items) if found is not None]
        olds = Vnic.objects.in_bulk([old.pk for *_rest, old in candidates if old is not None])
        writes = [write for write in (
            self.compare(path, item, network, node, olds.get(old.pk) if old else None)
            for path, item, network, node, old in candidates) if write is not None]
        writes = self.across_rows(writes, stored)
        if writes and not self.importer.problems:
            self.write(writes)

    def well_formed(self, path: str, item: dict) -> bool:
        importer = self.importer
        required = {"vm_name", "node", "network", "mac", "ip"}
        if not importer.known_keys(item, set(self.KEYMAP), required, path):
            return False
        return importer.names(item, ("node", "network", "mac"), path)

    def resolve(self, path: str, item: dict, stored: dict[tuple[int, str], _StoredVnic]
                ) -> tuple[str, dict, VirtualNetwork, Node, _StoredVnic | None] | None:
        """The item's network, node and stored row; None when it is the stored row exactly
        (the common case, decided without a model object) or refers to what is missing."""
        importer = self.importer
        network = self.networks.get(item["network"])
        node = self.nodes.get(item["node"])
        if network is None:
            importer.problem(f"{path}.network", importer.missing("network", item["network"]))
        if node is None:
            importer.problem(f"{path}.node", importer.missing("node", item["node"]))
        if network is None or node is None:
            return None
        # A vNIC is known by its network and MAC, compared as stored (normalised);
        # a bad MAC is kept as written, for the model to report at the item's path.
        mac = item["mac"]  # stored MACs are normalised: one found as written is one already
        if (network.pk, mac) not in stored:
            mac = normalize_mac(mac) or mac.strip().lower()
        if (network.name, mac) in self.seen:
            importer.problem(f"{path}.mac", f"{mac} appears twice on network {network.name}, "
                                            f"also at {self.seen[network.name, mac]}.")
            return None
        self.seen[network.name, mac] = path
        old = stored.get((network.pk, mac))
        if old is not None and _stored_as_given(item, old, node.pk):
            return None
        return path, item, network, node, old

    def compare(self, path: str, item: dict, network: VirtualNetwork, node: Node,
                old: Vnic | None) -> _VnicWrite | None:
        """The item as a vNIC if it differs from the stored one and is valid on its own."""
        vnic = _copy(old) if old else Vnic()
        vnic.network = network  # the loaded one, with its rule and vDC
        vnic.node = node
        _fill(vnic, item, VNIC_FIELDS)
        if _same(vnic, old):
            return None
        errors = _row_errors(vnic)
        if errors:
            self.importer.validation_problem(ValidationError(errors), path, self.KEYMAP)
            return None
        if _same(vnic, old):  # written differently (a MAC in capitals): the same vNIC
            return None
        return _VnicWrite(path, vnic, old, f"vNIC {item['mac']} of {item['vm_name']}")

    def across_rows(self, writes: list[_VnicWrite], stored: dict[tuple[int, str], _StoredVnic]
                    ) -> list[_VnicWrite]:
        """The rules across rows: each MAC once per overlay rule (vNICs and the admin
        overlay's addresses), each address once per network, in the model's words.

        As if the file's vNICs were saved one after the other, in its order: a vNIC may take
        an address that one before it in the file gave up (it is then written after it), not
        one that a later one gives up. Only the keys the writes could collide with are
        collected, so a few writes cost little whatever the number of vNICs.
        """
        if not writes:
            return []
        rule_of = {network.pk: network.overlay_rule_id for network in self.networks_by_id.values()}
        wanted_macs = {(rule_of[write.vnic.network_id], write.vnic.mac) for write in writes}
        wanted_ips = {(write.vnic.network_id, write.vnic.ip) for write in writes}
        # (rule, MAC) -> (holder, VM or host name, network; None: a node's admin address)
        macs: dict[tuple[int, str], tuple[int | None, str, int | None]] = {}
        for mac, hostname, rule_id in AdminOverlayAddress.objects.values_list(
                "mac", "node__hostname", "admin_overlay__overlay_rule_id"):
            if (rule_id, mac) in wanted_macs:
                macs.setdefault((rule_id, mac), (None, hostname, None))
        ips: dict[tuple[int, str], tuple[int | None, str]] = {}  # (network, IP) -> (holder, VM)
        for row in stored.values():
            mac_key = (rule_of[row.network_id], row.mac)
            if mac_key in wanted_macs and mac_key not in macs:
                macs[mac_key] = (row.pk, row.vm_name, row.network_id)
            if (row.network_id, row.ip) in wanted_ips:
                ips.setdefault((row.network_id, row.ip), (row.pk, row.vm_name))
        accepted = []
        freed: set[tuple[int, str]] = set()
        for write in writes:
            vnic, network = write.vnic, write.vnic.network
            # Who holds a key: a stored row by its pk, a new vNIC of the file by itself.
            pk = write.old.pk if write.old is not None else id(write)
            mac_key, ip_key = (network.overlay_rule_id, vnic.mac), (network.pk, vnic.ip)
            errors: dict[str, list[str]] = {}
            if macs.get(mac_key, (pk,))[0] != pk:
                errors["mac"] = [vnic.mac_taken(self.owner(*macs[mac_key][1:], network))]
            if ips.get(ip_key, (pk,))[0] != pk:
                errors["ip"] = [vnic.ip_taken(ips[ip_key][1])]
            if errors:
                self.importer.validation_problem(ValidationError(errors), write.path,
                                                 self.KEYMAP)
                continue
            if write.old is not None:
                old_key = (write.old.network_id, write.old.ip)
                if old_key != ip_key and ips.get(old_key, (None,))[0] == pk:
                    del ips[old_key]
                    freed.add(old_key)
            write.takes_freed = ip_key in freed
            macs[mac_key] = (pk, vnic.vm_name, network.pk)
            ips[ip_key] = (pk, vnic.vm_name)
            accepted.append(write)
        return accepted

    def owner(self, name: str, network_id: int | None, viewer: VirtualNetwork) -> str:
        """A MAC's holder (a VM's vNIC on a network, or a node's admin overlay address) as
        ``mac_owner_on_rule`` names it to a vNIC of network ``viewer``."""
        if network_id is None:
            return address_owner(name, viewer_vdc_id=viewer.vdc_id)
        network = self.networks_by_id[network_id]
        return vnic_owner(name, network.name, network.vdc_id, viewer_vdc_id=viewer.vdc_id)

    def write(self, writes: list[_VnicWrite]) -> None:
        """Updates first (they may free addresses that creations take), then creations; one
        audit entry per row, and each affected node scheduled once."""
        now = timezone.now()
        updates = [write for write in writes if write.old is not None]
        creations = [write for write in writes if write.old is None]
        for write in updates:
            write.vnic.updated_at = now
        # An update that takes an address another one gives up is written after it: one
        # statement per row, in the file's order (rare: a renumbering).
        in_order = any(write.takes_freed for write in updates)
        try:
            with transaction.atomic():  # a savepoint: a refusal leaves the transaction usable
                Vnic.objects.bulk_update([w.vnic for w in updates], self.UPDATED_FIELDS,
                                         batch_size=1 if in_order else 500)
                Vnic.objects.bulk_create([w.vnic for w in creations], batch_size=1000)
        except IntegrityError as exc:  # e.g. two vNICs of the file swapping addresses
            self.importer.problem("vnics", f"the database refused it: {exc}")
            return
        log_bulk_writes(Vnic, created=[w.vnic for w in creations],
                        updated=[(w.old, w.vnic) for w in updates])
        for write in writes:
            if write.old is None:
                self.importer.report.changes.append(f"create {write.label}")
            else:
                changed = _changed_fields(write.old, write.vnic)
                self.importer.report.changes.append(f"update {write.label}: "
                                                    f"{', '.join(changed)}")

        def facts(vnic: Vnic | None) -> tuple | None:
            if vnic is None:
                return None
            return changes.vnic_facts(vnic, self.networks_by_id[vnic.network_id].overlay_rule_id)

        changes.vnics_written(
            [(facts(w.old), facts(w.vnic)) for w in writes],
            reason=f"state file import: {len(creations)} vNIC(s) created, "
                   f"{len(updates)} changed")


def _row_errors(vnic: Vnic) -> dict[str, list[str]]:
    """What ``full_clean`` says of one vNIC without the rules across rows: JSON types (alone,
    as ``StrictTypesMixin`` reports them), then the field validators and ``row_errors``."""
    errors = vnic.json_type_errors()
    if errors:
        return errors
    found: dict[str, list[str]] = {}
    try:
        # The node and network are the import's own, locked rows: no query to find them.
        vnic.clean_fields(exclude={"node", "network"})
    except ValidationError as exc:
        found = {name: list(messages) for name, messages in exc.message_dict.items()}
    for name, message in vnic.row_errors().items():
        found.setdefault(name, []).append(message)
    return found


def _copy(obj: models.Model) -> models.Model:
    """A copy of a loaded row to fill from the file, compared with the row afterwards."""
    return copy.copy(obj)


def _same(obj: models.Model, stored: models.Model | None) -> bool:
    """Whether ``obj`` holds exactly what ``stored`` holds (nothing to validate or write)."""
    return stored is not None and services.field_values(obj) == services.field_values(stored)


def _changed_fields(old: models.Model, new: models.Model) -> list[str]:
    """The fields that differ, named as ``services.save_changes`` names them."""
    before, after = services.field_values(old), services.field_values(new)
    return sorted(name for name in after if before.get(name) != after[name])


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


def _admin_overlay_unchanged(before: tuple, item: dict, rule_name: str,
                             addresses: dict[str, dict], hostnames: set[str]) -> bool:
    """Whether the admin overlay part of the file asks for nothing new: each value it names
    is the current one, and every node has its address already (none to assign)."""
    overlay, current = before
    if overlay is None or set(current) != hostnames:
        return False
    rule_id = OverlayRule.objects.filter(name=rule_name).values_list("pk", flat=True).first()
    if rule_id is None or overlay["overlay_rule_id"] != rule_id:
        return False
    for key in ("subnet", "vxlan_id", "vlan_id"):
        if item.get(key) is not None and not _equal(item[key], overlay[key]):
            return False
    for hostname, spec in addresses.items():
        for index, key in enumerate(ADDRESS_KEYS):
            if spec.get(key) is not None and not _equal(spec[key], current[hostname][index]):
                return False
    return True


def _equal(given: object, stored: object) -> bool:
    """A file's value equal to a stored one, of the same JSON type (true is not 1)."""
    return type(given) is type(stored) and given == stored


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
