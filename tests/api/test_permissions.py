"""Permission matrix: every endpoint x method x role, with the status code each role gets,
and no response ever carrying another vDC's data or any secret.

The demo cluster plus a few spare objects (to delete) is loaded once for this module;
every test runs in a transaction that is rolled back, so the rows are independent.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.management import call_command

from tests.api.conftest import (
    ROLES,
    distribution_tasks_present,
    make_users,
)
from tests.conftest import DEMO_FILE
from tests.console.conftest import make_auditor

# The auditor (issue 12): every read the superuser gets, every write refused with a 403.
MATRIX_ROLES = (*ROLES, "auditor")
SAFE = ("GET", "HEAD", "OPTIONS")

API = "/api/v1"
TASKS = "tasks"  # the superuser row needs the distribution tasks


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    expected: dict[str, int]
    body: Any = None
    needs: str = ""
    data_response: bool = True  # False for the static schema and docs pages
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def roles(superuser: int, alice: int, bob: int, plain: int = 403, anonymous: int = 401) -> dict:
    return {"superuser": superuser, "alice": alice, "bob": bob, "plain": plain,
            "anonymous": anonymous}


def expected_status(case: Case, role: str) -> int:
    """The auditor reads what the superuser reads and is refused every write."""
    if role == "auditor" and "auditor" not in case.expected:
        return case.expected["superuser"] if case.method in SAFE else 403
    return case.expected[role]


def matrix_users() -> dict:
    return {**make_users(), "auditor": make_auditor("audrey")}


def su_only(status: int) -> dict:
    return roles(status, 403, 403)


NODE_BODY = {"hostname": "cn01.prague", "pdc": "prague", "admin_ip": "10.0.0.11",
             "external_ip": "203.0.113.11", "nic_tags": ["admin", "external"],
             "default_route_nic": "external0", "ssh_host": "127.0.0.1", "ssh_port": 2201,
             "ssh_user": "root", "status": "online"}
RULE_BODY = {"name": "customers", "port": 4790, "listen_ip": "0.0.0.0", "mtu": 1450,
             "nodes": "all"}
NETWORK_BODY = {"name": "acme-web", "vdc": "acme", "overlay_rule": "customers", "vxlan_id": 100,
                "vlan_id": 10, "network": "192.168.10.0/24", "gateway": "192.168.10.1",
                "mtu": 1300}
VDC_BODY = {"name": "acme", "admins": ["alice"], "vxlan_allowed": "100-199",
            "vlan_allowed": "10-20", "network_limit": 12}
VNIC_BODY = {"vm_name": "web01", "node": "cn01.prague", "network": "acme-web",
             "mac": "02:08:20:aa:00:01", "ip": "192.168.10.21"}

CASES = [
    # nodes: superusers only
    Case("GET", "/nodes/", su_only(200)),
    Case("POST", "/nodes/", su_only(201), {**NODE_BODY, "hostname": "cn05.prague",
                                           "admin_ip": "10.0.0.15", "external_ip": None}),
    Case("GET", "/nodes/cn01.prague/", su_only(200)),
    Case("PUT", "/nodes/cn01.prague/", su_only(200), NODE_BODY),
    Case("PATCH", "/nodes/cn01.prague/", su_only(200), {"status": "maintenance"}),
    Case("DELETE", "/nodes/cn99.spare/", su_only(204)),
    Case("POST", "/nodes/cn01.prague/refresh/", su_only(202), needs=TASKS),
    Case("POST", "/nodes/cn01.prague/sync/", su_only(202), needs=TASKS),
    Case("GET", "/nodes/cn21.brno/files/", su_only(200)),
    Case("GET", "/nodes/cn21.brno/requirements/", su_only(200)),
    # rules: vDC admins read, superusers write
    Case("GET", "/overlay-rules/", roles(200, 200, 200)),
    Case("POST", "/overlay-rules/", su_only(201), {"name": "extra"}),
    Case("GET", "/overlay-rules/customers/", roles(200, 200, 200)),
    Case("PUT", "/overlay-rules/customers/", su_only(200), RULE_BODY),
    Case("PATCH", "/overlay-rules/customers/", su_only(200), {"mtu": 1450}),
    Case("DELETE", "/overlay-rules/spare/", su_only(204)),
    Case("POST", "/overlay-rules/customers/sync/", su_only(202), needs=TASKS),
    # networks: vDC admins inside their vDCs; another vDC's network is a 404
    Case("GET", "/networks/", roles(200, 200, 200)),
    Case("POST", "/networks/", roles(201, 201, 400),
         {"name": "acme-new", "vdc": "acme", "overlay_rule": "customers", "vxlan_id": 150,
          "vlan_id": 12, "network": "192.168.50.0/24"}),
    Case("POST", "/networks/", roles(201, 400, 201),
         {"name": "globex-new", "vdc": "globex", "overlay_rule": "customers", "vxlan_id": 250,
          "vlan_id": 12, "network": "172.16.50.0/24"}),
    Case("GET", "/networks/acme-web/", roles(200, 200, 404)),
    Case("GET", "/networks/globex-app/", roles(200, 404, 200)),
    Case("GET", "/networks/lab-net/", roles(200, 404, 404)),
    Case("PUT", "/networks/acme-web/", roles(200, 200, 404), NETWORK_BODY),
    Case("PATCH", "/networks/acme-web/", roles(200, 200, 404), {"mtu": 1300}),
    Case("PATCH", "/networks/globex-app/", roles(200, 404, 200), {"mtu": 1300}),
    Case("DELETE", "/networks/acme-spare/", roles(204, 204, 404)),
    Case("DELETE", "/networks/acme-web/", roles(409, 409, 404)),
    # vNICs: vDC admins on their networks
    Case("GET", "/vnics/", roles(200, 200, 200)),
    Case("POST", "/vnics/", roles(201, 201, 400),
         {"vm_name": "web03", "node": "cn02.prague", "network": "acme-web",
          "mac": "02:08:20:aa:00:09", "ip": "192.168.10.13"}),
    Case("GET", "/vnics/{vnic:web01}/", roles(200, 200, 404)),
    Case("GET", "/vnics/{vnic:app01}/", roles(200, 404, 200)),
    Case("PUT", "/vnics/{vnic:web01}/", roles(200, 200, 404), VNIC_BODY),
    Case("PATCH", "/vnics/{vnic:web01}/", roles(200, 200, 404), {"ip": "192.168.10.22"}),
    Case("DELETE", "/vnics/{vnic:web02}/", roles(204, 204, 404)),
    # vDCs: admins read their own, superusers manage
    Case("GET", "/vdcs/", roles(200, 200, 200)),
    Case("POST", "/vdcs/", su_only(201), {"name": "newco", "vxlan_allowed": "600-699",
                                          "vlan_allowed": "0-10", "admins": ["carol"]}),
    Case("GET", "/vdcs/acme/", roles(200, 200, 404)),
    Case("GET", "/vdcs/globex/", roles(200, 404, 200)),
    Case("PUT", "/vdcs/acme/", su_only(200), VDC_BODY),
    Case("PATCH", "/vdcs/acme/", su_only(200), {"description": "ACME Corp."}),
    Case("DELETE", "/vdcs/initech/", su_only(204)),
    # admin overlay, firewall, keys: superusers only
    Case("GET", "/admin-overlay/", su_only(200)),
    Case("PUT", "/admin-overlay/", su_only(200), {"subnet": "10.44.44.0/24"}),
    Case("GET", "/firewall/", su_only(200)),
    Case("PUT", "/firewall/", su_only(200), {"enabled": True,
                                             "allowed_sources": ["192.0.2.0/28"]}),
    Case("PATCH", "/firewall/", su_only(200), {"enabled": False}),
    Case("GET", "/ipsec-keys/", su_only(200)),
    Case("GET", "/ipsec-keys/{key:cn21.brno}/", su_only(200)),
    Case("POST", "/ipsec-keys/{key:cn21.brno}/rotate/", su_only(200)),
    Case("POST", "/ipsec-keys/rotate/", su_only(200)),
    Case("POST", "/ipsec-keys/reconcile/", su_only(200)),
    # actions
    Case("POST", "/sync/", su_only(202), needs=TASKS),
    Case("GET", "/tasks/{task}/", su_only(200)),
    Case("GET", "/requirements/", su_only(200)),
    Case("GET", "/mtu/?mtu=1400", roles(200, 200, 200)),
    Case("GET", "/state/", su_only(200)),
    Case("POST", "/state/import/?dry_run=true", su_only(200), "DEMO"),
    Case("GET", "/me/", roles(200, 200, 200, plain=200)),
    Case("GET", "/audit/?object=overlays.vnic&since=2020-01-01", su_only(200)),
    # public documentation
    Case("GET", "/schema/", roles(200, 200, 200, plain=200, anonymous=200),
         data_response=False),
    Case("GET", "/docs/", roles(200, 200, 200, plain=200, anonymous=200),
         data_response=False),
]

# Strings that identify data outside a role's view. Node addresses, the admin overlay and
# the global lab network are for superusers only.
INFRASTRUCTURE = ["10.0.0.1", "10.1.0.21", "203.0.113.", "198.51.100.21", "10.44.44.",
                  "02:e5:dc:", "lab-net", "10.77.0.", "02:08:20:cc:", "192.0.2.0/28"]
ACME = ["acme", "alice", "192.168.10.", "192.168.11.", "02:08:20:aa:", "web01", "web02",
        "db01", "fd00:ac::"]
GLOBEX = ["globex", "bob", "172.16.20.", "02:08:20:bb:", "app01", "app02"]
FORBIDDEN = {
    "superuser": [],
    "auditor": [],
    "alice": GLOBEX + INFRASTRUCTURE,
    "bob": ACME + INFRASTRUCTURE,
    "plain": ACME + GLOBEX + INFRASTRUCTURE,
    "anonymous": ACME + GLOBEX + INFRASTRUCTURE,
}


@pytest.fixture(scope="module")
def matrix_db(django_db_setup, django_db_blocker, tmp_path_factory):
    """The demo cluster and spare objects, committed once for the module, flushed after."""
    from django.test import override_settings

    from nodes.models import Node
    from overlays import services
    from overlays.models import OverlayRule, VirtualNetwork
    from overlays.statefile import import_state
    from vdc.models import Vdc

    quiet = override_settings(OVERLAY_AUTO_SYNC=False, OVERLAY_TRANSPORT="local",
                              OVERLAY_LOCAL_ROOT=tmp_path_factory.mktemp("matrix-nodes"))
    with django_db_blocker.unblock(), quiet:
        import_state(json.loads(DEMO_FILE.read_text()))
        make_users()
        services.save(Node(hostname="cn99.spare", pdc="ostrava", admin_ip="10.9.0.99"))
        services.save(OverlayRule(name="spare", all_nodes=True))
        services.save(Vdc(name="initech", vxlan_allowed="700-799", vlan_allowed="0-10"))
        services.save(VirtualNetwork(name="acme-spare", vdc=Vdc.objects.get(name="acme"),
                                     overlay_rule=OverlayRule.objects.get(name="customers"),
                                     vxlan_id=101, vlan_id=10, network="192.168.60.0/24"))
        services.reconcile_ipsec_keys()
        yield
        call_command("flush", interactive=False, verbosity=0)


def _resolve(path: str) -> str:
    from django.db.models import Q

    from overlays.models import IpsecKey, Vnic

    def replace(match: re.Match) -> str:
        kind, _, name = match.group(1).partition(":")
        if kind == "vnic":
            return str(Vnic.objects.get(vm_name=name).pk)
        if kind == "key":
            pairs = Q(node_a__hostname=name) | Q(node_b__hostname=name)
            return str(IpsecKey.objects.filter(pairs).order_by("pk").first().pk)
        if kind == "task":
            return str(uuid.uuid4())
        raise AssertionError(kind)

    return re.sub(r"\{([a-z]+(?::[^}]*)?)\}", replace, path)


def _secrets() -> list[str]:
    from overlays.models import IpsecKey

    keys = list(IpsecKey.objects.all())
    assert keys, "the demo cluster spans two PDCs, so it has IPSec keys"
    return [k.secret for k in keys] + [k.secret_encrypted for k in keys]


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [str(k) for k in value] + [k for v in value.values() for k in _keys(v)]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []


def _skip_reason(case: Case, role: str) -> str:
    if role != "superuser":
        return ""
    if case.needs == TASKS and not distribution_tasks_present():
        return "distribution tasks not present yet"
    return ""


@pytest.mark.parametrize("role", MATRIX_ROLES)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_permission_matrix(case: Case, role: str, matrix_db, db):
    reason = _skip_reason(case, role)
    if reason:
        pytest.skip(reason)
    from rest_framework.test import APIClient

    user = matrix_users()[role]
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    body = json.loads(DEMO_FILE.read_text()) if case.body == "DEMO" else case.body
    path = API + _resolve(case.path)

    response = client.generic(case.method, path, json.dumps(body) if body is not None else "",
                              content_type="application/json")

    text = response.content.decode()
    assert response.status_code == expected_status(case, role), text[:500]
    if role == "auditor" and response.status_code == 403:
        assert "Auditors have read-only access" in text
    for secret in _secrets():
        assert secret not in text
    if response.get("Content-Type", "").startswith("application/json"):
        payload = json.loads(text) if text else {}
        assert not [k for k in _keys(payload) if "secret" in k.lower()]
        if response.status_code >= 400:
            assert isinstance(payload.get("detail"), str) and payload["detail"]
    if case.data_response:
        sent = path + json.dumps(body)
        leaked = [s for s in FORBIDDEN[role] if s in text and s not in sent]
        assert not leaked, f"{role} sees {leaked}: {text[:500]}"


BROWSABLE = ["/networks/", "/networks/acme-web/", "/networks/globex-app/", "/vnics/",
             "/vnics/{vnic:web01}/", "/vnics/{vnic:app01}/", "/vdcs/", "/overlay-rules/"]


@pytest.mark.parametrize("role", ["alice", "bob"])
@pytest.mark.parametrize("path", BROWSABLE)
def test_browsable_api_pages_leak_nothing_either(path: str, role: str, matrix_db, db):
    """The HTML pages (with their forms' choices) hold no more than the JSON."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(make_users()[role])
    full_path = API + _resolve(path)

    response = client.get(full_path, HTTP_ACCEPT="text/html")

    assert response["Content-Type"].startswith("text/html")
    text = response.content.decode()
    assert not [s for s in FORBIDDEN[role] if s in text and s not in full_path]
    for secret in _secrets():
        assert secret not in text
