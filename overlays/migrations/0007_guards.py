"""The firewall's help text says the management server is always let in and the allow-list
needs an administrator source (issue 10, guards)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('overlays', '0006_admin_overlay_mac_help'),
    ]

    operations = [
        migrations.AlterField(
            model_name='firewallsettings',
            name='enabled',
            field=models.BooleanField(
                default=False, verbose_name='allow-list enabled',
                help_text='Block everything on external0 except the management server, '
                'administrator sources and other compute nodes; needs at least one '
                'administrator source. Plaintext overlay traffic on external0 is blocked '
                'either way.'),
        ),
    ]
