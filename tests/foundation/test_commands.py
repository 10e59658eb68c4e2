"""The demo command and the overlay command's frame."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from nodes.models import Node
from overlays.models import IpsecKey
from overlays.statefile import export_state

pytestmark = pytest.mark.django_db


def demo() -> str:
    out = io.StringIO()
    call_command("demo", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_demo_loads_the_demo_cluster_and_creates_the_demo_superuser():
    out = demo()
    assert "created demo superuser admin" in out
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff and admin.check_password("admin")
    assert Node.objects.count() == 5
    assert IpsecKey.objects.count() == 4


def test_demo_gives_vdc_admins_the_demo_password():
    out = demo()
    assert "set demo password for vDC admin alice" in out
    assert get_user_model().objects.get(username="alice").check_password("demo")


def test_demo_twice_changes_nothing_the_second_time():
    demo()
    before = export_state()
    users = list(get_user_model().objects.order_by("username").values_list("username",
                                                                          "password"))
    secrets = {key.pk: key.secret for key in IpsecKey.objects.all()}
    out = demo()
    assert out.strip() == "Nothing to change."
    assert export_state() == before
    assert list(get_user_model().objects.order_by("username").values_list(
        "username", "password")) == users
    assert {key.pk: key.secret for key in IpsecKey.objects.all()} == secrets


def test_demo_keeps_a_password_someone_already_set(django_user_model):
    django_user_model.objects.create_user("alice", password="chosen")
    demo()
    assert django_user_model.objects.get(username="alice").check_password("chosen")


def test_demo_with_a_broken_file_fails_and_creates_nothing(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"nodes": [{"hostname": "cn01"}]}')
    with pytest.raises(CommandError, match="nothing was changed"):
        call_command("demo", "--file", str(broken), stdout=io.StringIO(),
                     stderr=io.StringIO())
    assert not get_user_model().objects.exists()


def test_overlay_command_without_a_subcommand_is_refused():
    with pytest.raises(CommandError):
        call_command("overlay", stdout=io.StringIO(), stderr=io.StringIO())


def test_overlay_command_lists_import_and_export():
    from overlays.management.commands.overlay import Command

    usage = Command().create_parser("manage.py", "overlay").format_help()
    listed = set(re.findall(r"^ {4}([a-z][\w-]*)", usage, re.MULTILINE))  # the subcommands
    assert {"import", "export", "rule", "update"} <= listed


def test_render_hides_pair_keys_unless_asked_and_its_json_parses(demo_cluster):
    secrets = [key.secret for key in IpsecKey.objects.all()]
    plain, shown, as_json = io.StringIO(), io.StringIO(), io.StringIO()
    call_command("overlay", "render", "cn21.brno", stdout=plain)
    call_command("overlay", "render", "cn21.brno", "--show-secrets", stdout=shown)
    call_command("overlay", "render", "cn21.brno", "--json", stdout=as_json)

    assert "key <redacted>" in plain.getvalue()
    assert not any(secret in plain.getvalue() or secret in as_json.getvalue()
                   for secret in secrets)
    assert sum(secret in shown.getvalue() for secret in secrets) == 4  # one per prague peer
    data = json.loads(as_json.getvalue())  # the shape of the API's node files
    assert data["hostname"] == "cn21.brno"
    files = {item["path"]: item for item in data["files"]}
    arp = json.loads(files["/opt/custom/networking/customers_overlay.json"]["content"])
    assert all(isinstance(entry["port"], int) for entry in arp.values())
    preshared = files["/opt/custom/etc/ipsec/ike.preshared"]
    assert preshared["redacted"] is True
    assert (preshared["mode"], preshared["owner"], preshared["group"]) == ("0400", "root", "root")
    assert data["usbkey"]["path"] == "/usbkey/config"
    assert data["usbkey"]["managed"]["adminoverlay_0_ip"]
