"""``Node.loaded_rules`` is ``loaded_overlay_rules``: the glossary's "overlay rule", as the
platform's own overlay_rules.json and the state file's ``overlay_rules`` say it."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("nodes", "0002_deployments"),
    ]

    operations = [
        migrations.RenameField(
            model_name="node",
            old_name="loaded_rules",
            new_name="loaded_overlay_rules",
        ),
    ]
