"""Benchmark a full regeneration of every node's files on a synthetic cluster.

The cluster is built in a scratch database (a temporary SQLite file unless
--database-url names a PostgreSQL database that does not exist yet; it is
created and dropped) with bulk inserts: the set-up syncs nothing. Loading and
rendering run in a fresh process so the peak RSS reported is that of
regeneration, not of building the data.

``--sync`` then measures the sync path on the same cluster (local transport,
tasks run eagerly, each step in a fresh process): ``overlay update --now`` of
every node (time, queries, peak RSS), then one vNIC created through the
services with automatic sync on, timed until every affected node is in sync.
These are the figures issue 14's targets compare with the regeneration time.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from io import StringIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings

from nodes.models import Deployment, Node, PendingSync, SyncStatus
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
        parser.add_argument("--sync", action="store_true",
                            help="Also time the sync path: `overlay update --now` of every "
                                 "node, then one vNIC created with automatic sync on.")
        parser.add_argument("--phase", default="all",
                            choices=["all", "populate", "measure", "update", "incremental"],
                            help="Internal: run one phase in this process.")

    def handle(self, *args: object, **options: Any) -> None:
        params = {k: options[k] for k in ("nodes", "pdcs", "rules", "vnics")}
        if min(params.values()) < 1 or params["pdcs"] > params["nodes"]:
            raise CommandError("--nodes, --pdcs, --rules and --vnics must be positive and "
                               "--pdcs at most --nodes.")
        if options["phase"] == "populate":
            populate(**params)
            return
        phases: dict[str, Callable[[], dict[str, Any]]] = {
            "measure": measure, "update": measure_update, "incremental": measure_incremental}
        if options["phase"] in phases:
            self.stdout.write(json.dumps(phases[options["phase"]]()))
            return
        result = {**run_isolated(params, options["database_url"], sync=options["sync"]),
                  **params}
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
        if options["sync"]:
            self.stdout.write(describe_sync(result))


def describe_sync(result: dict[str, Any]) -> str:
    """The sync-path figures, each against the regeneration time."""
    update, one = result["update"], result["incremental"]
    render = result["seconds"] or 1e-9
    return (
        f"\nsync path (local transport, eager tasks):\n"
        f"  overlay update --now   {update['seconds']:.3f} s ({update['seconds'] / render:.1f}x "
        f"regeneration), {update['queries']} queries, {update['nodes_in_sync']} nodes in sync, "
        f"peak RSS {update['peak_rss_mb']:.1f} MB (before {update['baseline_rss_mb']:.1f} MB)\n"
        f"  one vNIC created       {one['seconds']:.3f} s ({one['seconds'] / render:.1f}x "
        f"regeneration) until {one['affected_nodes']} affected nodes were in sync, "
        f"{one['queries']} queries; {one['nodes_not_in_sync']} node(s) not in sync after"
    )


def run_isolated(params: dict[str, int], database_url: str, *, sync: bool = False
                 ) -> dict[str, Any]:
    manage = str(Path(settings.BASE_DIR) / "manage.py")
    with tempfile.TemporaryDirectory(prefix="overlay-bench-") as tmp:
        url = database_url or f"sqlite:///{tmp}/bench.sqlite3"
        env = {**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": "", "REDIS_URL": "",
               "OVERLAY_TRANSPORT": "local", "OVERLAY_LOCAL_ROOT": f"{tmp}/nodes",
               "OVERLAY_AUTO_SYNC": "true",
               # As deployed: with DEBUG on, Django also keeps every query's text (on SQLite
               # one more statement per query to quote its parameters), a tenth of a sync.
               "DJANGO_DEBUG": os.environ.get("DJANGO_DEBUG", "false")}
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
            def phase(name: str) -> dict[str, Any]:
                return json.loads(step("overlay_bench", f"--phase={name}").strip()
                                  .splitlines()[-1])
            result = phase("measure")
            if sync:
                result["update"] = phase("update")
                result["incremental"] = phase("incremental")
        except subprocess.CalledProcessError as exc:
            raise CommandError(f"benchmark step failed:\n{exc.stderr[-2000:]}") from exc
        finally:
            if database_url:
                _drop_database(database_url)
    return result


def _database_name(url: str) -> str:
    name = urlsplit(url).path.lstrip("/")  # also with ?host=/var/run/postgresql (a socket)
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
    """Bulk-insert a realistic cluster: no signals, so nothing is synced while building.

    The pair keys are made with automatic sync off: the nodes are left pending, and the
    set-up contacts none of them.
    """
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
    with override_settings(OVERLAY_AUTO_SYNC=False):
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


@contextmanager
def counted_queries() -> Iterator[list[int]]:
    """Count the queries run on the default connection (without keeping their text)."""
    count = [0]

    def counter(execute: Callable[..., Any], sql: str, params: Any, many: bool,
                context: Any) -> Any:
        count[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counter):
        yield count


def measure_update() -> dict[str, Any]:
    """`overlay update --now` of every node through the sync path, in this fresh process."""
    baseline = _rss_mb()
    started = time.perf_counter()
    with counted_queries() as queries:
        call_command("overlay", "update", "--now", "--yes", stdout=StringIO())
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 4),
        "queries": queries[0],
        "peak_rss_mb": round(_rss_mb(), 1),
        "baseline_rss_mb": round(baseline, 1),
        "nodes_in_sync": Node.objects.filter(sync_status=SyncStatus.IN_SYNC).count(),
    }


def measure_incremental() -> dict[str, Any]:
    """One vNIC created through the services, automatic sync on, tasks run eagerly: the
    save returns once every node it affects was synced."""
    network = VirtualNetwork.objects.order_by("overlay_rule__name", "name").first()
    host = Node.objects.order_by("hostname").first()
    if network is None or host is None:
        raise CommandError("populate the cluster first")
    used = set(Vnic.objects.filter(network=network).values_list("ip", flat=True))
    ip = next(str(a) for a in ipaddress.IPv4Network(network.network).hosts()
              if int(a) & 255 > 9 and str(a) not in used and str(a) != network.gateway)
    in_sync_before = Node.objects.filter(sync_status=SyncStatus.IN_SYNC).count()
    last = Deployment.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    started = time.perf_counter()
    with override_settings(OVERLAY_AUTO_SYNC=True), counted_queries() as queries:
        services.save(Vnic(vm_name="bench-new", node=host, network=network,
                           mac="02:0e:0e:00:00:01", ip=ip))
    seconds = time.perf_counter() - started
    synced = Deployment.objects.filter(pk__gt=last)
    return {
        "seconds": round(seconds, 4),
        "queries": queries[0],
        "affected_nodes": synced.values("node").distinct().count(),
        "results": sorted(set(synced.values_list("result", flat=True))),
        "nodes_in_sync_before": in_sync_before,
        "nodes_not_in_sync": Node.objects.exclude(sync_status=SyncStatus.IN_SYNC).count(),
        "pending_requests": PendingSync.objects.count(),
    }
