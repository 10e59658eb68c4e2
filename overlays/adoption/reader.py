"""Reading a node's running overlay configuration over its transport (no writes anywhere)."""

from __future__ import annotations

from dataclasses import dataclass

from nodes.models import Node
from nodes.transports import TransportError, open_transport
from overlays.selectors import node_paths

VMADM_COMMAND = "vmadm lookup -j"


@dataclass(frozen=True)
class NodeFacts:
    """A known node as adoption needs it: who it is and where it sits."""

    hostname: str
    pdc: str
    admin_ip: str | None
    external_ip: str | None


@dataclass(frozen=True)
class NodeReading:
    """The raw texts read from one node; None where the file does not exist."""

    node: NodeFacts
    usbkey_config: str
    vmadm: str
    ike_preshared: str | None
    ipf_administration: str | None


def node_facts(node: Node) -> NodeFacts:
    return NodeFacts(hostname=node.hostname, pdc=node.pdc, admin_ip=node.admin_ip or None,
                     external_ip=node.external_ip or None)


def _text(data: bytes | None) -> str | None:
    return None if data is None else data.decode("utf-8", errors="replace")


def read_node(node: Node) -> NodeReading:
    """Fetch /usbkey/config, the VMs, ike.preshared and the administration ipf file.

    Raises ``TransportError`` when the node cannot be reached or ``vmadm`` fails: an
    adoption that could not see a node must not guess what it holds.
    """
    paths = node_paths()
    with open_transport(node.ssh_address) as transport:
        usbkey = _text(transport.read_file(paths["usbkey_config"])) or ""
        vmadm = transport.run(VMADM_COMMAND)
        if not vmadm.ok:
            raise TransportError(f"{node.hostname}: {VMADM_COMMAND} failed: "
                                 f"{vmadm.stderr.strip() or vmadm.exit_status}")
        return NodeReading(
            node=node_facts(node), usbkey_config=usbkey, vmadm=vmadm.stdout,
            ike_preshared=_text(transport.read_file(paths["ike_preshared"])),
            ipf_administration=_text(transport.read_file(paths["ipf_admin"])),
        )
