"""SshTransport against real OpenSSH servers on loopback (see tests/harness/testnodes.py)."""

from __future__ import annotations

import grp
import json
import os
import pwd
import socket
import stat
import subprocess
import time
from pathlib import Path

import paramiko
import pytest
from django.test import override_settings

from nodes.transports import open_transport
from nodes.transports.base import (
    AuthenticationError,
    HostKeyError,
    TransportError,
    temporary_name,
)
from nodes.transports.ssh import SshTransport
from tests.harness.testnodes import generate_management_key

pytestmark = pytest.mark.services

ARP_TABLE = "/opt/custom/networking/customers_overlay.json"
PRESHARED = "/opt/custom/etc/ipsec/ike.preshared"


def fingerprint_by_ssh_keygen(public_key_file: Path) -> str:
    """The SHA256 fingerprint as OpenSSH itself prints it (independent of our code)."""
    output = subprocess.run(
        ["ssh-keygen", "-l", "-E", "sha256", "-f", str(public_key_file)],
        check=True, capture_output=True, text=True,
    ).stdout
    return output.split()[1]


def temp_files_in(directory: Path) -> list[str]:
    return [entry.name for entry in directory.iterdir() if ".tmp-" in entry.name]


# --- files --------------------------------------------------------------------


def test_written_file_reads_back_with_mode_and_owner(three_nodes, ssh_to):
    cn01 = three_nodes[0]
    data = json.dumps({"02:08:20:aa:00:01": {"ip": "10.0.0.12", "port": 4790}}).encode()

    with ssh_to(cn01) as transport:
        transport.write_file(ARP_TABLE, data, mode=0o400, owner="netadm", group="netadm")
        read_back = transport.read_file(ARP_TABLE)

    assert read_back == data
    on_disk = cn01.path(ARP_TABLE).stat()
    assert stat.S_IMODE(on_disk.st_mode) == 0o400
    assert on_disk.st_uid == pwd.getpwnam("netadm").pw_uid
    assert on_disk.st_gid == grp.getgrnam("netadm").gr_gid
    assert cn01.path(ARP_TABLE).read_bytes() == data


def test_reading_a_missing_file_returns_none(three_nodes, ssh_to):
    with ssh_to(three_nodes[0]) as transport:
        assert transport.read_file("/opt/custom/etc/ipsec/config") is None


def test_files_of_any_size_read_back_byte_for_byte_in_a_few_round_trips(
        three_nodes, ssh_to, sftp_round_trips):
    cn01 = three_nodes[0]
    chunk = 32768
    sizes = [0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk, 3 * chunk + 5, 1_800_000]
    round_trips: list[int] = []

    with ssh_to(cn01) as transport:
        for size in sizes:
            data = os.urandom(size)
            cn01.path(ARP_TABLE).write_bytes(data)
            before = sftp_round_trips.count
            assert transport.read_file(ARP_TABLE) == data, size
            round_trips.append(sftp_round_trips.count - before)

    # Open; size and first chunk; (the other chunks;) close.
    assert round_trips == [3, 3, 3, 4, 4, 4, 4, 4]


def test_many_files_read_back_together_in_three_or_four_round_trips(
        three_nodes, ssh_to, sftp_round_trips):
    cn01 = three_nodes[0]
    written = {f"/opt/custom/networking/r{size}_overlay.json": os.urandom(size)
               for size in (0, 10, 32768, 70_000)}
    for path, data in written.items():
        cn01.path(path).write_bytes(data)
    missing = "/opt/custom/etc/ipsec/config"

    with ssh_to(cn01) as transport:
        small = transport.read_files([missing, *list(written)[:2]])
        assert sftp_round_trips.count == 3
        everything = transport.read_files([*written, missing, *written])

    assert small == {missing: None, **dict(list(written.items())[:2])}
    assert everything == {**written, missing: None}
    assert sftp_round_trips.count == 3 + 4


