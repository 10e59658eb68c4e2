"""LocalTransport: node files under a directory, commands recorded and never executed."""

from __future__ import annotations

import grp
import os
import pwd
import stat

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from nodes.transports import open_transport
from nodes.transports.base import CommandResult, NodeAddress, TransportError
from nodes.transports.local import LocalTransport

CN01 = NodeAddress(hostname="cn01.local", host="10.0.0.11")
CN02 = NodeAddress(hostname="cn02.local", host="10.0.0.12")


@pytest.fixture
def local(tmp_path):
    return LocalTransport(tmp_path, CN01)


def _account_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def test_written_file_lands_under_the_node_directory_and_reads_back(local, tmp_path):
    with local as transport:
        transport.write_file("/usbkey/config", b"overlay_rule_a=1\n",
                             mode=0o644, owner="root", group="root")
        read_back = transport.read_file("/usbkey/config")

    assert read_back == b"overlay_rule_a=1\n"
    assert (tmp_path / "cn01.local" / "usbkey" / "config").read_bytes() == b"overlay_rule_a=1\n"


def test_nodes_do_not_share_files(tmp_path):
    LocalTransport(tmp_path, CN01).write_file("/usbkey/config", b"a\n", mode=0o644,
                                              owner="root", group="root")

    assert LocalTransport(tmp_path, CN02).read_file("/usbkey/config") is None


def test_reading_a_missing_file_returns_none(local):
    assert local.read_file("/opt/custom/etc/ipsec/config") is None


def test_stat_reports_the_mode_and_numeric_owner_of_the_file_or_none(local, tmp_path):
    local.write_file("/usbkey/config", b"a\n", mode=0o600, owner="root", group="root")
    on_disk = (tmp_path / "cn01.local" / "usbkey" / "config").stat()

    found = local.stat("/usbkey/config")

    assert (found.mode, found.uid, found.gid) == (0o600, on_disk.st_uid, on_disk.st_gid)
    assert local.stat("/opt/custom/etc/ipsec/config") is None


def test_mode_is_always_set(local, tmp_path):
    local.write_file("/opt/custom/etc/ipsec/ike.preshared", b"{ }\n", mode=0o400,
                     owner="root", group="root")

    on_disk = (tmp_path / "cn01.local/opt/custom/etc/ipsec/ike.preshared").stat()
    assert stat.S_IMODE(on_disk.st_mode) == 0o400


@pytest.mark.skipif(os.geteuid() != 0 or not _account_exists("netadm"),
                    reason="needs root and a local netadm user and group")
def test_owner_is_applied_when_root_and_the_account_exists(local, tmp_path):
    local.write_file("/opt/custom/networking/a_overlay.json", b"{}", mode=0o400,
                     owner="netadm", group="netadm")

    on_disk = (tmp_path / "cn01.local/opt/custom/networking/a_overlay.json").stat()
    assert on_disk.st_uid == pwd.getpwnam("netadm").pw_uid
    assert on_disk.st_gid == grp.getgrnam("netadm").gr_gid


def test_unknown_owner_is_skipped_but_the_file_is_written(local, tmp_path):
    local.write_file("/opt/custom/networking/a_overlay.json", b"{}", mode=0o440,
                     owner="no-such-user", group="no-such-group")

    written = tmp_path / "cn01.local/opt/custom/networking/a_overlay.json"
    assert written.read_bytes() == b"{}"
    assert stat.S_IMODE(written.stat().st_mode) == 0o440


def test_failure_before_the_rename_keeps_the_old_file_and_removes_the_temporary(
    local, tmp_path, monkeypatch
):
    local.write_file("/usbkey/config", b"old\n", mode=0o644, owner="root", group="root")

    def broken_replace(temp, target):
        assert temp.read_bytes() == b"new\n"  # the upload itself completed
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(LocalTransport, "_replace", staticmethod(broken_replace))

    with pytest.raises(TransportError, match="No space left"):
        local.write_file("/usbkey/config", b"new\n", mode=0o644, owner="root", group="root")

    usbkey = tmp_path / "cn01.local" / "usbkey"
    assert (usbkey / "config").read_bytes() == b"old\n"
    assert sorted(entry.name for entry in usbkey.iterdir()) == ["config"]


@pytest.mark.parametrize("path", ["usbkey/config", "/usbkey/../../etc/passwd", "/usbkey/"])
def test_relative_escaping_or_directory_paths_are_rejected(local, path):
    with pytest.raises(ValueError):
        local.write_file(path, b"x", mode=0o644, owner="root", group="root")


def test_a_symlink_out_of_the_node_directory_is_not_followed(local, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "cn01.local").mkdir()
    (tmp_path / "cn01.local" / "usbkey").symlink_to(outside)

    with pytest.raises(TransportError, match="outside the node directory"):
        local.write_file("/usbkey/config", b"x", mode=0o644, owner="root", group="root")

    assert list(outside.iterdir()) == []


def test_unusable_hostname_is_rejected(tmp_path):
    with pytest.raises(ValueError):
        LocalTransport(tmp_path, NodeAddress(hostname="../cn01", host="10.0.0.11"))


def test_run_records_the_command_and_executes_nothing(local, tmp_path):
    marker = tmp_path / "must-not-exist"

    result = local.run(f"touch {marker}", timeout=5)

    assert result == CommandResult(command=f"touch {marker}", exit_status=0, stdout="", stderr="")
    assert not marker.exists()
    log = (tmp_path / "cn01.local/var/log/overlay-commands.log").read_text().splitlines()
    assert len(log) == 1
    assert log[0].endswith(f" touch {marker}")


def test_factory_returns_the_local_transport_rooted_at_the_setting(tmp_path):
    with override_settings(OVERLAY_TRANSPORT="local", OVERLAY_LOCAL_ROOT=tmp_path):
        transport = open_transport(CN01)

    assert isinstance(transport, LocalTransport)
    assert transport.node_root == tmp_path / "cn01.local"


def test_factory_rejects_an_unknown_transport_name():
    with override_settings(OVERLAY_TRANSPORT="telnet"), \
            pytest.raises(ImproperlyConfigured, match="'telnet'.*'local', 'ssh'"):
        open_transport(CN01)


def test_factory_requires_a_private_key_for_ssh():
    with override_settings(OVERLAY_TRANSPORT="ssh", OVERLAY_SSH_PRIVATE_KEY=""), \
            pytest.raises(ImproperlyConfigured, match="OVERLAY_SSH_PRIVATE_KEY"):
        open_transport(CN01)
