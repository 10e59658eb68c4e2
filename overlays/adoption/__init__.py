"""Adopting overlays that the reference tool (``esdc-overlay``) already configured (issue 11).

``parsers`` (pure: the files' texts to facts with their lines), ``reader`` (one node's
files over its transport), ``build`` (pure: facts to a version 2 state file, conflicts and
notes, pair keys) and ``apply`` (the state-file import plus ``services.adopt_pair_keys``
in one transaction). Sits just above ``overlays.statefile``; only the UI layer imports it.
"""

from overlays.adoption.apply import (
    AdoptionChanged,
    AdoptionRefused,
    AdoptionResult,
    adopted_networks,
    apply_adoption,
    plan_adoption,
    read_cluster,
    result_document,
)
from overlays.adoption.build import Adoption, Finding, build_adoption

__all__ = [
    "Adoption",
    "AdoptionChanged",
    "AdoptionRefused",
    "AdoptionResult",
    "Finding",
    "adopted_networks",
    "apply_adoption",
    "build_adoption",
    "plan_adoption",
    "read_cluster",
    "result_document",
]