def test_leftovers_of_the_named_files_are_removed_in_a_few_round_trips_for_all(
        three_nodes, ssh_to, sftp_round_trips):
    cn01 = three_nodes[0]
    ipsec, networking = cn01.path("/opt/custom/etc/ipsec"), cn01.path("/opt/custom/networking")
    ours = [temporary_name("ike.preshared"), temporary_name("ike.preshared")]
    kept = [temporary_name("config"), ".ike.preshared.tmp-notours", ".other.tmp-0123456789ab",
            "ike.preshared", *(f"peer{n}.conf" for n in range(150))]  # past one READDIR
    for name in [*ours, *kept]:
        (ipsec / name).write_text("x")
    arp = temporary_name("customers_overlay.json")
    (networking / arp).write_text("x")

    with ssh_to(cn01) as transport:
        removed = transport.remove_temporaries([
            "/opt/custom/etc/ipsec/ike.preshared", "/opt/custom/networking/customers_overlay.json",
            "/opt/custom/networking/lab_overlay.json", "/opt/custom/gone/x.json"])

    assert sorted(removed) == sorted([*(f"/opt/custom/etc/ipsec/{n}" for n in ours),
                                      f"/opt/custom/networking/{arp}"])
    assert sorted(p.name for p in ipsec.iterdir()) == sorted(kept)
    assert list(networking.iterdir()) == []
    assert sftp_round_trips.count <= 6  # open both; entries (twice for 150); end; close; remove


def test_reading_what_is_not_a_file_names_the_path(three_nodes, ssh_to):
    three_nodes[0].path("/usbkey/config").write_text("hostname=cn01\n")
    with ssh_to(three_nodes[0]) as transport:
        with pytest.raises(TransportError) as raised:
            transport.read_file("/opt/custom/networking")
        assert "cannot read /opt/custom/networking on node cn01" in str(raised.value)
        with pytest.raises(TransportError) as raised:
            transport.read_files(["/usbkey/config", "/opt/custom/networking", "/usbkey"])
        assert str(raised.value).count("cannot read ") == 2  # both named, the file is not
        assert transport.read_file("/usbkey/config") == b"hostname=cn01\n"  # still connected


def test_stat_reports_mode_with_special_bits_and_numeric_owner_or_none(three_nodes, ssh_to):
    cn01 = three_nodes[0]
    cn01.path(PRESHARED).write_bytes(b"x\n")
    os.chown(cn01.path(PRESHARED), pwd.getpwnam("netadm").pw_uid, grp.getgrnam("netadm").gr_gid)
    os.chmod(cn01.path(PRESHARED), 0o4750)

    with ssh_to(cn01) as transport:
        found = transport.stat(PRESHARED)
        missing = transport.stat("/opt/custom/etc/ipsec/config")

    assert (found.mode, found.uid, found.gid) == (
        0o4750, pwd.getpwnam("netadm").pw_uid, grp.getgrnam("netadm").gr_gid)
    assert missing is None


def test_write_with_numeric_owner_applies_those_ids(three_nodes, ssh_to):
    cn01 = three_nodes[0]
    uid, gid = pwd.getpwnam("netadm").pw_uid, grp.getgrnam("netadm").gr_gid

    with ssh_to(cn01) as transport:
        transport.write_file(PRESHARED, b"x\n", mode=0o600, owner=str(uid), group=str(gid))

    on_disk = cn01.path(PRESHARED).stat()
    assert (on_disk.st_uid, on_disk.st_gid, stat.S_IMODE(on_disk.st_mode)) == (uid, gid, 0o600)


def test_write_creates_missing_parent_directories(three_nodes, ssh_to):
    cn01 = three_nodes[0]
    target = "/opt/custom/etc/newdir/deeper/file.conf"

    with ssh_to(cn01) as transport:
        transport.write_file(target, b"x\n", mode=0o640, owner="root", group="root")

    assert cn01.path(target).read_bytes() == b"x\n"
    assert stat.S_ISDIR(cn01.path("/opt/custom/etc/newdir").stat().st_mode)


def test_write_replaces_the_old_file_and_leaves_no_temporary_file(three_nodes, ssh_to):
    cn01 = three_nodes[0]
    cn01.path(PRESHARED).write_bytes(b"old\n")

    with ssh_to(cn01) as transport:
        transport.write_file(PRESHARED, b"new\n", mode=0o400, owner="root", group="root")

    assert cn01.path(PRESHARED).read_bytes() == b"new\n"
    assert stat.S_IMODE(cn01.path(PRESHARED).stat().st_mode) == 0o400
    assert temp_files_in(cn01.path(PRESHARED).parent) == []


