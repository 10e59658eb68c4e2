"""Benchmark a full regeneration of every node's files on a synthetic cluster.

The cluster is built in a scratch database (a temporary SQLite file unless
--database-url names a PostgreSQL database that does not exist yet; it is
created and dropped). Loading and rendering run in a fresh process so the
peak RSS reported is that of regeneration, not of building the data.
"""

from __future__ import annotations

import ipaddress
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test.utils import CaptureQueriesContext

from nodes.models import Node
from overlays import services
from overlays.generators import arp_cache_for, render_node
from overlays.models import (
    ADMIN_OVERLAY_MTU,
    ADMIN_OVERLAY_RULE,
    AdminOverlay,
    AdminOverlayAddress,
    FirewallSettings,
    OverlayRule,
    VirtualNetwork,
    Vnic,
)
from overlays.rulestring import default_arp_file
from overlays.selectors import load_snapshot, node_paths


class Command(BaseCommand):
    help = "Time a full regeneration of every node's files on a synthetic cluster."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--nodes", type=int, default=200)
        parser.add_argument("--pdcs", type=int, default=3)
        parser.add_argument("--rules", type=int, default=4)
        parser.add_argument("--vnics", type=int, default=20000)
        parser.add_argument("--json", action="store_true", help="Print one JSON object.")
        parser.add_argument("--database-url", default="",
                            help="Scratch PostgreSQL URL (created, then dropped); "
                                 "default: a temporary SQLite file.")
        parser.add_argument("--phase", choices=["all", "populate", "measure"], default="all",
                            help="Internal: run one phase in this process.")

    def handle(self, *args: object, **options: Any) -> None:
        params = {k: options[k] for k in ("nodes", "pdcs", "rules", "vnics")}
        if min(params.values()) < 1 or params["pdcs"] > params["nodes"]:
            raise CommandError("--nodes, --pdcs, --rules and --vnics must be positive and "
                               "--pdcs at most --nodes.")
        if options["phase"] == "populate":
            populate(**params)
            return
        if options["phase"] == "measure":
            self.stdout.write(json.dumps(measure()))
            return
        result = {**run_isolated(params, options["database_url"]), **params}
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        self.stdout.write(
            f"full regeneration of {params['nodes']} nodes, {params['pdcs']} PDCs, "
            f"{params['rules']} rules, {params['vnics']} vNICs ({result['engine']}):\n"
            f"  SQL queries   {result['queries']}\n"
            f"  seconds       {result['seconds']:.3f} (load {result['load_seconds']:.3f}, "
            f"render {result['render_seconds']:.3f})\n"
            f"  bytes         {result['bytes']:,} in {result['files']:,} files\n"
            f"  peak RSS      {result['peak_rss_mb']:.1f} MB "
            f"(before loading {result['baseline_rss_mb']:.1f} MB; "
            f"largest node output {result['largest_node_bytes']:,} bytes)"
        )


def run_isolated(params: dict[str, int], database_url: str) -> dict[str, Any]:
    manage = str(Path(settings.BASE_DIR) / "manage.py")
    with tempfile.TemporaryDirectory(prefix="overlay-bench-") as tmp:
        url = database_url or f"sqlite:///{tmp}/bench.sqlite3"
        env = {**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": "",
               "OVERLAY_TRANSPORT": "local", "OVERLAY_LOCAL_ROOT": tmp}
        if database_url:
            _create_database(database_url)
        try:
            def step(*argv: str) -> str:
                done = subprocess.run([sys.executable, manage, *argv], env=env, check=True,
                                      capture_output=True, text=True)
                return done.stdout
            step("migrate", "--noinput", "-v0")
            flags = [f"--{k}={v}" for k, v in params.items()]
            step("overlay_bench", "--phase=populate", *flags)
            result = json.loads(step("overlay_bench", "--phase=measure").strip().splitlines()[-1])
        except subprocess.CalledProcessError as exc:
            raise CommandError(f"benchmark step failed:\n{exc.stderr[-2000:]}") from exc
        finally:
            if database_url:
                _drop_database(database_url)
    return result


def _database_name(url: str) -> str:
    name = url.rsplit("/", 1)[-1].split("?", 1)[0]
    if not name.replace("_", "").isalnum() or "bench" not in name:
        raise CommandError("The scratch database name must be alphanumeric and contain "
                           "'bench', e.g. postgres://postgres@127.0.0.1:5432/overlay_bench.")
    return name


