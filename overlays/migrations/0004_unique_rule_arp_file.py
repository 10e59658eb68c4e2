"""Each overlay rule writes its own ARP table file: a unique constraint, not only clean().

Two rules saved at the same time could both pass ``OverlayRule.clean()``; the constraint
holds then too. Empty values (filled in by clean() before any save) are left out.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("overlays", "0003_overlay_rule_names"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="overlayrule",
            constraint=models.UniqueConstraint(
                condition=models.Q(("arp_file", ""), _negated=True),
                fields=("arp_file",),
                name="unique_rule_arp_file",
            ),
        ),
    ]