def test_failed_chown_on_the_node_keeps_the_old_file_and_removes_the_temporary(
    three_nodes, ssh_to
):
    # A real failure between upload and rename: the owner does not exist on the node.
    cn01 = three_nodes[0]
    cn01.path(PRESHARED).write_bytes(b"old secret\n")
    os.chmod(cn01.path(PRESHARED), 0o400)

    with ssh_to(cn01) as transport, pytest.raises(TransportError, match="chown"):
        transport.write_file(PRESHARED, b"new secret\n", mode=0o400,
                             owner="no-such-user", group="root")

    assert cn01.path(PRESHARED).read_bytes() == b"old secret\n"
    assert stat.S_IMODE(cn01.path(PRESHARED).stat().st_mode) == 0o400
    assert temp_files_in(cn01.path(PRESHARED).parent) == []


def test_failure_just_before_the_rename_keeps_the_old_file(three_nodes, ssh_to, monkeypatch):
    cn01 = three_nodes[0]
    cn01.path("/usbkey/config").write_bytes(b"hostname=cn01\n")
    reached_rename = []

    def broken_rename(self, sftp, temp, target):
        # The temporary file is complete at this point, mode and owner set.
        reached_rename.append(sftp.stat(temp).st_size)
        raise OSError("simulated failure before rename")

    monkeypatch.setattr(SshTransport, "_replace", broken_rename)

    with ssh_to(cn01) as transport, pytest.raises(TransportError, match="simulated"):
        transport.write_file("/usbkey/config", b"hostname=cn01\nnew=1\n",
                             mode=0o644, owner="root", group="root")

    assert reached_rename == [len(b"hostname=cn01\nnew=1\n")]
    assert cn01.path("/usbkey/config").read_bytes() == b"hostname=cn01\n"
    assert temp_files_in(cn01.path("/usbkey")) == []


def test_file_written_to_one_node_is_invisible_to_other_nodes_and_to_the_host(
    three_nodes, ssh_to
):
    cn01, cn02, _ = three_nodes
    host_usbkey_before = sorted(os.listdir("/usbkey"))

    with ssh_to(cn01) as transport:
        transport.write_file("/usbkey/config", b"overlay_rule_x=1\n",
                             mode=0o644, owner="root", group="root")
    with ssh_to(cn02) as transport:
        seen_from_cn02 = transport.read_file("/usbkey/config")

    assert cn01.path("/usbkey/config").read_bytes() == b"overlay_rule_x=1\n"
    assert seen_from_cn02 is None
    assert not cn02.path("/usbkey/config").exists()
    assert sorted(os.listdir("/usbkey")) == host_usbkey_before


def test_one_connection_serves_many_operations(three_nodes, ssh_to):
    cn01 = three_nodes[0]

    with ssh_to(cn01) as transport:
        for index in range(5):
            transport.write_file(f"/opt/custom/networking/r{index}_overlay.json", b"{}",
                                 mode=0o400, owner="netadm", group="netadm")
            transport.run("svcadm restart network/varpd")

    assert cn01.login_count() == 1
    assert len(cn01.calls("svcadm")) == 5


def test_every_read_of_the_connection_first_asks_for_an_immediate_ack(
        three_nodes, ssh_to, monkeypatch):
    """sshd leaves Nagle on: its second small message waits for our ACK of the first,
    which Linux would delay by 40 ms (after login, every connection's first request)."""
    events: list[str] = []
    real_recv, real_setsockopt = socket.socket.recv, socket.socket.setsockopt

    def recv(self, *args):  # noqa: ANN001, ANN002, ANN202
        events.append("read")
        return real_recv(self, *args)

    def setsockopt(self, level, option, *args):  # noqa: ANN001, ANN002, ANN202
        if (level, option) == (socket.IPPROTO_TCP, socket.TCP_QUICKACK):
            events.append("ack at once")
        return real_setsockopt(self, level, option, *args)

    with ssh_to(three_nodes[0]) as transport, monkeypatch.context() as patched:
        patched.setattr(socket.socket, "recv", recv)
        patched.setattr(socket.socket, "setsockopt", setsockopt)
        transport.connect()
        assert transport.run("svcadm refresh ike").ok
        assert transport.stat("/usbkey") is not None

    reads = [index for index, event in enumerate(events) if event == "read"]
    assert len(reads) > 10  # the banner, the key exchange, the login, the command, SFTP
    assert all(index > 0 and events[index - 1] == "ack at once" for index in reads)


