"""Commit confirmed: how a deployment's IPSec/ipfilter reload ended, and the node's hold.

``Deployment.confirmation`` records whether the change was confirmed over a new SSH
connection, rolled back by the node's own revert timer, or restored by the sync after a
failure; ``Node.rollback_hold`` keeps syncs from repeating a change that rolled back until
an operator releases the node (``overlay update --force HOST``).
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('nodes', '0005_management_source'),
    ]

    operations = [
        migrations.AddField(
            model_name='deployment',
            name='confirmation',
            field=models.CharField(blank=True, choices=[('', 'not needed'), ('confirmed', 'confirmed'), ('rolled-back', 'rolled back'), ('restored', 'previous files restored after a failure')], default='', help_text='After an IPSec or ipfilter reload: "confirmed" over a new SSH connection in time, "rolled back" by the node\'s revert timer, or "restored" by the sync itself after a failure.', max_length=16, verbose_name='confirmation'),
        ),
        migrations.AddField(
            model_name='node',
            name='rollback_hold',
            field=models.CharField(blank=True, choices=[('', 'none'), ('held', 'held after a rollback'), ('released', 'released: the next sync may change it')], default='', editable=False, help_text='"held": the node restored its previous files because a change could not be confirmed over a new SSH connection; syncs change nothing on it until `overlay update --force HOST` releases it.', max_length=16, verbose_name='rollback hold'),
        ),
    ]
