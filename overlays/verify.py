"""Compare the overlay rules a node has loaded with the rules it should have.

A refresh records what the platform loaded (``Node.loaded_overlay_rules``: rule
name -> ``dladm create-overlay`` argument string, from overlay_rules.json); the
generators say what the node should carry (the ``overlay_rule_<name>`` keys of
its /usbkey/config). Files on disk can be right while the platform still runs
older rules (it loads them at boot or on reload), so this is the check that the
data plane really uses what was deployed.

Strings are compared by meaning, not by bytes: both are parsed with
``overlays.rulestring``, so property order and ``-p a,b`` against ``-p a -p b``
do not matter. A rule string without ``vxlan/listen_port`` means the platform's
default port (4789). A node never refreshed is "unknown", not "everything
missing".

Pure: plain data in, findings out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from overlays.generators.usbkey import rule_args
from overlays.rulestring import DEFAULT_PORT, RuleParams, RuleStringError, parse_rule_args
from overlays.snapshot import ClusterSnapshot, NodeView

State = Literal["ok", "differs", "unknown"]
OK: State = "ok"
DIFFERS: State = "differs"
UNKNOWN: State = "unknown"

# RuleParams field -> the property name an operator knows, in display order.
_PROPERTIES = (
    ("listen_ip", "vxlan/listen_ip"),
    ("port", "vxlan/listen_port"),
    ("arp_file", "files/config"),
    ("mtu", "mtu"),
)


@dataclass(frozen=True)
class PropertyDiff:
    """One property whose loaded value is not the desired one."""

    property: str
    desired: str
    loaded: str

    def describe(self) -> str:
        return f"{self.property} {self.loaded} loaded, {self.desired} expected"


@dataclass(frozen=True)
class RuleDiff:
    """A rule loaded with other parameters than desired (or a string that does not parse)."""

    rule: str
    properties: tuple[PropertyDiff, ...] = ()
    error: str | None = None  # the loaded string does not parse: why

    def describe(self) -> str:
        if self.error is not None:
            return f"rule {self.rule} was loaded from an unreadable string ({self.error})"
        return f"rule {self.rule} differs ({'; '.join(p.describe() for p in self.properties)})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "error": self.error,
            "properties": [
                {"property": p.property, "desired": p.desired, "loaded": p.loaded}
                for p in self.properties
            ],
        }


@dataclass(frozen=True)
class NodeVerification:
    """What one node has loaded against what it should have."""

    hostname: str
    state: State
    missing: tuple[str, ...] = ()  # desired, not loaded
    extra: tuple[str, ...] = ()  # loaded, not desired
    different: tuple[RuleDiff, ...] = ()

    @property
    def differs(self) -> bool:
        return self.state == DIFFERS

    def summary(self) -> str:
        """One sentence: what is wrong, or that all is well, or that nothing is known."""
        if self.state == UNKNOWN:
            return "unknown: the node has not been refreshed yet"
        if self.state == OK:
            return "the loaded overlay rules are as desired"
        parts = []
        if self.missing:
            parts.append(f"missing rule(s) {', '.join(self.missing)}")
        if self.extra:
            parts.append(f"extra rule(s) {', '.join(self.extra)}")
        parts.extend(diff.describe() for diff in self.different)
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.hostname,
            "state": self.state,
            "missing": list(self.missing),
            "extra": list(self.extra),
            "different": [diff.to_dict() for diff in self.different],
        }


def _effective(params: RuleParams) -> dict[str, str]:
    """Property name -> value as the platform uses it (an absent port is the default)."""
    port = DEFAULT_PORT if params.port is None else params.port
    values = {"listen_ip": params.listen_ip, "port": port, "arp_file": params.arp_file,
              "mtu": params.mtu}
    return {prop: str(values[field]) for field, prop in _PROPERTIES}


def compare_rule(name: str, desired: str, loaded: object) -> RuleDiff | None:
    """None when ``loaded`` means the same as ``desired``, else what differs."""
    want = _effective(parse_rule_args(desired))
    if not isinstance(loaded, str):
        return RuleDiff(name, error=f"not a string: {loaded!r}")
    try:
        have = _effective(parse_rule_args(loaded))
    except RuleStringError as exc:
        return RuleDiff(name, error=exc.message)
    diffs = tuple(PropertyDiff(prop, want[prop], have[prop])
                  for _, prop in _PROPERTIES if want[prop] != have[prop])
    return RuleDiff(name, properties=diffs) if diffs else None


def verify_node(hostname: str, desired: Mapping[str, str],
                loaded: Mapping[str, object] | None) -> NodeVerification:
    """Compare rule name -> argument string maps; ``loaded`` None means never refreshed."""
    if loaded is None:
        return NodeVerification(hostname, UNKNOWN)
    missing = tuple(sorted(set(desired) - set(loaded)))
    extra = tuple(sorted(set(loaded) - set(desired)))
    different = tuple(
        diff for name in sorted(set(desired) & set(loaded))
        if (diff := compare_rule(name, desired[name], loaded[name])) is not None
    )
    state = DIFFERS if (missing or extra or different) else OK
    return NodeVerification(hostname, state, missing, extra, different)


def desired_rules(snapshot: ClusterSnapshot, node: NodeView) -> dict[str, str]:
    """Rule name -> the argument string /usbkey/config gives ``node``.

    A rule that cannot be rendered is left out: ``check_cluster`` reports it
    ("invalid-rule"), and the node cannot be synchronised until it is fixed.
    """
    desired = {}
    for rule in snapshot.rules_for(node):
        try:
            desired[rule.name] = rule_args(rule)
        except RuleStringError:
            continue
    return desired


def verify_cluster(snapshot: ClusterSnapshot,
                   hostnames: Iterable[str] | None = None) -> tuple[NodeVerification, ...]:
    """Verify the named nodes of ``snapshot`` (default: all), in the order given."""
    if hostnames is None:
        nodes: Iterable[NodeView] = snapshot.nodes
    else:
        nodes = [snapshot.nodes_by_hostname[name] for name in hostnames]
    return tuple(_verify(snapshot, node) for node in nodes)


def _verify(snapshot: ClusterSnapshot, node: NodeView) -> NodeVerification:
    desired = desired_rules(snapshot, node)
    if node.loaded_rules is None:
        return verify_node(node.hostname, desired, None)
    # A carried rule that cannot be rendered is neither missing nor extra: it is unknown.
    unrenderable = {rule.name for rule in snapshot.rules_for(node)} - set(desired)
    loaded = {name: args for name, args in node.loaded_rules if name not in unrenderable}
    return verify_node(node.hostname, desired, loaded)