# --- commands -----------------------------------------------------------------


def test_run_returns_exit_status_stdout_and_stderr(three_nodes, ssh_to):
    with ssh_to(three_nodes[0]) as transport:
        result = transport.run("echo out; echo err >&2; exit 3")

    assert (result.exit_status, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.ok


def test_run_reaches_the_node_stubs_which_log_their_calls(three_nodes, ssh_to):
    cn01 = three_nodes[0]
    cn01.set_sysinfo(pdc="ostrava", admin_ip="10.0.0.99")

    with ssh_to(cn01) as transport:
        sysinfo = transport.run("sysinfo")
        route = transport.run("route -n get default")
        svcadm = transport.run("svcadm refresh network/virtual")

    facts = json.loads(sysinfo.stdout)
    assert facts["Hostname"] == "cn01"
    assert facts["Datacenter Name"] == "ostrava"
    assert facts["Network Interfaces"]["e1000g0"]["ip4addr"] == "10.0.0.99"
    assert "interface: external0" in route.stdout
    assert svcadm.ok
    assert cn01.calls("svcadm") == ["svcadm refresh network/virtual"]
    assert cn01.calls("route") == ["route -n get default"]


def test_failing_stub_reports_its_exit_status_and_message(three_nodes, ssh_to):
    cn01 = three_nodes[0]
    cn01.fail("svcadm", "svcadm: Pattern 'ike' doesn't match any instances", exit_status=3)

    with ssh_to(cn01) as transport:
        result = transport.run("svcadm refresh ike")

    assert result.exit_status == 3
    assert "doesn't match any instances" in result.stderr
    assert cn01.calls("svcadm") == ["svcadm refresh ike"]


def test_large_output_on_both_streams_is_collected_in_full(three_nodes, ssh_to):
    command = "head -c 3000000 /dev/zero | tr '\\0' a; head -c 500000 /dev/zero | tr '\\0' b >&2"
    with ssh_to(three_nodes[0]) as transport:
        result = transport.run(command)

    assert (len(result.stdout), len(result.stderr)) == (3_000_000, 500_000)


def test_command_timeout_raises_transport_error_and_the_connection_stays_usable(
    three_nodes, ssh_to
):
    with ssh_to(three_nodes[0]) as transport:
        started = time.monotonic()
        with pytest.raises(TransportError, match="did not finish within 0.5 s"):
            transport.run("sleep 10", timeout=0.5)
        elapsed = time.monotonic() - started
        after = transport.run("echo still here")

    assert elapsed < 3
    assert after.stdout == "still here\n"


# --- trust and failures -------------------------------------------------------


def test_wrong_pinned_host_key_is_refused_with_both_fingerprints_and_no_retry(
    three_nodes, ssh_to
):
    cn01, cn02, _ = three_nodes
    connections_before = cn01.connection_count()
    transport = ssh_to(cn01, host_key=cn02.host_key_line)

    with pytest.raises(HostKeyError) as caught:
        transport.write_file("/usbkey/config", b"must not arrive\n",
                             mode=0o644, owner="root", group="root")

    message = str(caught.value)
    assert fingerprint_by_ssh_keygen(cn02.host_key_path.with_suffix(".pub")) in message
    assert fingerprint_by_ssh_keygen(cn01.host_key_path.with_suffix(".pub")) in message
    assert message.index("expected") < message.index("offered")
    assert "PRIVATE KEY" not in message
    assert caught.value.retryable is False
    assert cn01.connection_count() == connections_before + 1
    assert cn01.login_count() == 0
    assert not cn01.path("/usbkey/config").exists()


def test_pinned_key_of_another_type_is_refused_with_both_fingerprints(
    three_nodes, ssh_to, tmp_path
):
    cn01 = three_nodes[0]
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(tmp_path / "other")],
                   check=True)
    ecdsa_line = " ".join((tmp_path / "other.pub").read_text().split()[:2])

    with pytest.raises(HostKeyError) as caught:
        ssh_to(cn01, host_key=ecdsa_line).connect()

    assert fingerprint_by_ssh_keygen(tmp_path / "other.pub") in str(caught.value)
    assert fingerprint_by_ssh_keygen(cn01.host_key_path.with_suffix(".pub")) in str(caught.value)