def _maintenance_cursor(url: str) -> Any:
    """A cursor on the server's "postgres" database, in autocommit (CREATE DATABASE needs it)."""
    import environ
    import psycopg2

    config = environ.Env.db_url_config(url)
    conn = psycopg2.connect(dbname="postgres", user=config.get("USER") or None,
                            password=config.get("PASSWORD") or None,
                            host=config.get("HOST") or None, port=config.get("PORT") or None)
    conn.autocommit = True
    return conn.cursor()


def _create_database(url: str) -> None:
    name = _database_name(url)
    cursor = _maintenance_cursor(url)
    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
    if cursor.fetchone():
        raise CommandError(f"Database {name} exists; the benchmark only uses a database "
                           "it creates itself.")
    cursor.execute(f'CREATE DATABASE "{name}"')


def _drop_database(url: str) -> None:
    _maintenance_cursor(url).execute(f'DROP DATABASE IF EXISTS "{_database_name(url)}"')


def populate(*, nodes: int, pdcs: int, rules: int, vnics: int) -> None:
    """Bulk-insert a realistic cluster: no signals, so nothing is synced while building."""
    node_rows = Node.objects.bulk_create([
        Node(hostname=f"cn{i:04d}.pdc{i % pdcs}", pdc=f"pdc{i % pdcs}",
             admin_ip=str(ipaddress.IPv4Address("10.0.0.0") + (i % pdcs) * 65536 + 10 + i),
             admin_netmask="255.255.0.0",
             external_ip=str(ipaddress.IPv4Address("100.100.0.0") + 10 + i),
             nic_tags=["admin", "external"], default_route_nic="external0",
             ssh_host="127.0.0.1")
        for i in range(nodes)
    ])
    rule_rows = OverlayRule.objects.bulk_create([
        OverlayRule(name=f"rule{chr(97 + r % 26)}{'x' * (r // 26)}", port=4790 + r, mtu=1400,
                    arp_file=f"/opt/custom/networking/rule{r}_overlay.json")
        for r in range(rules)
    ])
    admin_rule = OverlayRule.objects.create(name=ADMIN_OVERLAY_RULE, port=4790 + rules,
                                            mtu=ADMIN_OVERLAY_MTU,
                                            arp_file=default_arp_file(ADMIN_OVERLAY_RULE))
    overlay = AdminOverlay.objects.create(overlay_rule=admin_rule, subnet="10.254.0.0/16")
    AdminOverlayAddress.objects.bulk_create([
        AdminOverlayAddress(admin_overlay=overlay, node=n,
                            ip=str(ipaddress.IPv4Address("10.254.0.11") + i),
                            mac=f"02:ad:00:00:{i >> 8:02x}:{i & 255:02x}")
        for i, n in enumerate(node_rows)
    ])
    FirewallSettings.objects.create(pk=1, enabled=True, allowed_sources=["192.0.2.0/24"])
    networks_per_rule = 10
    network_rows = VirtualNetwork.objects.bulk_create([
        VirtualNetwork(name=f"net-{r}-{k}", overlay_rule=rule, vxlan_id=1000 + k, vlan_id=k,
                       network=f"10.{100 + r}.{k * 16}.0/20", mtu=1400)
        for r, rule in enumerate(rule_rows) for k in range(networks_per_rule)
    ])
    Vnic.objects.bulk_create([
        Vnic(vm_name=f"vm{i}", node=node_rows[i % nodes],
             network=network_rows[i % len(network_rows)],
             mac=f"02:08:{i >> 24 & 255:02x}:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}",
             ip=str(ipaddress.IPv4Network(network_rows[i % len(network_rows)].network)[
                 10 + i // len(network_rows)]))
        for i in range(vnics)
    ], batch_size=2000)
    services.reconcile_ipsec_keys()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure() -> dict[str, Any]:
    """Load one snapshot and render every node, one node's output alive at a time."""
    baseline = _rss_mb()
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        snapshot = load_snapshot()
        loaded = time.perf_counter()
        cache = arp_cache_for(snapshot)
        total = files = largest = 0
        for node in snapshot.nodes:
            rendered = render_node(snapshot, node, node_paths(), arp_cache=cache)
            size = sum(len(f.content) for f in rendered.files)
            size += sum(len(k) + len(v) + 4 for k, v in rendered.usbkey.managed.items())
            total, files, largest = total + size, files + len(rendered.files) + 1, max(largest,
                                                                                       size)
            del rendered
    finished = time.perf_counter()
    return {
        "queries": len(queries),
        "seconds": round(finished - started, 4),
        "load_seconds": round(loaded - started, 4),
        "render_seconds": round(finished - loaded, 4),
        "bytes": total,
        "files": files,
        "largest_node_bytes": largest,
        "peak_rss_mb": round(_rss_mb(), 1),
        "baseline_rss_mb": round(baseline, 1),
        "engine": connection.vendor,
    }
