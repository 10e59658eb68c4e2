"""State-file versions: which one a document is, and version 1 read as version 2.

Version 1 (files without ``"version"``) differs from version 2 in four names
only: a node's SSH settings were nested (``"ssh": {"host", "port", "user",
"host_key"}``, now ``ssh_host`` ...), a vNIC's VM was ``vm`` (now ``vm_name``),
and the admin overlay's ``rule`` and ``nodes`` are now ``overlay_rule`` and
``addresses``. The import maps a version 1 document once, before reading it, and
spells the paths of its problems the way the file does (``v1_path``).

Pure Python: imports nothing from the project but the state-file schema.
"""

from __future__ import annotations

import re
from typing import Any

from overlays.statefile.schema import READABLE_VERSIONS, VERSION, StateFileError

Problems = list[tuple[str, str]]

_V1_SSH_KEYS = ("host", "port", "user", "host_key")
_V1_RENAMES = {  # section -> {version 1 key: version 2 key}
    "vnics": {"vm": "vm_name"},
    "admin_overlay": {"rule": "overlay_rule", "nodes": "addresses"},
}
# A path into the version 2 document -> the same place in the version 1 file.
_V1_PATHS = [
    (re.compile(r"^nodes(\[\d+\])\.ssh_(host_key|host|port|user)(?=$|[.\[])"), r"nodes\1.ssh.\2"),
    (re.compile(r"^vnics(\[\d+\])\.vm_name(?=$|[.\[])"), r"vnics\1.vm"),
    (re.compile(r"^admin_overlay\.overlay_rule(?=$|[.\[])"), "admin_overlay.rule"),
    (re.compile(r"^admin_overlay\.addresses(?=$|[.\[])"), "admin_overlay.nodes"),
]


def version_of(doc: dict[str, Any]) -> int:
    """The document's version (1 when it names none); one clear error for any other."""
    version = doc.get("version", 1)
    if isinstance(version, int) and not isinstance(version, bool) and \
            version in READABLE_VERSIONS:
        return version
    readable = " and ".join(str(v) for v in READABLE_VERSIONS)
    raise StateFileError([("version", f"unknown state file version {version!r}; this "
                                      f"installation reads versions {readable} and writes "
                                      f"version {VERSION}.")])


def upgrade(doc: dict[str, Any]) -> tuple[dict[str, Any], Problems]:
    """A version 1 document as version 2 (a new document), and the problems met on the way.

    Only the renamed keys are touched; wrong types elsewhere are left for the import to
    report. A version 2 name in a version 1 file is a problem: it says which version to
    declare.
    """
    problems: Problems = []
    new = dict(doc)
    new["version"] = VERSION
    nodes = doc.get("nodes")
    if isinstance(nodes, list):
        new["nodes"] = [_flat_ssh(item, f"nodes[{index}]", problems)
                        for index, item in enumerate(nodes)]
    vnics = doc.get("vnics")
    if isinstance(vnics, list):
        new["vnics"] = [_renamed(item, _V1_RENAMES["vnics"], f"vnics[{index}]", problems)
                        for index, item in enumerate(vnics)]
    if "admin_overlay" in doc:
        new["admin_overlay"] = _renamed(doc["admin_overlay"], _V1_RENAMES["admin_overlay"],
                                        "admin_overlay", problems)
    return new, problems


def v1_path(path: str) -> str:
    """Where a path of the upgraded document points in the version 1 file."""
    for pattern, replacement in _V1_PATHS:
        path = pattern.sub(replacement, path)
    return path


def _v2_name_problem(path: str, old: str, new: str) -> tuple[str, str]:
    return (f"{path}.{new}", f'unknown key in a version 1 file (one without "version"): '
                             f'write {old}, or declare "version": {VERSION}.')


def _renamed(item: Any, renames: dict[str, str], path: str, problems: Problems) -> Any:
    if not isinstance(item, dict):
        return item
    for old, new in renames.items():
        if new in item:
            problems.append(_v2_name_problem(path, old, new))
    return {renames.get(key, key): value for key, value in item.items()
            if key not in renames.values()}


def _flat_ssh(item: Any, path: str, problems: Problems) -> Any:
    if not isinstance(item, dict):
        return item
    v2_names = {f"ssh_{key}": f"ssh.{key}" for key in _V1_SSH_KEYS}
    flat = {key: value for key, value in item.items() if key != "ssh" and key not in v2_names}
    for key in sorted(set(item) & set(v2_names)):
        problems.append(_v2_name_problem(path, v2_names[key], key))
    ssh = item.get("ssh", {})
    if not isinstance(ssh, dict):
        problems.append((f"{path}.ssh", "must be an object."))
        return flat
    for key, value in ssh.items():
        if key in _V1_SSH_KEYS:
            flat[f"ssh_{key}"] = value
        else:
            problems.append((f"{path}.ssh.{key}",
                             f"unknown key; expected one of {', '.join(_V1_SSH_KEYS)}."))
    return flat
