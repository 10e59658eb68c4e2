"""Loopback test nodes: real OpenSSH servers standing in for SmartOS compute nodes.

Each ``TestNode`` is one ``sshd`` on 127.0.0.1 with its own port, its own
ed25519 host key and its own private mount namespace, in which the node's
directories are bound over the paths a compute node has::

    NODEDIR/usbkey           -> /usbkey
    NODEDIR/opt_custom       -> /opt/custom
    NODEDIR/etc_inet         -> /etc/inet
    NODEDIR/etc_ipf          -> /etc/ipf
    NODEDIR/var_run_smartdc  -> /var/run/smartdc
    NODEDIR/usr_lib_inet     -> /usr/lib/inet    (holds the in.iked stub)
    NODEDIR/root_home        -> /root            (root's home, empty)

So a file the management server writes to ``/usbkey/config`` over SSH lands in
``NODEDIR/usbkey/config``, unseen by the other nodes and by the host, whose
mount points stay empty. Commands run by sshd find stub ``sysinfo``,
``nictagadm``, ``route``, ``svcadm``, ``ipf``, ``ipsecconf``, ``in.iked`` and ``vmadm``
first on PATH (``NODEDIR/bin``); each stub logs its argv to
``NODEDIR/log/<stub>.log`` and prints output built from the node's facts,
which a test changes with ``TestNode.set_sysinfo()``. The check stubs (``ipf -n -f``,
``in.iked -c -f``, ``ipsecconf -c``) refuse a file holding a text given to
``TestNode.reject()``, and ``TestNode.lock_out_on()`` makes ``svcadm refresh ipfilter``
stop (or resume) the node's sshd answering, as a firewall that shuts the manager out.

Needs root, ``/usr/sbin/sshd`` (openssh-server), ``ssh-keygen``, ``unshare``
and ``mount`` (util-linux), and ``groupadd``/``useradd`` (passwd) for the
``netadm`` account. Without them the fixtures skip, or fail when
``REQUIRE_SERVICES=1``.

Use from any test package: either load this module as a plugin once, in
tests/conftest.py (``pytest_plugins = ["tests.harness.testnodes"]``), or
re-export the two fixtures in the package's conftest.py::

    from tests.harness import testnodes

    testnode_management_key = testnodes.testnode_management_key
    testnode_cluster = testnodes.testnode_cluster

    def test_something(testnode_cluster):
        cn01, cn02 = testnode_cluster.start("cn01", "cn02", pdc="prague")
        ...
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import grp
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
import uuid as uuid_module
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from nodes.transports.base import NodeAddress
from tests.harness import require_or_skip

SSHD = "/usr/sbin/sshd"
STUB_SOURCE_DIR = Path(__file__).resolve().parent / "stubs"
STUBS = ("sysinfo", "nictagadm", "route", "svcadm", "ipf", "ipsecconf", "in.iked", "vmadm")
CHECK_STUBS = ("ipf", "in.iked", "ipsecconf")  # parse a file: TestNode.reject applies

# (directory under NODEDIR, path on the node it is bound over)
NODE_MOUNTS: tuple[tuple[str, str], ...] = (
    ("usbkey", "/usbkey"),
    ("opt_custom", "/opt/custom"),
    ("etc_inet", "/etc/inet"),
    ("etc_ipf", "/etc/ipf"),
    ("var_run_smartdc", "/var/run/smartdc"),
    ("usr_lib_inet", "/usr/lib/inet"),
    # root's own home: the host's shell start-up files (which may prepend to
    # PATH or be slow) stay out of the node's sessions.
    ("root_home", pwd.getpwuid(0).pw_dir),
)
# Directories a SmartOS node has below those mounts.
NODE_SUBDIRS = (
    "usbkey",
    "opt_custom/etc/ipsec",
    "opt_custom/etc/ipf.d",
    "opt_custom/networking",
    "etc_inet/ike",
    "etc_inet/secret",
    "etc_ipf",
    "var_run_smartdc/networking",
    "usr_lib_inet",
    "root_home",
    "bin",
    "log",
    "fail",
    "state",
)
HOST_LOCK_FILE = "/run/lock/overlay-testnodes.lock"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0

_running: dict[int, TestNode] = {}


# --- host requirements --------------------------------------------------------


def missing_requirements() -> list[str]:
    """What this machine lacks to run test nodes (empty when everything is there)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root privileges (mount namespaces and sshd need them)")
    if not os.access(SSHD, os.X_OK):
        missing.append(f"{SSHD} (apt-get install openssh-server)")
    for tool, package in (("ssh-keygen", "openssh-client"), ("unshare", "util-linux"),
                          ("mount", "mount")):
        if shutil.which(tool) is None:
            missing.append(f"{tool} ({package})")
    try:
        pwd.getpwnam("sshd")
    except KeyError:
        missing.append("the sshd privilege-separation user 'sshd' (created by openssh-server)")
    if not missing and not _can_unshare():
        missing.append("a working `unshare --mount` (needs CAP_SYS_ADMIN)")
    return missing


