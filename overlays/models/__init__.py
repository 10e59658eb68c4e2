"""The overlay models, one module per concept; import them from here.

==================  ===============================================================
module              holds
==================  ===============================================================
``rules``           ``OverlayRule``: the ``dladm create-overlay`` template of a
                    group of overlays, and the nodes that carry it
``networks``        ``VirtualNetwork`` (one segment of a rule) and ``Vnic``, with
                    their vDC-restricted querysets
``admin_overlay``   ``AdminOverlay`` and ``AdminOverlayAddress`` (each node's
                    adminoverlay_0), and the admin overlay's defaults
``security``        ``FirewallSettings`` (the allow-list) and ``IpsecKey``
``management``      the management server's sources and PDC, and the guards that
                    keep a change from locking it out of a node (not a model)
``adoption``        ``AdoptionRecord``: who adopted which nodes, when, what came in
``rotation``        ``KeyRotation``: each pair's key rotation, done or deferred
``_common``         helpers the modules above share
==================  ===============================================================

Single-object and cross-object invariants live in each model's ``clean()`` so the
admin, the API, the state-file import and the command line all give the same
errors; ``overlays.services`` calls ``full_clean()`` before every save.

Within the package the modules import one way: ``rules`` <- ``networks`` <-
``admin_overlay``; ``management`` <- ``security``. May import ``core``, ``nodes.models``,
``vdc.models`` and ``vdc.idranges``, the pure overlay modules (``rulestring``,
``snapshot``, ...) and ``overlays.secretbox``; never the selectors, services,
changes, distribution or anything above them.
"""

from overlays.models.admin_overlay import (
    ADMIN_OVERLAY_MTU,
    ADMIN_OVERLAY_RULE,
    ADMIN_OVERLAY_VLAN_ID,
    ADMIN_OVERLAY_VXLAN_ID,
    AdminOverlay,
    AdminOverlayAddress,
)
from overlays.models.adoption import AdoptionRecord
from overlays.models.networks import VirtualNetwork, VirtualNetworkQuerySet, Vnic, VnicQuerySet
from overlays.models.rotation import KeyRotation, RotationOutcome
from overlays.models.rules import (  # the two validators: migration 0001 names them here
    IANA_VXLAN_PORT,
    OverlayRule,
    _validate_arp_file,
    _validate_rule_name,
)
from overlays.models.security import FirewallSettings, IpsecKey

__all__ = [
    "ADMIN_OVERLAY_MTU",
    "ADMIN_OVERLAY_RULE",
    "ADMIN_OVERLAY_VLAN_ID",
    "ADMIN_OVERLAY_VXLAN_ID",
    "IANA_VXLAN_PORT",
    "AdminOverlay",
    "AdminOverlayAddress",
    "AdoptionRecord",
    "FirewallSettings",
    "IpsecKey",
    "KeyRotation",
    "OverlayRule",
    "RotationOutcome",
    "VirtualNetwork",
    "VirtualNetworkQuerySet",
    "Vnic",
    "VnicQuerySet",
    "_validate_arp_file",
    "_validate_rule_name",
]
