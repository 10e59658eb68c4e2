"""Reading a node's facts over a transport (DESIGN 3); writes nothing.

Four commands over one connection: ``sysinfo``, ``nictagadm list``, the
platform's loaded overlay rules and the default route, parsed by
``nodes.facts``. Recording what they say is ``overlays.services.record_node_facts``;
the Celery task that does both is ``overlays.tasks.refresh_node``.
"""

from __future__ import annotations

from nodes.facts import (
    LOADED_RULES_PATH,
    FactsError,
    NodeFacts,
    parse_default_route,
    parse_loaded_rules,
    parse_nictags,
    parse_sysinfo,
)
from nodes.models import Node
from nodes.transports import Transport, open_transport

SYSINFO_COMMAND = "sysinfo"
NICTAGS_COMMAND = "nictagadm list -p -d '|'"
LOADED_RULES_COMMAND = f"cat {LOADED_RULES_PATH}"
ROUTE_COMMAND = "route -n get default"


def read_facts(transport: Transport) -> NodeFacts:
    """Run the four commands on an open transport and parse what they print."""
    sysinfo = transport.run(SYSINFO_COMMAND)
    if not sysinfo.ok:
        raise FactsError(f"sysinfo exited {sysinfo.exit_status}: {sysinfo.stderr.strip()[:300]}")
    tags = transport.run(NICTAGS_COMMAND)
    if not tags.ok:
        raise FactsError(f"nictagadm exited {tags.exit_status}: {tags.stderr.strip()[:300]}")
    rules = transport.run(LOADED_RULES_COMMAND)
    route = transport.run(ROUTE_COMMAND)
    return NodeFacts(
        sysinfo=parse_sysinfo(sysinfo.stdout),
        nic_tags=parse_nictags(tags.stdout),
        # No file: the platform has loaded no rule yet.
        loaded_overlay_rules=parse_loaded_rules(rules.stdout) if rules.ok else {},
        default_route_nic=parse_default_route(route.stdout) if route.ok else "",
    )


def read_node_facts(node: Node) -> NodeFacts:
    """Connect to the node and read its facts.

    Raises ``TransportError`` (``HostKeyError``, ``AuthenticationError``) when the
    node cannot be reached or refuses us, ``ImproperlyConfigured`` for a
    transport that is not set up, ``FactsError`` for output that makes no sense.
    """
    with open_transport(node.ssh_address) as transport:
        return read_facts(transport)
