"""The record of IPSec key rotations (issue 10): who, when, which pair, done or deferred."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('overlays', '0007_guards'),
    ]

    operations = [
        migrations.CreateModel(
            name='KeyRotation',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('node_a', models.CharField(help_text="Host name of the pair's first node.", max_length=253, verbose_name='node A')),
                ('node_b', models.CharField(help_text="Host name of the pair's second node.", max_length=253, verbose_name='node B')),
                ('requested_at', models.DateTimeField(auto_now_add=True, db_index=True, verbose_name='requested at')),
                ('requested_by', models.CharField(blank=True, help_text='User name, or what asked (the periodic rotation).', max_length=150, verbose_name='requested by')),
                ('entry_point', models.CharField(blank=True, help_text='cli, api, pages, admin or beat.', max_length=20, verbose_name='entry point')),
                ('outcome', models.CharField(choices=[('done', 'done'), ('deferred', 'deferred')], help_text='done: a new key for both ends, pushed in one batch; deferred: an end could not be reached, the pair keeps its key.', max_length=10, verbose_name='outcome')),
                ('reason', models.TextField(blank=True, help_text='Why the rotation was deferred.', verbose_name='reason')),
                ('key', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='rotations', to='overlays.ipseckey', verbose_name='IPSec key')),
            ],
            options={
                'verbose_name': 'key rotation',
                'ordering': ['-requested_at', '-id'],
            },
        ),
    ]
