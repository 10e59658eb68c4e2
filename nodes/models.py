"""Compute nodes as the management server knows them."""

from __future__ import annotations

import ipaddress

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from core.models import StrictTypesMixin
from core.validators import (
    parse_ssh_public_key,
    validate_account_name,
    validate_host_address,
    validate_hostname,
)
from nodes.transports.base import NodeAddress


class NodeStatus(models.TextChoices):
    ONLINE = "online", "online"
    MAINTENANCE = "maintenance", "maintenance"
    UNREACHABLE = "unreachable", "unreachable"


class SyncStatus(models.TextChoices):
    UNKNOWN = "unknown", "never synced"
    IN_SYNC = "in_sync", "in sync"
    PENDING = "pending", "pending"
    FAILED = "failed", "failed"


class RollbackHold(models.TextChoices):
    """Whether syncs leave a node alone because a change rolled back on it."""

    NONE = "", "none"
    HELD = "held", "held after a rollback"
    RELEASED = "released", "released: the next sync may change it"


# Columns of Node that only the distribution writes, with queryset updates.
SYNC_COUNTERS = ("desired_generation", "synced_generation")


class Node(StrictTypesMixin, models.Model):
    hostname = models.CharField(
        verbose_name="hostname",
        max_length=253,
        unique=True,
        validators=[validate_hostname],
        help_text="The node's host name, as overlay rule node lists name it.",
    )
    uuid = models.UUIDField(
        verbose_name="UUID",
        null=True,
        blank=True,
        unique=True,
        help_text="sysinfo UUID; filled in by a refresh.",
    )
    pdc = models.CharField(
        verbose_name="physical datacenter",
        max_length=100,
        help_text="sysinfo 'Datacenter Name'. Nodes with the same name talk over the admin "
        "network; nodes with different names talk over IPSec on their external IPs.",
    )
    admin_ip = models.GenericIPAddressField(
        verbose_name="admin IP",
        protocol="IPv4",
        null=True,
        blank=True,
        help_text="Address on the internal admin network.",
    )
    admin_netmask = models.GenericIPAddressField(
        verbose_name="admin netmask",
        protocol="IPv4",
        default="255.255.255.0",
        help_text="Netmask of the admin network, used to tell which nodes share it.",
    )
    external_ip = models.GenericIPAddressField(
        verbose_name="external IP",
        protocol="IPv4",
        null=True,
        blank=True,
        help_text="Public IPv4 on external0; needed once nodes sit in more than one PDC.",
    )
    nic_tags = models.JSONField(
        verbose_name="NIC tags",
        default=list,
        blank=True,
        help_text='NIC tags present on the node, e.g. ["admin", "external"].',
    )
    default_route_nic = models.CharField(
        verbose_name="default route interface",
        max_length=32,
        blank=True,
        help_text="Interface of the default route, e.g. external0.",
    )
    status = models.CharField(
        verbose_name="status",
        max_length=16,
        choices=NodeStatus.choices,
        default=NodeStatus.ONLINE,
        help_text="Only online nodes receive files; others are caught up when they return.",
    )
    ssh_host = models.CharField(
        verbose_name="SSH host",
        max_length=253,
        blank=True,
        help_text="Address the management server connects to; empty means the admin IP.",
    )
    ssh_port = models.PositiveIntegerField(
        verbose_name="SSH port",
        default=22,
        validators=[MinValueValidator(1), MaxValueValidator(65535)],
    )
    ssh_user = models.CharField(
        verbose_name="SSH user",
        max_length=64,
        default="root",
    )
    ssh_host_key = models.TextField(
        verbose_name="pinned SSH host key",
        blank=True,
        help_text="The node's public host key in known_hosts form (\"ssh-ed25519 AAAA...\"). "
        "Connections offering any other key are refused.",
    )
    management_source = models.GenericIPAddressField(
        verbose_name="management source",
        null=True,
        blank=True,
        editable=False,
        help_text="The local address the management server's SSH connection to this node "
        "left from at its last sync. Unless OVERLAY_MANAGEMENT_SOURCES is set, every "
        "node's allow-list lets these addresses in.",
    )
    loaded_overlay_rules = models.JSONField(
        verbose_name="rules loaded on the node",
        default=dict,
        blank=True,
        help_text="The platform's overlay_rules.json as last read by a refresh.",
    )
    refreshed_at = models.DateTimeField(
        verbose_name="last refreshed",
        null=True,
        blank=True,
    )
    sync_status = models.CharField(
        verbose_name="sync status",
        max_length=16,
        choices=SyncStatus.choices,
        default=SyncStatus.UNKNOWN,
    )
    sync_message = models.TextField(
        verbose_name="sync message",
        blank=True,
        help_text="Why the last sync failed or is pending.",
    )
    rollback_hold = models.CharField(
        verbose_name="rollback hold",
        max_length=16,
        choices=RollbackHold.choices,
        default=RollbackHold.NONE,
        blank=True,
        editable=False,
        help_text="\"held\": the node restored its previous files because a change could not "
        "be confirmed over a new SSH connection; syncs change nothing on it until "
        "`overlay update --force HOST` releases it.",
    )
    desired_generation = models.BigIntegerField(
        verbose_name="desired generation",
        default=0,
        editable=False,
        help_text="Counts the changes to the node's files: each change adds one in its own "
        "transaction.",
    )
    synced_generation = models.BigIntegerField(
        verbose_name="synced generation",
        default=0,
        editable=False,
        help_text="The desired generation the last completed sync deployed; the node is in "
        "sync only while the two are equal.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["hostname"]
        verbose_name = "compute node"

    def __str__(self) -> str:
        return self.hostname

    def save(self, *args: object, **kwargs: object) -> None:
        """Save the node, never its generation counters (``SYNC_COUNTERS``).

        The counters are written by queryset updates only (a change adds one, a sync
        records what it deployed): an edit made from a copy loaded earlier must not
        put them back, or a node could look in sync with files it does not hold.
        """
        if not self._state.adding and kwargs.get("update_fields") is None \
                and not kwargs.get("force_insert"):
            kwargs["update_fields"] = [
                f.name for f in self._meta.concrete_fields
                if not f.primary_key and f.name not in SYNC_COUNTERS]
        super().save(*args, **kwargs)

    def clean(self) -> None:
        errors = {}
        if self.nic_tags is None:
            self.nic_tags = []
        if not isinstance(self.nic_tags, list) or not all(
            isinstance(t, str) and t for t in self.nic_tags
        ):
            errors["nic_tags"] = "NIC tags must be a list of tag names."
        else:
            self.nic_tags = sorted(set(self.nic_tags))
        try:
            ipaddress.IPv4Network(f"0.0.0.0/{self.admin_netmask}")
        except ValueError:
            errors["admin_netmask"] = f"{self.admin_netmask} is not a contiguous netmask."
        if isinstance(self.pdc, str):
            stripped = self.pdc.strip()
            if self.pdc and not stripped:
                errors["pdc"] = "The physical datacenter name cannot be only blanks."
            elif not stripped.isprintable():
                errors["pdc"] = ("The physical datacenter name must be one line of printable "
                                 "characters.")
            self.pdc = stripped
        errors.update(self._ssh_errors())
        if errors:
            raise ValidationError(errors)

    def _ssh_errors(self) -> dict[str, str]:
        """The SSH settings as the transport will use them; the host key is parsed now, not
        when a sync first connects."""
        errors = {}
        checks = (("ssh_host", validate_host_address), ("ssh_user", validate_account_name),
                  ("ssh_host_key", parse_ssh_public_key))
        for name, check in checks:
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                continue  # empty: the default applies (type errors: StrictTypesMixin)
            if name == "ssh_host_key":
                value = value.strip()  # as ssh-keyscan or a .pub file prints it
                setattr(self, name, value)
            try:
                check(value)
            except ValidationError as exc:
                errors[name] = exc.messages[0]
        return errors

    @property
    def admin_network(self) -> ipaddress.IPv4Network | None:
        if not self.admin_ip:
            return None
        return ipaddress.IPv4Network(f"{self.admin_ip}/{self.admin_netmask}", strict=False)

    @property
    def connect_host(self) -> str:
        return self.ssh_host or self.admin_ip or self.hostname

    @property
    def ssh_address(self) -> NodeAddress:
        """How a transport reaches this node: host, port, user and the pinned host key."""
        return NodeAddress(hostname=self.hostname, host=self.connect_host, port=self.ssh_port,
                           user=self.ssh_user, host_key=self.ssh_host_key)


# --- Distribution: what was pushed to each node -----------------------------------


class DeploymentResult(models.TextChoices):
    OK = "ok", "ok"
    FAILED = "failed", "failed"
    SKIPPED = "skipped", "skipped"
    NO_CHANGE = "no-change", "no change"


class Confirmation(models.TextChoices):
    """How a deployment that reloaded IPSec or ipfilter ended (commit confirmed)."""

    NONE = "", "not needed"
    CONFIRMED = "confirmed", "confirmed"
    ROLLED_BACK = "rolled-back", "rolled back"
    RESTORED = "restored", "previous files restored after a failure"


class Deployment(models.Model):
    """One synchronisation of one node: what changed, what ran, how it ended.

    Holds hashes and paths, never file contents (the IPSec files carry keys).
    """

    node = models.ForeignKey(
        Node,
        verbose_name="node",
        on_delete=models.CASCADE,
        related_name="deployments",
    )
    started_at = models.DateTimeField(
        verbose_name="started",
    )
    finished_at = models.DateTimeField(
        verbose_name="finished",
        null=True,
        blank=True,
    )
    reason = models.CharField(
        verbose_name="trigger",
        max_length=255,
        blank=True,
        help_text="What asked for this sync, e.g. \"vNIC web01 saved\" or \"overlay update\".",
    )
    scope = models.CharField(
        verbose_name="files considered",
        max_length=255,
        blank=True,
        help_text="\"all\", or the groups of files the trigger affects (e.g. arp:/opt/...).",
    )
    result = models.CharField(
        verbose_name="result",
        max_length=16,
        choices=DeploymentResult.choices,
    )
    error = models.TextField(
        verbose_name="error",
        blank=True,
        help_text="Why the sync failed or was skipped.",
    )
    files_changed = models.JSONField(
        verbose_name="files changed",
        default=list,
        blank=True,
        help_text='Uploaded files as [{"path": ..., "sha256": ...}]; sha256 is null for a '
        "file removed from the node.",
    )
    commands = models.JSONField(
        verbose_name="commands run",
        default=list,
        blank=True,
        help_text='Reload commands as [{"command": ..., "exit_status": ...}].',
    )
    confirmation = models.CharField(
        verbose_name="confirmation",
        max_length=16,
        choices=Confirmation.choices,
        default=Confirmation.NONE,
        blank=True,
        help_text="After an IPSec or ipfilter reload: \"confirmed\" over a new SSH connection "
        "in time, \"rolled back\" by the node's revert timer, or \"restored\" by the sync "
        "itself after a failure.",
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = "deployment"
        indexes = [
            models.Index(fields=["node", "-started_at"], name="deployment_node_started"),
        ]

    def __str__(self) -> str:
        return f"{self.node.hostname} {self.started_at:%Y-%m-%d %H:%M:%S} {self.result}"

    @property
    def duration(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class DeployedFile(models.Model):
    """The hash of a file as last deployed (uploaded and applied) to a node.

    A sync uploads a file only when the hash of its desired content differs
    from this one. For ``/usbkey/config``, whose other lines belong to the
    node, the hash covers only the managed keys (``overlays.distribution.plan``).
    """

    node = models.ForeignKey(
        Node,
        verbose_name="node",
        on_delete=models.CASCADE,
        related_name="deployed_files",
    )
    path = models.CharField(
        verbose_name="path",
        max_length=255,
    )
    sha256 = models.CharField(
        verbose_name="SHA-256",
        max_length=64,
    )
    deployed_at = models.DateTimeField(
        verbose_name="deployed",
    )

    class Meta:
        ordering = ["node__hostname", "path"]
        verbose_name = "deployed file"
        constraints = [
            models.UniqueConstraint(fields=["node", "path"], name="unique_deployed_file_path"),
        ]

    def __str__(self) -> str:
        return f"{self.node.hostname}:{self.path}"


class PendingSync(models.Model):
    """A sync a node is owed: the transactional outbox of the distribution.

    Written in the same transaction as the change that needs it (one row per node; later
    requests merge their file groups and reasons into it), so a committed change always
    has its follow-up. A task is queued for it after commit; the row stays until a sync
    of the node completes, so a broker that is down, a lost message or a worker killed
    mid-sync only delays it: the periodic reconcile queues it again.
    """

    node = models.OneToOneField(
        Node,
        verbose_name="node",
        on_delete=models.CASCADE,
        related_name="pending_sync",
    )
    scope = models.JSONField(
        verbose_name="file groups",
        null=True,
        blank=True,
        help_text="The file groups to sync (e.g. [\"ipsec\", \"arp:/opt/...\"]); empty means "
        "every file.",
    )
    reasons = models.TextField(
        verbose_name="triggers",
        blank=True,
        help_text="What asked for the sync, one trigger per line.",
    )
    verify = models.BooleanField(
        verbose_name="compare with the node",
        default=False,
        help_text="Compare with the files on the node instead of the recorded hashes.",
    )
    base_generation = models.BigIntegerField(
        verbose_name="base generation",
        default=0,
        help_text="The node's desired generation before the first change in this request.",
    )
    revision = models.PositiveIntegerField(
        verbose_name="revision",
        default=1,
        help_text="Counts the requests merged in; a sync removes the row only if none "
        "arrived while it ran.",
    )
    requested_at = models.DateTimeField(
        verbose_name="first requested",
    )
    updated_at = models.DateTimeField(
        verbose_name="last requested",
    )
    dispatched_at = models.DateTimeField(
        verbose_name="task queued",
        null=True,
        blank=True,
        help_text="When a task was queued for this request and has not started yet.",
    )

    class Meta:
        ordering = ["requested_at", "id"]
        verbose_name = "pending sync"

    def __str__(self) -> str:
        return f"{self.node.hostname}: {self.reasons.splitlines()[0] if self.reasons else 'sync'}"
