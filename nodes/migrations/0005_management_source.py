"""Node.management_source: the management server's source address, learnt at each sync."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('nodes', '0004_sync_outbox'),
    ]

    operations = [
        migrations.AddField(
            model_name='node',
            name='management_source',
            field=models.GenericIPAddressField(
                blank=True, editable=False, null=True, verbose_name='management source',
                help_text="The local address the management server's SSH connection to this "
                "node left from at its last sync. Unless OVERLAY_MANAGEMENT_SOURCES is set, "
                "every node's allow-list lets these addresses in."),
        ),
    ]