def test_missing_pin_is_refused_and_names_the_offered_key(three_nodes, ssh_to):
    cn01 = three_nodes[0]

    with pytest.raises(HostKeyError, match="no pinned host key for node cn01") as caught:
        ssh_to(cn01, host_key="").connect()

    assert fingerprint_by_ssh_keygen(cn01.host_key_path.with_suffix(".pub")) in str(caught.value)
    assert "ssh-keyscan" in str(caught.value)
    assert cn01.login_count() == 0


def test_malformed_pin_is_a_host_key_error(three_nodes, ssh_to):
    with pytest.raises(HostKeyError, match="not a valid OpenSSH public key"):
        ssh_to(three_nodes[0], host_key="ssh-ed25519 not-base64!").connect()


def test_pin_with_a_host_field_and_comment_is_accepted(three_nodes, ssh_to):
    cn01 = three_nodes[0]
    keyscan_style = f"[127.0.0.1]:{cn01.port} {cn01.host_key_line} root@cn01"

    with ssh_to(cn01, host_key=keyscan_style) as transport:
        assert transport.run("true").ok


def test_system_known_hosts_are_never_consulted(three_nodes, ssh_to, monkeypatch):
    loaded = []
    monkeypatch.setattr(paramiko.SSHClient, "load_system_host_keys",
                        lambda self, filename=None: loaded.append(filename))

    with pytest.raises(HostKeyError):
        ssh_to(three_nodes[0], host_key="").connect()

    assert loaded == []


def test_wrong_client_key_is_an_authentication_error(three_nodes, ssh_to, tmp_path):
    stranger_key = generate_management_key(tmp_path / "stranger")

    with pytest.raises(AuthenticationError) as caught:
        ssh_to(three_nodes[0], key_path=stranger_key).connect()

    assert caught.value.retryable is False


def test_unreadable_private_key_is_an_authentication_error(three_nodes, ssh_to, tmp_path):
    with pytest.raises(AuthenticationError, match="does not exist"):
        ssh_to(three_nodes[0], key_path=tmp_path / "missing").connect()


def test_stopped_node_is_a_retryable_transport_error_until_it_is_back(three_nodes, ssh_to):
    cn01 = three_nodes[0]
    cn01.stop()

    with pytest.raises(TransportError) as caught:
        ssh_to(cn01).connect()
    assert type(caught.value) is TransportError
    assert caught.value.retryable is True

    cn01.start()
    with ssh_to(cn01) as transport:
        assert transport.run("true").ok


def test_node_going_down_mid_sync_is_a_transport_error(three_nodes, ssh_to):
    cn01 = three_nodes[0]
    with ssh_to(cn01) as transport:
        transport.run("true")
        cn01.stop()

        with pytest.raises(TransportError):
            transport.run("svcadm refresh ike")
        with pytest.raises(TransportError):
            transport.write_file("/usbkey/config", b"x", mode=0o644, owner="root", group="root")


# --- factory ------------------------------------------------------------------


def test_factory_builds_an_ssh_transport_from_settings(three_nodes, testnode_management_key):
    cn01 = three_nodes[0]
    with override_settings(OVERLAY_TRANSPORT="ssh",
                           OVERLAY_SSH_PRIVATE_KEY=str(testnode_management_key),
                           OVERLAY_SSH_TIMEOUT=4.0, OVERLAY_COMMAND_TIMEOUT=7.0):
        transport = open_transport(cn01.address())

    assert isinstance(transport, SshTransport)
    assert (transport.connect_timeout, transport.command_timeout) == (4.0, 7.0)
    with transport:
        assert transport.run("sysinfo").ok
