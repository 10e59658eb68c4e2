"""``manage.py auditor add|remove|list``: who holds the read-only auditor role (core.roles)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.roles import AUDITOR_GROUP


class Command(BaseCommand):
    help = ("Give users the read-only auditor role (they see what a superuser sees and change "
            "nothing), take it away, or list its holders.")

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        add = actions.add_parser("add", help="Make users auditors.")
        add.add_argument("usernames", nargs="+")
        add.add_argument("--create", action="store_true",
                         help="Create missing users (without a usable password: set one with "
                         "`manage.py changepassword NAME`).")
        remove = actions.add_parser("remove", help="Take the auditor role away.")
        remove.add_argument("usernames", nargs="+")
        actions.add_parser("list", help="Print the auditors, one per line.")

    def handle(self, *args: object, **options: object) -> None:
        group, _ = Group.objects.get_or_create(name=AUDITOR_GROUP)
        users = get_user_model().objects
        action = options["action"]
        if action == "list":
            for name in group.user_set.order_by("username").values_list("username", flat=True):
                self.stdout.write(name)
            return
        names = list(options["usernames"])
        found = {u.get_username(): u for u in users.filter(username__in=names)}
        missing = [n for n in names if n not in found]
        if missing and action == "add" and options.get("create"):
            for name in missing:
                found[name] = users.create_user(name)
                self.stdout.write(f"created user {name}")
        elif missing:
            raise CommandError(f"No such user: {', '.join(missing)}.")
        for name in names:
            user = found[name]
            if action == "add":
                user.groups.add(group)
                note = " (a superuser: already sees and changes everything)" \
                    if user.is_superuser else ""
                self.stdout.write(f"{name} is an auditor{note}")
            else:
                user.groups.remove(group)
                self.stdout.write(f"{name} is no longer an auditor")
