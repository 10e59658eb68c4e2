"""Adoption records (issue 11): who adopted which nodes' running configuration, and what came in."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('overlays', '0008_key_rotation'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='AdoptionRecord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('created_at', models.DateTimeField(auto_now_add=True, verbose_name='adopted at')),
                ('actor', models.CharField(blank=True, help_text='The user name (or the OS user of a command-line run), kept if the account is deleted.', max_length=150, verbose_name='actor')),
                ('entry_point', models.CharField(choices=[('cli', 'command line'), ('api', 'API'), ('pages', 'operator pages')], max_length=16, verbose_name='entry point')),
                ('hosts', models.JSONField(default=list, help_text='Host names of the nodes whose configuration was read.', verbose_name='hosts read')),
                ('summary', models.JSONField(default=dict, help_text='How many rules, networks, vNICs and admin-overlay addresses the adopted state file held, how many pair keys were kept, and the notes.', verbose_name='summary')),
                ('changes', models.JSONField(blank=True, default=list, help_text='What the import changed, one line each (empty: the database already held it all).', verbose_name='changes')),
                ('user', models.ForeignKey(blank=True, help_text='The account that adopted; empty for a command-line run without one.', null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='user')),
            ],
            options={
                'verbose_name': 'adoption record',
                'ordering': ['-created_at', '-id'],
            },
        ),
    ]
