"""Benchmark: a full sync and a no-change sync across loopback sshd nodes.

    sudo .venv/bin/python benchmarks/sync_bench.py --nodes 20 --jobs 8

Starts ``--nodes`` OpenSSH servers on 127.0.0.1 (tests/harness/testnodes.py:
one mount namespace and filesystem per node, stub svcadm & co.; needs root),
records them in a scratch SQLite database (or ``--database-url``), configures
overlays through the services and times, with ``--jobs`` nodes synced at once
by the sync core (``overlays.distribution.run.sync_many``, one SSH connection per node):

* full sync: every file uploaded and every reload run on every node;
* no-change sync: nothing to upload, no node contacted;
* verify sync: every file read back over SSH and compared;
* one vNIC added: the ARP table of one rule on the nodes that carry it.

Under each step it prints what the manager asked of the nodes' sshd: connections,
commands (exec channels), SFTP sessions and SFTP requests (sent; "waited for one by one"
counts those that cost a round trip each, a pipelined batch costs one for all its requests).

Nothing of the real installation is touched: the database, the keys and the
node directories live in a temporary directory removed at the end.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=20, help="loopback nodes (default 20)")
    parser.add_argument("--jobs", type=int, default=8,
                        help="nodes synced at once (threads, default 8)")
    parser.add_argument("--vnics-per-node", type=int, default=5)
    parser.add_argument("--pdcs", type=int, default=2, help="physical datacenters (default 2)")
    parser.add_argument("--database-url", default="",
                        help="a scratch database (default: SQLite in a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["DATABASE_URL"] = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    for name in ("CELERY_BROKER_URL", "REDIS_URL"):
        os.environ.pop(name, None)  # eager, process-local locks: timing the sync core only
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # As deployed: DEBUG on also keeps (and on SQLite quotes) every query's text.
    os.environ.setdefault("DJANGO_DEBUG", "false")

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.DATABASES["default"].setdefault("OPTIONS", {})
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        # Threads write concurrently: take the write lock when a transaction starts
        # (a deferred one that upgrades gets "database is locked" at once), and wait.
        settings.DATABASES["default"]["OPTIONS"].update(timeout=60, transaction_mode="IMMEDIATE")
    call_command("migrate", verbosity=0)

    from tests.harness.testnodes import TestCluster, generate_management_key, missing_requirements

    missing = missing_requirements()
    if missing:
        print("cannot start loopback nodes: needs " + ", ".join(missing), file=sys.stderr)
        return 2
    key = generate_management_key(workdir / "key")
    settings.OVERLAY_TRANSPORT = "ssh"
    settings.OVERLAY_SSH_PRIVATE_KEY = str(key)
    settings.OVERLAY_AUTO_SYNC = False  # the benchmark triggers syncs itself

    count_ssh_work()
    cluster = TestCluster(workdir / "nodes", management_key_path=key)
    try:
        start = time.monotonic()
        node_ids = build(cluster, args)
        print(f"started and recorded {args.nodes} loopback sshd nodes in "
              f"{time.monotonic() - start:.1f} s ({args.pdcs} PDCs, "
              f"{args.nodes * args.vnics_per_node} vNICs)")
        return run(node_ids, args)
    finally:
        cluster.stop_all()
        if args.keep:
            print(f"kept {workdir}")
        else:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)


def build(cluster, args: argparse.Namespace) -> list[int]:  # noqa: ANN001
    from nodes.models import Node
    from overlays import services
    from overlays.models import OverlayRule, VirtualNetwork, Vnic

    nodes = []
    for index in range(args.nodes):
        hostname = f"cn{index + 1:02d}"
        pdc = f"pdc{index % args.pdcs}"
        suffix = f"{index // 200}.{index % 200 + 11}"
        test_node = cluster.add(hostname, pdc=pdc, admin_ip=f"10.0.{suffix}",
                                external_ip=f"203.0.{suffix}")
        test_node.path("/usbkey/config").write_text(f"hostname={hostname}\nadmin_ip=dhcp\n")
        facts = test_node.facts
        nodes.append(services.save(Node(
            hostname=hostname, pdc=pdc, admin_ip=facts["admin_ip"],
            external_ip=facts["external_ip"], nic_tags=facts["nic_tags"],
            default_route_nic="external0", ssh_host="127.0.0.1", ssh_port=test_node.port,
            ssh_host_key=test_node.host_key_line)))
    customers = services.save(OverlayRule(name="customers", port=4790))
    services.save(OverlayRule(name="lab", port=4791, all_nodes=False,
                              node_names=[n.hostname for n in nodes[: len(nodes) // 2]]))
    services.admin_overlay_init(subnet="10.44.0.0/16", port=4793)
    services.firewall_update(enabled=True, allowed_sources=["192.0.2.0/28"])
    network = services.save(VirtualNetwork(name="web", overlay_rule=customers, vxlan_id=100,
                                           vlan_id=10, network="172.16.0.0/16"))
    for index, node in enumerate(nodes):
        for n in range(args.vnics_per_node):
            host = index * args.vnics_per_node + n + 1
            Vnic.objects.create(vm_name=f"vm{host}", node=node, network=network,
                                mac=f"02:08:20:{host >> 16 & 255:02x}:{host >> 8 & 255:02x}:"
                                    f"{host & 255:02x}",
                                ip=f"172.16.{host // 250}.{host % 250 + 2}")
    services.reconcile_ipsec_keys()
    return [n.pk for n in nodes]


# What the manager asked of the nodes' sshd during one step (see count_ssh_work).
SSH_WORK: collections.Counter = collections.Counter()


def count_ssh_work() -> None:
    """Count SSH connections, commands (exec channels), SFTP sessions and SFTP requests
    (each sent request, pipelined or not), so that a step's round trips can be compared."""
    import paramiko
    from paramiko import sftp_client

    from nodes.transports import ssh

    lock = threading.Lock()

    def counting(cls: type, name: str, label: str) -> None:
        original = getattr(cls, name)

        def wrapper(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            with lock:
                SSH_WORK[label] += 1
            return original(self, *args, **kwargs)

        setattr(cls, name, wrapper)

    counting(paramiko.SSHClient, "connect", "connections")
    counting(paramiko.Channel, "exec_command", "commands")
    counting(paramiko.Channel, "invoke_subsystem", "SFTP sessions")
    counting(sftp_client.SFTPClient, "_request", "SFTP requests waited for one by one")
    counting(ssh, "pipelined", "pipelined SFTP batches (a round trip each)")
    counting(sftp_client.SFTPClient, "_async_request", "SFTP requests")


def timed(label: str, node_ids: list[int], jobs: int, **options: object) -> tuple[float, dict]:
    from overlays.distribution.run import sync_many

    SSH_WORK.clear()
    start = time.monotonic()
    outcomes = sync_many(node_ids, jobs=jobs, reason=label, **options)
    elapsed = time.monotonic() - start
    results: dict[str, int] = {}
    files = commands = 0
    for outcome in outcomes.values():
        for result in outcome.passes:
            results[result.result] = results.get(result.result, 0) + 1
            if result.deployment:
                files += len(result.deployment.files_changed)
                commands += len(result.deployment.commands)
    summary = ", ".join(f"{count} {name}" for name, count in sorted(results.items()))
    print(f"{label:<24} {elapsed:8.2f} s   {len(node_ids):3d} nodes, {jobs} at once: "
          f"{summary}; {files} files written, {commands} commands run")
    if SSH_WORK:
        print(" " * 26 + "SSH: " + ", ".join(f"{count} {name}" for name, count in
                                               SSH_WORK.items()))
    return elapsed, results


def run(node_ids: list[int], args: argparse.Namespace) -> int:
    from nodes.models import Node
    from overlays import services
    from overlays.filegroups import arp_group
    from overlays.models import OverlayRule, VirtualNetwork, Vnic

    jobs = args.jobs
    print(f"concurrency: {jobs} nodes at once (threads calling sync_many, one SSH "
          f"connection each); {os.cpu_count()} CPUs")
    ok = True
    _, full = timed("full sync", node_ids, jobs)
    ok &= full == {"ok": len(node_ids)}
    _, again = timed("no-change sync", node_ids, jobs)
    ok &= again == {"no-change": len(node_ids)}
    _, verify = timed("verify sync (read back)", node_ids, jobs, verify=True)
    ok &= verify == {"no-change": len(node_ids)}

    first = Node.objects.get(pk=node_ids[0])
    Vnic.objects.create(vm_name="bench-new", node=first,
                        network=VirtualNetwork.objects.get(name="web"),
                        mac="02:08:20:ff:ff:01", ip="172.16.200.200")
    rule = OverlayRule.objects.get(name="customers")
    scope = frozenset({arp_group(rule.arp_file)})
    readers = [pk for pk in node_ids if pk != first.pk]
    _, one = timed("one vNIC added (scoped)", readers, jobs, scope=scope)
    ok &= one == {"ok": len(readers)}
    services.reconcile_ipsec_keys()
    print("all results as expected" if ok else "UNEXPECTED RESULTS (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
