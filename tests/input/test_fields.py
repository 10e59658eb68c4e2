"""Every bad field value, through the API and through the state-file import: the same field,
the same words (the model layer's), and nothing changed.

Each case names a kind of object, the bad values, the field that reports them and words of
the message. It runs twice: as an API request (a new object, or a change to one of the demo
cluster's), and as the demo state file with the same values, imported over the demo cluster.
"""

from __future__ import annotations

import copy
import subprocess
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.input.helpers import import_problems

pytestmark = pytest.mark.django_db

# A new object of each kind that the demo cluster accepts: the cases spoil one field of it.
NEW = {
    "overlay_rules": {"name": "evil"},
    "networks": {"name": "acme-new", "vdc": "acme", "overlay_rule": "customers",
                 "vxlan_id": 150, "vlan_id": 12, "network": "192.168.50.0/24"},
    "vnics": {"vm_name": "vm9", "node": "cn01.prague", "network": "acme-web",
              "mac": "02:00:00:00:09:01", "ip": "192.168.10.90"},
    "nodes": {"hostname": "cn79.prague", "pdc": "prague"},
    "vdcs": {"name": "initech"},
}
COLLECTIONS = {"overlay_rules": "/api/v1/overlay-rules/", "networks": "/api/v1/networks/",
               "vnics": "/api/v1/vnics/", "nodes": "/api/v1/nodes/", "vdcs": "/api/v1/vdcs/"}
# Existing objects a case may change instead: (index in the demo state file, API path).
EXISTING = {
    "lab": ("overlay_rules", 1, "/api/v1/overlay-rules/lab/"),
    "cn01": ("nodes", 0, "/api/v1/nodes/cn01.prague/"),
    "acme-web": ("networks", 0, "/api/v1/networks/acme-web/"),
    "acme": ("vdcs", 0, "/api/v1/vdcs/acme/"),
}
# The single objects: changed with PUT, found at the section's path in the file.
SINGLE = {"admin_overlay": ("/api/v1/admin-overlay/", {}),
          "firewall": ("/api/v1/firewall/", {"enabled": True, "allowed_sources": ["192.0.2.0/28"]})}


def _ed25519_line() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH,
                            serialization.PublicFormat.OpenSSH).decode()


KEY = _ed25519_line()


@dataclass(frozen=True)
class Bad:
    id: str
    section: str  # where the object lives in the state file
    values: dict[str, Any]
    field: str  # the key that reports it, in the API and in the file
    words: str  # part of the message, the same in both
    existing: str | None = None  # a key of EXISTING: change that object instead of a new one
    api_field: str | None = None  # where the API reports it, when it differs (list items)
    # The import's words when it refuses the value before the model sees it: the keys it
    # looks objects up by (names, a vNIC's MAC) must be non-empty strings.
    import_words: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)


