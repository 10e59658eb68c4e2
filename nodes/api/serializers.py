"""Compute nodes for superusers: addresses, SSH settings and what the last refresh and sync saw."""

from __future__ import annotations

from rest_framework import serializers

from core.api.serializers import ServiceModelSerializer
from nodes.models import Node


class NodeSerializer(ServiceModelSerializer):
    """A compute node: addresses, SSH settings, and what the last refresh and sync saw."""

    nic_tags = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        help_text='NIC tags present on the node, e.g. ["admin", "external"].',
    )

    class Meta:
        model = Node
        fields = (
            "hostname", "uuid", "pdc", "status",
            "admin_ip", "admin_netmask", "external_ip", "nic_tags", "default_route_nic",
            "ssh_host", "ssh_port", "ssh_user", "ssh_host_key",
            "loaded_overlay_rules", "refreshed_at", "sync_status", "sync_message",
            "rollback_hold", "created_at", "updated_at",
        )
        read_only_fields = ("loaded_overlay_rules", "refreshed_at", "sync_status",
                            "sync_message", "rollback_hold", "created_at", "updated_at")


class DesiredFileSerializer(serializers.Serializer):
    path = serializers.CharField()
    content = serializers.CharField(
        help_text="The file's text; pre-shared keys are replaced by <redacted>.")
    sha256 = serializers.CharField(
        help_text="SHA-256 of the real content (secrets included), to compare with the node.")
    redacted = serializers.BooleanField(help_text="True when secrets were blanked out.")
    mode = serializers.CharField(help_text='Octal permissions, e.g. "0400".')
    owner = serializers.CharField()
    group = serializers.CharField()
    reload = serializers.CharField(allow_null=True,
                                   help_text="Reload action run after the file changes.")


class UsbkeyEditSerializer(serializers.Serializer):
    path = serializers.CharField()
    managed = serializers.DictField(child=serializers.CharField(),
                                    help_text="The managed keys and their unquoted values.")
    reload = serializers.CharField()


class NodeFilesSerializer(serializers.Serializer):
    hostname = serializers.CharField()
    files = DesiredFileSerializer(many=True)
    usbkey = UsbkeyEditSerializer()
