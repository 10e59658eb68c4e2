"""Coordinated IPSec key rotation: a pair gets a new key only when both its ends answer.

``rotate_pairs`` is the write. It is given which nodes could not be reached (the caller
probed them over the transport just before: ``overlays.tasks.rotate_keys``), and in one
transaction, for each pair:

* both ends reachable: a new secret, ``rotated_at`` now, a ``KeyRotation`` "done", and
  both ends' IPSec files requested in the same batch (``changes.keys_changed``);
* an end not reachable (or not probed): nothing changes for the pair but a
  ``KeyRotation`` "deferred" naming why; the pair keeps its key, so its two ends agree.

Each key is saved on its own (not in bulk), so the audit trail records the rotation
(``rotated_at``; the secret is an excluded field) with who asked and through what.
``select_keys`` picks pairs by pair, node or all, and by age; ``key_age`` says how old a
key is and ``key_rows`` lists the pairs for people (CLI, pages). Never returns, logs or
records a secret.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from nodes.models import Node
from overlays import changes, secretbox
from overlays.models import IpsecKey, KeyRotation, RotationOutcome

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PairResult:
    """What became of one pair's rotation."""

    key_id: int
    node_a: str
    node_b: str
    outcome: str  # RotationOutcome
    reason: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"key": self.key_id, "node_a": self.node_a, "node_b": self.node_b,
                "outcome": self.outcome, "reason": self.reason}


@dataclass
class RotationReport:
    results: list[PairResult] = field(default_factory=list)

    @property
    def done(self) -> list[PairResult]:
        return [r for r in self.results if r.outcome == RotationOutcome.DONE]

    @property
    def deferred(self) -> list[PairResult]:
        return [r for r in self.results if r.outcome == RotationOutcome.DEFERRED]

    def as_dict(self) -> dict[str, object]:
        return {"rotated": len(self.done), "deferred": len(self.deferred),
                "pairs": [r.as_dict() for r in self.results]}


def key_age(key: IpsecKey, now: datetime | None = None) -> timedelta:
    """How long the pair has had its current secret (since its rotation, else creation)."""
    since = key.rotated_at or key.created_at
    return (now or timezone.now()) - since


def key_rows() -> list[dict[str, object]]:
    """Every pair key as plain data for people: pair, PDCs, age, dates, last attempt."""
    now = timezone.now()
    latest = (KeyRotation.objects.filter(key=OuterRef("pk"))
              .order_by("-requested_at", "-id").values("id")[:1])
    keys = list(IpsecKey.objects.select_related("node_a", "node_b")
                .annotate(last_attempt_id=Subquery(latest)))
    attempts = KeyRotation.objects.in_bulk(
        [k.last_attempt_id for k in keys if k.last_attempt_id is not None])
    rows = []
    for key in keys:
        attempt = attempts.get(key.last_attempt_id)
        rows.append({
            "id": key.pk,
            "node_a": key.node_a.hostname, "pdc_a": key.node_a.pdc,
            "node_b": key.node_b.hostname, "pdc_b": key.node_b.pdc,
            "age_days": round(key_age(key, now).total_seconds() / 86400, 1),
            "created_at": key.created_at.isoformat(),
            "rotated_at": key.rotated_at.isoformat() if key.rotated_at else None,
            "last_attempt": None if attempt is None else {
                "at": attempt.requested_at.isoformat(), "outcome": attempt.outcome,
                "by": attempt.requested_by, "reason": attempt.reason},
        })
    return rows


