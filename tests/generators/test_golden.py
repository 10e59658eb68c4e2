"""Byte-for-byte comparison of rendered files with reviewed golden copies.

Regenerate after an intended change with ``UPDATE_GOLDEN=1`` and review the diff.
Layout: ``golden/<hostname>/<absolute path on the node>``, plus
``golden/<hostname>/files.txt`` (mode, owner, reload of each file) and
``golden/<hostname>/usbkey/config`` (the managed keys applied to a sample
existing /usbkey/config).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from overlays.generators import apply_managed_keys, render_node
from overlays.snapshot import ClusterSnapshot, NodeView

from .scenario import EXISTING_USBKEY_CONFIG

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


def rendered_files(snapshot: ClusterSnapshot, node: NodeView) -> dict[str, str]:
    """Relative golden path -> expected content, for one node."""
    result = render_node(snapshot, node)
    out = {f.path.lstrip("/"): f.content for f in result.files}
    out["files.txt"] = (
        "".join(f"{f.path} {f.mode:04o} {f.owner}:{f.group} {f.reload}\n" for f in result.files)
        + f"{result.usbkey.path} (managed keys) {result.usbkey.reload}\n"
    )
    out[result.usbkey.path.lstrip("/")] = apply_managed_keys(
        EXISTING_USBKEY_CONFIG, result.usbkey.managed
    )
    return out


@pytest.mark.parametrize("hostname", ["cn01", "cn07"])
def test_rendered_files_match_the_golden_copies(cluster, hostname):
    expected_dir = GOLDEN / hostname
    files = rendered_files(cluster, cluster.nodes_by_hostname[hostname])
    if UPDATE:
        for relative, content in files.items():
            target = expected_dir / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content.encode("ascii"))
    on_disk = {str(p.relative_to(expected_dir)) for p in expected_dir.rglob("*") if p.is_file()}
    assert on_disk == set(files), "golden files added or missing: run with UPDATE_GOLDEN=1"
    for relative, content in files.items():
        assert (expected_dir / relative).read_bytes() == content.encode("ascii"), relative
