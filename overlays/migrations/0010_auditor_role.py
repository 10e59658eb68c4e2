"""The auditor role: the Django group ``auditor`` (see ``core.roles``).

Membership is the whole role: the code grants auditors every read and refuses them every
write, so the group carries no model permissions (and so gives no Django admin access,
whose custom actions, syncing and key rotation, would otherwise be open to view-only staff).
Removing the migration deletes the group and with it every membership.
"""

from django.db import migrations

AUDITOR_GROUP = "auditor"  # core.roles.AUDITOR_GROUP, frozen here as migrations must be


def create_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.get_or_create(name=AUDITOR_GROUP)


def delete_group(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Group.objects.filter(name=AUDITOR_GROUP).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('overlays', '0009_adoption_record'),
        ('auth', '0012_alter_user_first_name_max_length'),
    ]

    operations = [
        migrations.RunPython(create_group, delete_group),
    ]