def select_keys(*, pair: tuple[str, str] | None = None, node: str | None = None,
                every: bool = False, older_than_days: float | None = None) -> list[IpsecKey]:
    """The pair keys one rotation covers: a pair (two host names), a node's pairs, or every
    pair, keeping those whose key is at least ``older_than_days`` days old.

    ValidationError for an unknown host name, a pair with no key, or no selection.
    """
    keys = IpsecKey.objects.select_related("node_a", "node_b").order_by("pk")
    if pair is not None:
        names = list(pair)
        found = dict(Node.objects.filter(hostname__in=names).values_list("hostname", "pk"))
        missing = [name for name in names if name not in found]
        if missing:
            raise ValidationError({"pair": f"No node named {', '.join(missing)}."})
        a, b = sorted(found[name] for name in names)
        keys = keys.filter(node_a_id=a, node_b_id=b)
        if not keys.exists():
            raise ValidationError({"pair": f"{names[0]} and {names[1]} have no IPSec key: they "
                                           "are in the same PDC, or it is one node."})
    elif node is not None:
        node_id = Node.objects.filter(hostname=node).values_list("pk", flat=True).first()
        if node_id is None:
            raise ValidationError({"node": f"No node named {node}."})
        keys = keys.filter(Q(node_a_id=node_id) | Q(node_b_id=node_id))
    elif not every:
        raise ValidationError("Say which keys to rotate: a pair, a node, or all.")
    selected = list(keys)
    if older_than_days is not None:
        if older_than_days < 0:
            raise ValidationError({"older_than": "Give a number of days, 0 or more."})
        now = timezone.now()
        limit = timedelta(days=older_than_days)
        selected = [key for key in selected if key_age(key, now) >= limit]
    return selected


@transaction.atomic
def rotate_pairs(keys: Iterable[IpsecKey], *, unreachable: Mapping[int, str],
                 requested_by: str = "", entry_point: str = "") -> RotationReport:
    """Rotate each pair whose two ends were found reachable; defer and record the others.

    ``unreachable``: node id -> "" (reachable) or why it is not; a node missing from it
    counts as not probed, and its pairs are deferred. Refused
    (``secretbox.SecretsKeyError``) when OVERLAY_SECRETS_KEYS cannot read the stored keys.
    """
    secretbox.ensure_secrets_readable()
    ids = [key.pk for key in keys]
    locked = list(IpsecKey.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    names = dict(Node.objects.filter(
        pk__in={k.node_a_id for k in locked} | {k.node_b_id for k in locked}
    ).values_list("pk", "hostname"))
    report = RotationReport()
    now = timezone.now()
    rotated: list[tuple[int, int]] = []
    for key in locked:
        host_a, host_b = names[key.node_a_id], names[key.node_b_id]
        reasons = [unreachable.get(node_id, f"{names[node_id]} was not probed")
                   for node_id in (key.node_a_id, key.node_b_id)]
        reasons = [reason for reason in reasons if reason]
        if reasons:
            reason = "; ".join(reasons)
            outcome = RotationOutcome.DEFERRED
        else:
            reason = ""
            outcome = RotationOutcome.DONE
            key.secret = secretbox.new_preshared_key()
            key.rotated_at = now
            key.save(update_fields=["secret_encrypted", "rotated_at"])
            rotated.append((key.node_a_id, key.node_b_id))
        KeyRotation.objects.create(key=key, node_a=host_a, node_b=host_b,
                                   requested_by=requested_by[:150],
                                   entry_point=entry_point[:20], outcome=outcome,
                                   reason=reason)
        report.results.append(PairResult(key_id=key.pk, node_a=host_a, node_b=host_b,
                                         outcome=outcome, reason=reason))
        logger.info("key rotation %s <-> %s: %s%s", host_a, host_b, outcome,
                    f" ({reason})" if reason else "")
    if rotated:
        changes.keys_changed(rotated, reason="IPSec key rotated")
    return report


def pushed_nodes(report: RotationReport) -> list[int]:
    """The nodes whose IPSec files the done rotations changed (both ends of each pair)."""
    done = {r.key_id for r in report.done}
    pairs = IpsecKey.objects.filter(pk__in=done).values_list("node_a_id", "node_b_id")
    return sorted({node_id for pair in pairs for node_id in pair})
