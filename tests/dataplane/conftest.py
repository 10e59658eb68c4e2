"""Fixtures of the data-plane lab: rendered clusters, and labs built from them.

A lab needs root, iproute2 (ip, bridge, tc), nftables, ping, strongSwan's charon
with the kernel-libipsec plugin and swanctl, and /dev/net/tun (bin/setup test
installs them on Debian). Without them the lab tests skip, or fail when
``REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dataplane import lab as lab_module
from tests.dataplane import product, world
from tests.harness import require_or_skip

REQUIRED_FILES = {
    "strongswan-charon": lab_module.CHARON,
    "libcharon-extra-plugins": "/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so",
    "/dev/net/tun": "/dev/net/tun",
}
REQUIRED_COMMANDS = {"ip": "iproute2", "bridge": "iproute2", "tc": "iproute2",
                     "nft": "nftables", "ping": "iputils-ping", "swanctl": "strongswan-swanctl"}


def missing_requirements() -> list[str]:
    missing = [] if os.geteuid() == 0 else ["root"]
    missing += [f"{command} ({package})" for command, package in REQUIRED_COMMANDS.items()
                if shutil.which(command, path=lab_module.ENV["PATH"]) is None]
    missing += [package for package, path in REQUIRED_FILES.items() if not Path(path).exists()]
    return missing


@pytest.fixture(scope="session")
def lab_host() -> None:
    """This machine can run the lab (or the test skips / fails by policy); old labs removed."""
    missing = missing_requirements()
    if missing:
        require_or_skip("the data-plane lab needs " + ", ".join(missing))
    lab_module.remove_leftovers()
    probe = f"{lab_module.PREFIX}{os.getpid()}-probe"
    try:
        lab_module.run(["ip", "netns", "add", probe])
        lab_module.run(["ip", "-n", probe, "link", "add", "vx", "type", "vxlan", "id", "1",
                        "dstport", "4789"])
        lab_module.run(["ip", "netns", "exec", probe, "nft", "add", "table", "inet", "probe"])
    except (lab_module.LabError, subprocess.SubprocessError) as exc:
        require_or_skip(f"network namespaces with VXLAN and nftables do not work here: {exc}")
    finally:
        lab_module.run(["ip", "netns", "del", probe], check=False)


CLUSTERS = {"demo": world.demo_state, "generated": world.generated_state}


@pytest.fixture(scope="session")
def render(django_db_setup, django_db_blocker):
    """``render(doc, ...)``: the rendered files after importing each document in turn."""

    def rendered(*docs: dict[str, Any]) -> list[product.RenderedCluster]:
        from django.db import connection

        with django_db_blocker.unblock():
            # pytest-django sets up the test database only for sessions with a test marked
            # django_db (the lab tests are); never import into the real one.
            if connection.settings_dict["NAME"] != connection.creation._get_test_db_name():
                raise RuntimeError("no test database: mark the test django_db")
            return product.render_after(docs)

    return rendered


@pytest.fixture(scope="module", params=sorted(CLUSTERS))
def cluster_lab(request, lab_host, render, tmp_path_factory) -> Iterator[lab_module.Lab]:
    """The demo cluster and the generated one, each as a running lab."""
    doc = CLUSTERS[request.param]()
    (files,) = render(doc)
    with lab_module.running(request.param, world.world_from_state(doc), files,
                            tmp_path_factory.mktemp(f"lab-{request.param}")) as lab:
        yield lab
