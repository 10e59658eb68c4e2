"""Load the demo cluster and demo users, so a fresh install has something to show."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from core.roles import AUDITOR_GROUP

DEMO_FILE = Path(settings.BASE_DIR) / "demo" / "cluster.json"
# Demo-only credentials: printed by the run command, never used outside the demo.
DEMO_SUPERUSER = ("admin", "admin")
DEMO_VDC_ADMIN_PASSWORD = "demo"  # noqa: S105
DEMO_AUDITOR = ("auditor", "auditor")


class Command(BaseCommand):
    help = "Import the demo cluster state file and create demo users with known passwords."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", default=str(DEMO_FILE), help="State file to import.")

    def handle(self, *args: object, **options: object) -> None:
        call_command("overlay", "import", options["file"], stdout=self.stdout, stderr=self.stderr)
        users = get_user_model()
        username, password = DEMO_SUPERUSER
        admin = users.objects.filter(username=username).first()
        if admin is None:
            admin = users.objects.create_superuser(username, "admin@example.invalid", password)
            self.stdout.write(f"created demo superuser {username}")
        for user in users.objects.filter(administered_vdcs__isnull=False).distinct():
            if not user.has_usable_password():
                user.set_password(DEMO_VDC_ADMIN_PASSWORD)
                user.save(update_fields=["password"])
                self.stdout.write(f"set demo password for vDC admin {user.username}")
        username, password = DEMO_AUDITOR
        if not users.objects.filter(username=username).exists():
            auditor = users.objects.create_user(username, password=password)
            auditor.groups.add(Group.objects.get_or_create(name=AUDITOR_GROUP)[0])
            self.stdout.write(f"created demo auditor {username} (read-only)")