ARP = "/opt/custom/networking"
CASES = [
    # --- a rule's ARP table: only a .json file directly in the ARP directory ---------------
    Bad("arp-usbkey-config", "overlay_rules", {"arp_file": "/usbkey/config"}, "arp_file",
        f"must be a file directly in {ARP}/"),
    Bad("arp-etc-shadow", "overlay_rules", {"arp_file": "/etc/shadow"}, "arp_file",
        "must be a file directly in"),
    Bad("arp-authorized-keys", "overlay_rules", {"arp_file": "/root/.ssh/authorized_keys"},
        "arp_file", "must be a file directly in"),
    Bad("arp-preshared-keys", "overlay_rules",
        {"arp_file": "/opt/custom/etc/ipsec/ike.preshared"}, "arp_file",
        "must be a file directly in", existing="lab"),
    Bad("arp-dot-dot", "overlay_rules", {"arp_file": f"{ARP}/../../../etc/shadow.json"},
        "arp_file", "without '.', '..' or '//'"),
    Bad("arp-subdirectory", "overlay_rules", {"arp_file": f"{ARP}/sub/evil.json"}, "arp_file",
        "must be a file directly in"),
    Bad("arp-not-json", "overlay_rules", {"arp_file": f"{ARP}/evil.conf"}, "arp_file",
        "end in .json"),
    Bad("arp-hidden-file", "overlay_rules", {"arp_file": f"{ARP}/.evil.tmp-0.json"}, "arp_file",
        "start with a letter or digit"),
    Bad("arp-command-substitution", "overlay_rules", {"arp_file": f"{ARP}/$(id).json"},
        "arp_file", "dollar signs and backquotes are not allowed"),
    Bad("arp-backquotes", "overlay_rules", {"arp_file": f"{ARP}/`id`.json"}, "arp_file",
        "dollar signs and backquotes are not allowed"),
    Bad("arp-blank", "overlay_rules", {"arp_file": f"{ARP}/a b.json"}, "arp_file",
        "must not contain whitespace"),
    Bad("arp-comma", "overlay_rules", {"arp_file": f"{ARP}/a,b.json"}, "arp_file",
        "must not contain a comma"),
    Bad("arp-of-another-rule", "overlay_rules", {"arp_file": f"{ARP}/customers_overlay.json"},
        "arp_file", "Rule customers already writes"),
    Bad("arp-a-managed-file", "overlay_rules", {"arp_file": f"{ARP}/ipf-admin.json"},
        "arp_file", "is the node's ipf_admin file",
        settings={"OVERLAY_PATHS": {"ipf_admin": f"{ARP}/ipf-admin.json"}}),
    # --- names match fully: a trailing newline is not part of any name ----------------------
    Bad("hostname-newline", "nodes", {"hostname": "cn79.prague\n"}, "hostname",
        "“cn79.prague\\n” is not a valid host name"),
    Bad("network-name-newline", "networks", {"name": "acme-new\n"}, "name",
        "Use letters, digits"),
    Bad("vdc-name-newline", "vdcs", {"name": "initech\n"}, "name", "Use letters, digits"),
    Bad("rule-name-newline", "overlay_rules", {"name": "evil\n"}, "name", "contains '\\n'"),
    Bad("rule-node-newline", "overlay_rules", {"nodes": ["cn01.prague\n"]}, "nodes",
        "Not host names"),
    Bad("ssh-user-newline", "nodes", {"ssh_user": "root\n"}, "ssh_user", "is not a user name",
        existing="cn01"),
    Bad("ssh-host-newline", "nodes", {"ssh_host": "127.0.0.1\nevil"}, "ssh_host",
        "neither a host name nor an IP address", existing="cn01"),
    Bad("pdc-two-lines", "nodes", {"pdc": "prague\nbrno"}, "pdc",
        "one line of printable characters"),
    # --- JSON booleans, floats and strings are not integers ---------------------------------
    Bad("port-true", "overlay_rules", {"port": True}, "port", "A valid integer is required."),
    Bad("port-fraction", "overlay_rules", {"port": 4801.5}, "port",
        "A valid integer is required."),
    Bad("port-float", "overlay_rules", {"port": 4801.0}, "port", "A valid integer is required."),
    Bad("port-string", "overlay_rules", {"port": "4801"}, "port",
        "A valid integer is required."),
    Bad("mtu-false", "overlay_rules", {"mtu": False}, "mtu", "A valid integer is required.",
        existing="lab"),
    Bad("vxlan-true", "networks", {"vxlan_id": True}, "vxlan_id",
        "A valid integer is required."),
    Bad("vlan-float", "networks", {"vlan_id": 11.0}, "vlan_id", "A valid integer is required.",
        existing="acme-web"),
    Bad("ssh-port-true", "nodes", {"ssh_port": True}, "ssh_port",
        "A valid integer is required."),
    Bad("network-limit-fraction", "vdcs", {"network_limit": 2.5}, "network_limit",
        "A valid integer is required.", existing="acme"),
    Bad("admin-vlan-true", "admin_overlay", {"vlan_id": True}, "vlan_id",
        "A valid integer is required."),
    Bad("admin-vxlan-float", "admin_overlay", {"vxlan_id": 2.0}, "vxlan_id",
        "A valid integer is required."),
    # --- and the other JSON types: booleans are true or false, text is a string -------------
    Bad("restrict-one", "vdcs", {"vxlan_restrict": 1}, "vxlan_restrict",
        "Must be a valid boolean."),
    Bad("firewall-enabled-string", "firewall", {"enabled": "yes"}, "enabled",
        "Must be a valid boolean."),
    Bad("vm-name-number", "vnics", {"vm_name": 5}, "vm_name", "Not a valid string."),
    Bad("mac-number", "vnics", {"mac": 20820}, "mac", "Not a valid string.",
        import_words="must be a non-empty string."),
    Bad("pdc-number", "nodes", {"pdc": 1}, "pdc", "Not a valid string."),
    Bad("source-number", "firewall", {"allowed_sources": [5]}, "allowed_sources",
        "Not a valid string.", api_field="allowed_sources[0]"),
    # --- pinned host keys are parsed when stored -------------------------------------------
    Bad("host-key-command", "nodes", {"ssh_host_key": "ssh-ed25519 $(reboot)"},
        "ssh_host_key", "key data is damaged", existing="cn01"),
    Bad("host-key-truncated", "nodes", {"ssh_host_key": KEY[:-8]}, "ssh_host_key",
        "key data is damaged", existing="cn01"),
    Bad("host-key-wrong-type", "nodes", {"ssh_host_key": "ssh-rsa " + KEY.split()[1]},
        "ssh_host_key", "key data is damaged", existing="cn01"),
    Bad("host-key-unknown-type", "nodes", {"ssh_host_key": "ssh-dss AAAAB3NzaC1kc3M="},
        "ssh_host_key", "is not an SSH public key"),
    Bad("host-key-two-lines", "nodes", {"ssh_host_key": f"{KEY}\n{KEY}"}, "ssh_host_key",
        "one line of printable characters", existing="cn01"),
]


