"""A network's and the admin overlay's reference to their rule is ``overlay_rule``.

The glossary's name, as the API and the state file spell it. The segment constraint
names the field, so it is dropped before the rename and made again after it (Django
does not rename fields inside constraints); both directions run.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("overlays", "0002_object_names"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="virtualnetwork",
            name="unique_overlay_segment",
        ),
        migrations.RenameField(
            model_name="virtualnetwork",
            old_name="rule",
            new_name="overlay_rule",
        ),
        migrations.RenameField(
            model_name="adminoverlay",
            old_name="rule",
            new_name="overlay_rule",
        ),
        migrations.AddConstraint(
            model_name="virtualnetwork",
            constraint=models.UniqueConstraint(
                fields=("overlay_rule", "vxlan_id", "vlan_id"), name="unique_overlay_segment"
            ),
        ),
    ]
