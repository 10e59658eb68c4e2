"""The service layer: every domain write goes through these functions.

They validate (``full_clean``), save inside a transaction and leave side effects
(syncing nodes) to the change hooks in ``overlays.changes``: each write is one
``changes.batch()``, so the nodes it affects are scheduled once, after commit.
Views, the API, the admin, the state-file import and commands call them, so each
rule lives once. Call them through this package (``services.save(obj)``);
``settings.CORE_HOOKS`` names ``overlays.services.save`` and ``.delete``.

Writes that other data depends on are completed here, in the same transaction:
a node that is created, deleted, renamed or moved to another PDC gets its IPSec
pair keys reconciled at once (a sync never writes keys), and what a refresh
read from a node is recorded by ``record_node_facts``.

Modules, bottom to top (each imports only those above it in this list):

- ``errors``: validation errors re-keyed for the argument that caused them;
- ``locking``: which rows a write locks (one table for every model), taken before validation;
- ``rows``: one row's write: validate, save or delete, track the node files it changes;
- ``keys``: IPSec pair keys (reconcile, rotate, adopt);
- ``rotation``: coordinated rotation: a pair's new key only when both ends answer, recorded;
- ``admin_overlay``: the admin overlay and the nodes' adminoverlay_0 addresses;
- ``writes``: ``save``, ``save_changes``, ``delete``: a row plus its follow-ups;
- ``networks``: networks in vDCs (delegation to vDC admins), a vDC's admins;
- ``firewall``: the firewall settings;
- ``facts``: what a refresh read from a node;
- ``adoption``: the record of an adoption, giving adopted networks to vDCs.

May import: Django, ``core``, ``nodes`` (models and facts), ``vdc.models``, the overlay
models and pure modules, ``overlays.selectors`` and ``overlays.changes`` (which alone talks
to the distribution). Never ``overlays.distribution``, ``overlays.tasks`` or any UI module
(API, admin, pages, command line).
"""

from overlays.services.admin_overlay import (
    FIRST_ADMIN_HOST,
    admin_overlay_assign,
    admin_overlay_init,
    admin_overlay_renumber,
    random_admin_subnet,
)
from overlays.services.adoption import give_adopted_network, record_adoption
from overlays.services.errors import renamed_errors
from overlays.services.facts import RecordedFacts, record_node_facts, record_node_unreachable
from overlays.services.firewall import firewall_update
from overlays.services.keys import adopt_pair_keys, reconcile_ipsec_keys, rotate_ipsec_keys
from overlays.services.networks import (
    AdminsSet,
    check_network_delegation,
    delete_network,
    save_network,
    vdc_set_admins,
    warnings_of,
)
from overlays.services.rotation import (
    PairResult,
    RotationReport,
    key_age,
    key_rows,
    pushed_nodes,
    rotate_pairs,
    select_keys,
)
from overlays.services.rows import field_values
from overlays.services.writes import (
    check_node_reachable,
    delete,
    keys_reconciled_by_caller,
    save,
    save_changes,
)

__all__ = [
    "FIRST_ADMIN_HOST",
    "AdminsSet",
    "PairResult",
    "RecordedFacts",
    "RotationReport",
    "admin_overlay_assign",
    "adopt_pair_keys",
    "admin_overlay_init",
    "admin_overlay_renumber",
    "check_network_delegation",
    "check_node_reachable",
    "delete",
    "delete_network",
    "field_values",
    "key_age",
    "keys_reconciled_by_caller",
    "key_rows",
    "pushed_nodes",
    "firewall_update",
    "give_adopted_network",
    "random_admin_subnet",
    "reconcile_ipsec_keys",
    "record_adoption",
    "record_node_facts",
    "record_node_unreachable",
    "renamed_errors",
    "rotate_ipsec_keys",
    "rotate_pairs",
    "save",
    "save_changes",
    "save_network",
    "select_keys",
    "vdc_set_admins",
    "warnings_of",
]
