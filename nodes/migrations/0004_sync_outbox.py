"""The distribution's outbox (``PendingSync``) and each node's desired and synced generation:
a node is in sync only when its last completed sync deployed its desired generation."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('nodes', '0003_loaded_overlay_rules'),
    ]

    operations = [
        migrations.AddField(
            model_name='node',
            name='desired_generation',
            field=models.BigIntegerField(default=0, editable=False, help_text="Counts the changes to the node's files: each change adds one in its own transaction.", verbose_name='desired generation'),
        ),
        migrations.AddField(
            model_name='node',
            name='synced_generation',
            field=models.BigIntegerField(default=0, editable=False, help_text='The desired generation the last completed sync deployed; the node is in sync only while the two are equal.', verbose_name='synced generation'),
        ),
        migrations.CreateModel(
            name='PendingSync',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('scope', models.JSONField(blank=True, help_text='The file groups to sync (e.g. ["ipsec", "arp:/opt/..."]); empty means every file.', null=True, verbose_name='file groups')),
                ('reasons', models.TextField(blank=True, help_text='What asked for the sync, one trigger per line.', verbose_name='triggers')),
                ('verify', models.BooleanField(default=False, help_text='Compare with the files on the node instead of the recorded hashes.', verbose_name='compare with the node')),
                ('base_generation', models.BigIntegerField(default=0, help_text="The node's desired generation before the first change in this request.", verbose_name='base generation')),
                ('revision', models.PositiveIntegerField(default=1, help_text='Counts the requests merged in; a sync removes the row only if none arrived while it ran.', verbose_name='revision')),
                ('requested_at', models.DateTimeField(verbose_name='first requested')),
                ('updated_at', models.DateTimeField(verbose_name='last requested')),
                ('dispatched_at', models.DateTimeField(blank=True, help_text='When a task was queued for this request and has not started yet.', null=True, verbose_name='task queued')),
                ('node', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='pending_sync', to='nodes.node', verbose_name='node')),
            ],
            options={
                'verbose_name': 'pending sync',
                'ordering': ['requested_at', 'id'],
            },
        ),
    ]