@cache
def _can_unshare() -> bool:
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"],
        capture_output=True, check=False,
    )
    return probe.returncode == 0


def require_testnode_services() -> None:
    """Skip (or fail with REQUIRE_SERVICES=1) when test nodes cannot run here."""
    missing = missing_requirements()
    if missing:
        require_or_skip("loopback test nodes need " + ", ".join(missing))


@contextlib.contextmanager
def _host_lock() -> Iterator[None]:
    """Serialise host preparation between concurrent test sessions."""
    Path(HOST_LOCK_FILE).parent.mkdir(parents=True, exist_ok=True)
    with open(HOST_LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@cache
def prepare_host() -> None:
    """Create what the nodes need on the host; idempotent and safe to race.

    Only empty directories are created (the mount points and sshd's
    privilege-separation directory) plus the ``netadm`` system user and group.
    Nothing existing is modified: the bind mounts live in private namespaces.
    """
    with _host_lock():
        for _, mount_point in NODE_MOUNTS:
            point = Path(mount_point)
            if point.exists() and not point.is_dir():
                raise RuntimeError(f"{mount_point} exists on this host and is not a directory")
            point.mkdir(parents=True, exist_ok=True)
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        _ensure_netadm()


def _ensure_netadm() -> None:
    try:
        grp.getgrnam("netadm")
    except KeyError:
        subprocess.run(["groupadd", "-r", "netadm"], check=True, capture_output=True)
    try:
        pwd.getpwnam("netadm")
    except KeyError:
        subprocess.run(
            ["useradd", "-r", "-g", "netadm", "-M", "-d", "/nonexistent",
             "-s", "/usr/sbin/nologin", "netadm"],
            check=True, capture_output=True,
        )


# --- keys and ports -----------------------------------------------------------


def generate_management_key(directory: Path) -> Path:
    """Create an ed25519 key pair (no passphrase) in ``directory``; return the private key path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / "management_ed25519"
    if not key.exists():
        _keygen(key, comment="overlay-manager-test")
    return key


def _keygen(path: Path, *, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True, capture_output=True,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def public_key_line(public_key_file: Path) -> str:
    """``"ssh-ed25519 AAAA..."`` from a .pub file (comment dropped)."""
    key_type, data = public_key_file.read_text().split()[:2]
    return f"{key_type} {data}"


# --- process helpers ----------------------------------------------------------


def _children_of(pid: int) -> list[int]:
    """All descendants of ``pid`` (from /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat_text = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 (ppid) follows the parenthesised command name, which may contain spaces.
        ppid = int(stat_text.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in parents.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def _signal(pids: Iterable[int], sig: signal.Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


# --- the node -----------------------------------------------------------------

_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./+-]+$")


class TestNode:
    """One loopback sshd pretending to be a SmartOS compute node."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        hostname: str,
        base_dir: Path,
        *,
        management_key_path: Path,
        pdc: str = "prague",
        admin_ip: str = "10.0.0.11",
        external_ip: str | None = "203.0.113.11",
        nic_tags: Iterable[str] | None = None,
        default_route_nic: str | None = None,
        admin_overlay_ip: str | None = None,
        node_uuid: str | None = None,
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*", hostname):
            raise ValueError(f"test node hostname must be a plain host name: {hostname!r}")
        self.hostname = hostname
        self.dir = Path(base_dir).resolve() / hostname
        if not _SAFE_PATH.match(str(self.dir)):
            raise ValueError(f"test node directory must not contain spaces or quotes: {self.dir}")
        self.management_key_path = Path(management_key_path)
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._facts: dict[str, Any] = {
            "uuid": node_uuid or str(uuid_module.uuid4()),
            "pdc": pdc,
            "admin_ip": admin_ip,
            "external_ip": external_ip,
            "nic_tags": list(nic_tags) if nic_tags is not None else (
                ["admin", "external"] if external_ip else ["admin"]),
            "default_route_nic": default_route_nic or ("external0" if external_ip else "e1000g0"),
            "admin_overlay_ip": admin_overlay_ip,
            "macs": {name: _random_mac(prefix) for name, prefix in (
                ("e1000g0", "00:0c:29"), ("e1000g1", "00:0c:29"),
                ("external0", "02:08:20"), ("adminoverlay_0", "02:08:20"))},
        }
        self._create_layout()

    def __repr__(self) -> str:
        state = f"port {self.port}" if self.is_running else "stopped"
        return f"<TestNode {self.hostname} {state} {self.dir}>"

    # --- layout ---------------------------------------------------------------

    @property
    def host_key_path(self) -> Path:
        return self.dir / "ssh_host_ed25519_key"

    @property
    def host_key_line(self) -> str:
        """The node's public host key, ``"ssh-ed25519 AAAA..."``, as an operator would pin it."""
        return public_key_line(self.host_key_path.with_suffix(".pub"))

    @property
    def config_path(self) -> Path:
        return self.dir / "sshd_config"

    def _create_layout(self) -> None:
        for subdir in NODE_SUBDIRS:
            (self.dir / subdir).mkdir(parents=True, exist_ok=True)
        for name in ("_stub.sh", *STUBS):
            shutil.copy2(STUB_SOURCE_DIR / name, self.dir / "bin" / name)
        shutil.copy2(STUB_SOURCE_DIR / "in.iked", self.dir / "usr_lib_inet" / "in.iked")
        if not self.host_key_path.exists():
            _keygen(self.host_key_path, comment=f"root@{self.hostname}")
        authorized = self.dir / "authorized_keys"
        authorized.write_text(
            public_key_line(self.management_key_path.with_name(
                self.management_key_path.name + ".pub")) + "\n"
        )
        authorized.chmod(0o600)
        overlay_rules = self.dir / "var_run_smartdc" / "networking" / "overlay_rules.json"
        if not overlay_rules.exists():
            overlay_rules.write_text("{}\n")
        self._write_state()

    def _write_sshd_config(self) -> None:
        node_dir = str(self.dir)
        lines = [
            "# sshd of test node " + self.hostname,
            "ListenAddress 127.0.0.1",
            f"Port {self.port}",
            f"HostKey {self.host_key_path}",
            f"PidFile {self.dir / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
            "AuthenticationMethods publickey",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PermitRootLogin prohibit-password",
            "StrictModes no",
            "UsePAM no",
            "UseDNS no",
            "PrintMotd no",
            "PrintLastLog no",
            "X11Forwarding no",
            "AllowTcpForwarding no",
            "AllowAgentForwarding no",
            "PermitUserEnvironment no",
            "MaxStartups 64:30:128",
            "MaxSessions 64",
            "LogLevel VERBOSE",
            "Subsystem sftp internal-sftp",
            f"SetEnv PATH={node_dir}/bin:/usr/bin:/bin:/usr/sbin:/sbin TESTNODE_DIR={node_dir}",
        ]
        self.config_path.write_text("\n".join(lines) + "\n")

    # --- facts the stubs report -------------------------------------------------

    def set_sysinfo(
        self,
        *,
        pdc: str | None = None,
        admin_ip: str | None = None,
        external_ip: str | None = None,
        nic_tags: Iterable[str] | None = None,
        default_route_nic: str | None = None,
        admin_overlay_ip: str | None = None,
        remove_external: bool = False,
    ) -> None:
        """Change what ``sysinfo``, ``nictagadm`` and ``route`` report; None keeps a value.

        ``remove_external=True`` takes the external interface away (no public IP).
        """
        changes = {
            "pdc": pdc, "admin_ip": admin_ip, "external_ip": external_ip,
            "default_route_nic": default_route_nic, "admin_overlay_ip": admin_overlay_ip,
        }
        self._facts.update({key: value for key, value in changes.items() if value is not None})
        if nic_tags is not None:
            self._facts["nic_tags"] = list(nic_tags)
        if remove_external:
            self._facts["external_ip"] = None
        self._write_state()

    @property
    def facts(self) -> dict[str, Any]:
        """The node's current facts (a copy): uuid, pdc, admin_ip, external_ip, nic_tags, ..."""
        return json.loads(json.dumps(self._facts))

    def sysinfo(self) -> dict[str, Any]:
        """The sysinfo document the node currently reports."""
        facts = self._facts
        macs = facts["macs"]
        tags = facts["nic_tags"]
        physical: dict[str, Any] = {
            "e1000g0": {
                "MAC Address": macs["e1000g0"],
                "ip4addr": facts["admin_ip"],
                "Link Status": "up",
                "NIC Names": [tag for tag in tags if tag == "admin"],
            },
            "e1000g1": {
                "MAC Address": macs["e1000g1"],
                "ip4addr": "",
                "Link Status": "up",
                "NIC Names": [tag for tag in tags if tag != "admin"],
            },
        }
        virtual: dict[str, Any] = {}
        if facts["external_ip"]:
            virtual["external0"] = {
                "MAC Address": macs["external0"],
                "ip4addr": facts["external_ip"],
                "Link Status": "up",
                "Host Interface": "e1000g1",
                "VLAN": "0",
            }
        if facts["admin_overlay_ip"]:
            virtual["adminoverlay_0"] = {
                "MAC Address": macs["adminoverlay_0"],
                "ip4addr": facts["admin_overlay_ip"],
                "Link Status": "up",
                "Host Interface": "adminoverlay2",
                "Overlay Rule": "adminoverlay",
                "VLAN": "2",
            }
        return {
            "Live Image": "20250116T000525Z",
            "System Type": "SunOS",
            "Boot Time": "1736990000",
            "SDC Version": "7.0",
            "Manufacturer": "VMware, Inc.",
            "Product": "VMware Virtual Platform",
            "Serial Number": "VMware-" + facts["uuid"].replace("-", "")[:16],
            "SKU Number": "",
            "HW Version": "None",
            "HW Family": "",
            "Setup": "true",
            "VM Capable": True,
            "Bhyve Capable": True,
            "Bhyve Max Vcpus": 32,
            "HVM API": True,
            "CPU Type": "Intel(R) Xeon(R) Silver 4214 CPU @ 2.20GHz",
            "CPU Virtualization": "vmx",
            "CPU Physical Cores": 2,
            "Admin NIC Tag": "admin",
            "UUID": facts["uuid"],
            "Hostname": self.hostname,
            "CPU Total Cores": 24,
            "MiB of Memory": "65535",
            "Zpool": "zones",
            "Zpool Disks": "c1t0d0",
            "Zpool Profile": "striped",
            "Zpool Creation": 1736990000,
            "Zpool Size in GiB": 930,
            "Disks": {"c1t0d0": {"Size in GB": 1000}},
            "Boot Parameters": {"console": "text", "boot_args": "", "bootargs": ""},
            "Network Interfaces": physical,
            "Virtual Network Interfaces": virtual,
            "Link Aggregations": {},
            "Datacenter Name": facts["pdc"],
        }

    def _write_state(self) -> None:
        facts = self._facts
        _write_atomically(self.dir / "sysinfo.json", json.dumps(self.sysinfo(), indent=2) + "\n")
        macs = facts["macs"]
        nictags = [
            f"{tag}|{macs['e1000g0'] if tag == 'admin' else macs['e1000g1']}|"
            f"{'e1000g0' if tag == 'admin' else 'e1000g1'}|normal"
            for tag in facts["nic_tags"]
        ]
        _write_atomically(self.dir / "state" / "nictags", "".join(line + "\n" for line in nictags))
        route_nic = facts["default_route_nic"]
        route_ip = facts["external_ip"] if route_nic == "external0" else facts["admin_ip"]
        gateway = ".".join((route_ip or "0.0.0.0").split(".")[:3] + ["1"])
        _write_atomically(
            self.dir / "state" / "route-default",
            "   route to: default\n"
            "destination: default\n"
            "       mask: default\n"
            f"    gateway: {gateway}\n"
            f"  interface: {route_nic}\n"
            "      flags: <UP,GATEWAY,DONE,STATIC>\n"
            " recvpipe  sendpipe  ssthresh    rtt,ms rttvar,ms  hopcount      mtu     expire\n"
            "       0         0         0         0         0         0      1500         0\n",
        )

    def set_loaded_overlay_rules(self, rules: dict[str, str]) -> None:
        """Write ``/var/run/smartdc/networking/overlay_rules.json`` (rules the platform loaded)."""
        _write_atomically(
            self.dir / "var_run_smartdc" / "networking" / "overlay_rules.json",
            json.dumps(rules, indent=2, sort_keys=True) + "\n",
        )

    def set_vms(self, vms: list[dict[str, Any]]) -> None:
        """What the stub ``vmadm lookup -j`` prints: VM objects with their ``nics``."""
        _write_atomically(self.dir / "state" / "vms.json", json.dumps(vms, indent=2) + "\n")

    def write(self, node_path: str, text: str, mode: int = 0o644) -> None:
        """Put a file on the node as an operator or another tool would have."""
        path = self.path(node_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)

    def fail(self, stub: str, message: str = "", *, exit_status: int = 1) -> None:
        """Make ``stub`` fail from now on, printing ``message`` to stderr."""
        self._check_stub(stub)
        text = message or f"{stub}: simulated failure"
        (self.dir / "fail" / stub).write_text(text.rstrip("\n") + "\n")
        (self.dir / "fail" / f"{stub}.status").write_text(f"{exit_status}\n")

    def succeed(self, stub: str) -> None:
        """Undo ``fail(stub)``."""
        self._check_stub(stub)
        for name in (stub, f"{stub}.status"):
            with contextlib.suppress(FileNotFoundError):
                (self.dir / "fail" / name).unlink()

    def reject(self, stub: str, text: str) -> None:
        """Make a check stub (``ipf``, ``in.iked``, ``ipsecconf``) refuse every file that
        holds ``text``, printing its parse error for the first such line and exiting 1."""
        if stub not in CHECK_STUBS:
            raise ValueError(f"{stub!r} checks no file; check stubs are {', '.join(CHECK_STUBS)}")
        if not text or "\n" in text:
            raise ValueError("the text to reject must be one non-empty line")
        (self.dir / "reject").mkdir(exist_ok=True)
        (self.dir / "reject" / stub).write_text(text)

    def accept(self, stub: str) -> None:
        """Undo ``reject(stub, ...)``."""
        with contextlib.suppress(FileNotFoundError):
            (self.dir / "reject" / stub).unlink()

    def lock_out_on(self, text: str | None) -> None:
        """From now on ``svcadm refresh ipfilter`` with ``text`` in the loaded
        ``/etc/ipf/ipf.conf`` stops the node's sshd answering new connections, and one
        without it lets them in again (None: never again)."""
        lockout = self.dir / "state" / "lockout"
        if text is None:
            with contextlib.suppress(FileNotFoundError):
                lockout.unlink()
            self.answer_again()
            return
        if "\n" in text or not text:
            raise ValueError("the lock-out text must be one non-empty line")
        lockout.write_text(text)

    @property
    def answering(self) -> bool:
        """Whether sshd takes new connections (False while a lock-out holds it)."""
        process = self._process
        if process is None or process.poll() is not None:
            return False
        try:
            state = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("T", "t")

    def answer_again(self) -> None:
        """Let sshd take new connections again after a lock-out."""
        if self._process is not None:
            _signal([self._process.pid], signal.SIGCONT)

    # --- observing the node ---------------------------------------------------

    def path(self, node_path: str) -> Path:
        """Where an absolute path of the node lives on the host, e.g. ``/usbkey/config``."""
        if not node_path.startswith("/") or ".." in node_path.split("/"):
            raise ValueError(f"expected an absolute node path without '..': {node_path!r}")
        for local, mount_point in sorted(NODE_MOUNTS, key=lambda item: -len(item[1])):
            if node_path == mount_point or node_path.startswith(mount_point + "/"):
                return self.dir / local / node_path[len(mount_point):].lstrip("/")
        raise ValueError(
            f"{node_path} is not under a node-private mount "
            f"({', '.join(point for _, point in NODE_MOUNTS)}); it would be the host's own file"
        )

    def calls(self, stub: str) -> list[str]:
        """Command lines the stub was called with, oldest first: ``["svcadm refresh ike", ...]``."""
        return [" ".join(argv) for argv in self.call_args(stub)]

    def call_args(self, stub: str) -> list[list[str]]:
        """Like ``calls`` but each call as its argv list (program name first)."""
        self._check_stub(stub)
        log = self.dir / "log" / f"{stub}.log"
        if not log.exists():
            return []
        return [line.split("\t") for line in log.read_text().splitlines() if line]

    def clear_calls(self) -> None:
        """Forget every logged stub call."""
        for stub in STUBS:
            with contextlib.suppress(FileNotFoundError):
                (self.dir / "log" / f"{stub}.log").unlink()

    def sshd_log(self) -> str:
        """Everything the node's sshd logged (LogLevel VERBOSE)."""
        path = self.dir / "log" / "sshd.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def connection_count(self) -> int:
        """TCP connections the node's sshd accepted so far (across restarts)."""
        return self.sshd_log().count("Connection from ")

    def login_count(self) -> int:
        """Successful SSH logins so far."""
        return self.sshd_log().count("Accepted publickey for ")

    @staticmethod
    def _check_stub(stub: str) -> None:
        if stub not in STUBS:
            raise ValueError(f"unknown stub {stub!r}; stubs are {', '.join(STUBS)}")

    # --- connecting -----------------------------------------------------------

    def address(self, *, host_key: str | None = None, user: str = "root") -> NodeAddress:
        """The NodeAddress to reach this node; pins the real host key unless told otherwise."""
        return NodeAddress(
            hostname=self.hostname,
            host="127.0.0.1",
            port=self.port,
            user=user,
            host_key=self.host_key_line if host_key is None else host_key,
        )

    # --- lifecycle ------------------------------------------------------------

    @property
    def is_running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start sshd (again, with the same port and host key after a stop).

        Start nodes from a long-lived thread (the test's own): sshd is tied to
        the starting thread and gets SIGTERM when that thread ends.
        """
        if self.is_running:
            return
        prepare_host()
        first_start = self.port == 0
        attempts = 5 if first_start else 1
        for attempt in range(attempts):
            if first_start:
                self.port = free_port()
            self._write_sshd_config()
            try:
                self._launch()
                return
            except _PortTaken:
                if attempt == attempts - 1:
                    raise RuntimeError(
                        f"test node {self.hostname}: no free port after {attempts} tries"
                    ) from None
        raise AssertionError("unreachable")

    def _launch(self) -> None:
        log_path = self.dir / "log" / "sshd.log"
        log_offset = log_path.stat().st_size if log_path.exists() else 0
        binds = " && ".join(
            f"mount --bind {shlex.quote(str(self.dir / local))} {shlex.quote(point)}"
            for local, point in NODE_MOUNTS
        )
        script = f"{binds} && exec {SSHD} -D -e -f {shlex.quote(str(self.config_path))}"
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
        if shutil.which("setpriv"):
            # sshd gets SIGTERM if the test process dies without cleaning up (kill -9).
            command = ["setpriv", "--pdeathsig", "TERM", *command]
        with open(log_path, "ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _running[id(self)] = self
        listening = f"Server listening on 127.0.0.1 port {self.port}."
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            output = _read_from(log_path, log_offset)
            if listening in output:
                return
            if self._process.poll() is not None:
                self._process = None
                _running.pop(id(self), None)
                if "Address already in use" in output or "Cannot bind any address" in output:
                    raise _PortTaken
                raise RuntimeError(f"sshd of test node {self.hostname} exited:\n{output}")
            time.sleep(0.01)
        output = _read_from(log_path, log_offset)
        self.stop()
        raise RuntimeError(
            f"sshd of test node {self.hostname} did not start in {START_TIMEOUT:g} s:\n{output}"
        )

    def stop(self) -> None:
        """Stop sshd and every session it runs: the node refuses connections afterwards."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            _signal([process.pid], signal.SIGCONT)  # a lock-out may have stopped it
            victims = [process.pid, *_children_of(process.pid)]
            _signal(victims, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _signal([process.pid, *_children_of(process.pid)], signal.SIGKILL)
                process.wait(timeout=STOP_TIMEOUT)
            # Sessions that survived their listener (already re-parented) by pid.
            deadline = time.monotonic() + STOP_TIMEOUT
            remaining = [pid for pid in victims[1:] if _alive(pid)]
            while remaining and time.monotonic() < deadline:
                time.sleep(0.02)
                remaining = [pid for pid in remaining if _alive(pid)]
            _signal(remaining, signal.SIGKILL)
        self._process = None
        _running.pop(id(self), None)


class _PortTaken(Exception):
    pass


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _read_from(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def _write_atomically(path: Path, text: str) -> None:
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temp.write_text(text)
    os.replace(temp, path)


def _random_mac(prefix: str) -> str:
    tail = os.urandom(3)
    return prefix + "".join(f":{byte:02x}" for byte in tail)


# --- several nodes ------------------------------------------------------------


class TestCluster:
    """A set of test nodes sharing one management key and one base directory.

    Nodes get consecutive addresses (admin 10.0.0.11, 10.0.0.12, ...; external
    203.0.113.11, ...) unless given. Stop everything with ``stop_all()`` or by
    using the cluster as a context manager.
    """

    __test__ = False

    def __init__(self, base_dir: Path, *, management_key_path: Path) -> None:
        self.base_dir = Path(base_dir)
        self.management_key_path = Path(management_key_path)
        self.nodes: dict[str, TestNode] = {}

    def __enter__(self) -> TestCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()

    def __getitem__(self, hostname: str) -> TestNode:
        return self.nodes[hostname]

    def __iter__(self) -> Iterator[TestNode]:
        return iter(self.nodes.values())

    def add(self, hostname: str, *, start: bool = True, **options: Any) -> TestNode:
        """Create (and by default start) a node; ``options`` go to ``TestNode``."""
        if hostname in self.nodes:
            raise ValueError(f"test node {hostname} already exists")
        number = 11 + len(self.nodes)
        options.setdefault("admin_ip", f"10.0.0.{number}")
        options.setdefault("external_ip", f"203.0.113.{number}")
        node = TestNode(
            hostname, self.base_dir, management_key_path=self.management_key_path, **options
        )
        self.nodes[hostname] = node
        if start:
            node.start()
        return node

    def start(self, *hostnames: str, **options: Any) -> list[TestNode]:
        """Create and start several nodes with the same options; return them in order."""
        return [self.add(hostname, **options) for hostname in hostnames]

    def stop_all(self) -> None:
        for node in self.nodes.values():
            node.stop()


def start_test_nodes(
    base_dir: Path, hostnames: Iterable[str], *, management_key_path: Path, **options: Any
) -> list[TestNode]:
    """Start one node per hostname under ``base_dir``; stop them with ``node.stop()``."""
    require_testnode_services()
    cluster = TestCluster(base_dir, management_key_path=management_key_path)
    try:
        return cluster.start(*hostnames, **options)
    except BaseException:
        cluster.stop_all()
        raise


@atexit.register
def _stop_leftover_nodes() -> None:
    for node in list(_running.values()):
        with contextlib.suppress(Exception):
            node.stop()


# --- pytest fixtures ----------------------------------------------------------


@pytest.fixture(scope="session")
def testnode_management_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Private key the management server uses; its public half is authorised on every node."""
    require_testnode_services()
    return generate_management_key(tmp_path_factory.mktemp("management-key"))


@pytest.fixture
def testnode_cluster(
    testnode_management_key: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestCluster]:
    """An empty TestCluster for one test; every node it started is stopped afterwards."""
    cluster = TestCluster(
        tmp_path_factory.mktemp("testnodes"), management_key_path=testnode_management_key
    )
    try:
        yield cluster
    finally:
        cluster.stop_all()