def _api_request(case: Bad) -> tuple[str, str, dict[str, Any]]:
    if case.section in SINGLE:
        path, base = SINGLE[case.section]
        return "put", path, {**base, **case.values}
    if case.existing:
        _, _, path = EXISTING[case.existing]
        return "patch", path, dict(case.values)
    return "post", COLLECTIONS[case.section], {**NEW[case.section], **case.values}


def _spoiled_file(doc: dict[str, Any], case: Bad) -> tuple[dict[str, Any], str]:
    """The demo state file with the case's values, and the path that must report them."""
    doc = copy.deepcopy(doc)
    if case.section in SINGLE:
        doc[case.section].update(case.values)
        return doc, f"{case.section}.{case.field}"
    if case.existing:
        section, index, _ = EXISTING[case.existing]
        doc[section][index].update(case.values)
    else:
        doc[case.section].append({**NEW[case.section], **case.values})
        index = len(doc[case.section]) - 1
    return doc, f"{case.section}[{index}].{case.field}"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_the_api_refuses_it_on_the_field_in_the_models_words(case, su, unchanged, settings):
    for name, value in case.settings.items():
        setattr(settings, name, value)
    method, path, body = _api_request(case)

    response = getattr(su, method)(path, body, format="json")

    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    field = case.api_field or case.field
    assert case.words in " ".join(errors.get(field, [])), errors
    unchanged()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_the_import_refuses_it_at_its_path_in_the_models_words(case, demo_state, unchanged,
                                                                 settings):
    for name, value in case.settings.items():
        setattr(settings, name, value)
    doc, path = _spoiled_file(demo_state, case)

    problems = import_problems(doc)

    assert (case.import_words or case.words) in " ".join(problems.get(path, [])), problems
    unchanged()


def test_a_valid_host_key_is_stored_as_one_line_and_used_by_the_transport(su, demo_cluster):
    """The other side of the host-key cases: what ssh-keyscan prints is accepted as it is."""
    from nodes.models import Node
    from nodes.transports.ssh import parse_host_key

    keyscan = f"[127.0.0.1]:2201 {KEY} root@cn01\n"
    response = su.patch("/api/v1/nodes/cn01.prague/", {"ssh_host_key": keyscan}, format="json")

    assert response.status_code == 200, response.content
    stored = Node.objects.get(hostname="cn01.prague").ssh_host_key
    assert stored == keyscan.strip()
    assert parse_host_key(stored).get_name() == "ssh-ed25519"


def test_keys_ssh_keygen_writes_are_accepted_for_every_known_type(tmp_path):
    """The types SSH_KEY_TYPES names are the ones a real sshd offers and the check reads."""
    from core.validators import parse_ssh_public_key

    for kind, bits in (("ed25519", None), ("ecdsa", "384"), ("rsa", "2048")):
        key = tmp_path / kind
        command = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(key)]
        if bits:
            command += ["-b", bits]
        try:
            subprocess.run(command, check=True, capture_output=True)
        except FileNotFoundError:
            pytest.skip("ssh-keygen is not installed")
        assert parse_ssh_public_key(key.with_suffix(".pub").read_text())[1]
