"""Virtual networks in vDCs: what a vDC admin may create, and who administers a vDC."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from overlays.models import AdminOverlay, VirtualNetwork
from overlays.services.locking import lock_for_write
from overlays.services.writes import delete, save
from vdc.models import Vdc


def check_network_delegation(network: VirtualNetwork, *, user: object) -> None:
    """A vDC admin may only place networks in vDCs they administer, inside the allowed ids.

    Superusers are bound only by the model's own rules (the _RESTRICT switches).
    """
    if getattr(user, "is_superuser", False):
        return
    if not getattr(user, "is_authenticated", False):
        raise PermissionDenied("Log in to manage networks.")
    administered = Vdc.objects.restrict(user)
    if network.pk:
        before = VirtualNetwork.objects.filter(pk=network.pk).values_list("vdc_id", flat=True)
        if not administered.filter(pk__in=before).exists():
            raise PermissionDenied("You do not administer the vDC of this network.")
    if network.vdc_id is None:
        raise ValidationError({"vdc": "Choose one of your vDCs; global networks are for "
                                      "superusers."})
    vdc = administered.filter(pk=network.vdc_id).first()
    if vdc is None:
        raise ValidationError({"vdc": "You do not administer this vDC."})
    errors = {}
    if network.overlay_rule_id and AdminOverlay.objects.filter(
            overlay_rule_id=network.overlay_rule_id).exists():
        errors["overlay_rule"] = "The admin overlay rule is reserved for node management."
    if network.vxlan_id is not None and network.vxlan_id not in vdc.vxlan_ranges:
        errors["vxlan_id"] = (f"VXLAN {network.vxlan_id} is outside vDC {vdc.name}'s allowed "
                              f"VXLAN ids ({vdc.vxlan_allowed or 'none'}).")
    if network.vlan_id is not None and network.vlan_id not in vdc.vlan_ranges:
        errors["vlan_id"] = (f"VLAN {network.vlan_id} is outside vDC {vdc.name}'s allowed "
                             f"VLAN ids ({vdc.vlan_allowed or 'none'}).")
    # Superusers get it as a warning (warnings_of); an overlap a superuser made does not
    # stop a vDC admin's edit that leaves subnet and vDC alone.
    stored = (VirtualNetwork.objects.filter(pk=network.pk).values_list("network", "vdc_id")
              .first() if network.pk else None)
    overlap = network.overlap_message() if stored != (network.network, network.vdc_id) \
        else None
    if overlap:
        errors["network"] = overlap
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def save_network(network: VirtualNetwork, *, user: object) -> VirtualNetwork:
    """Save a network as ``user``: the delegation rules, then the model's own.

    The rows are locked first, so the delegation is checked against the vDC as it is
    when the network is written.
    """
    lock_for_write(network)
    check_network_delegation(network, user=user)
    return save(network)


def warnings_of(obj: object) -> dict[str, list[str]]:
    """What a saved object allows but probably should not (overlapping subnets), by field.

    The one source of warnings: the API answers them as ``warnings`` (shaped like
    ``errors``), the pages and the admin show them as messages, the command line and the
    state-file import print them as ``warning: <field or path>: <sentence>``.
    """
    found = getattr(obj, "warnings", None)
    return found() if callable(found) else {}


def delete_network(network: VirtualNetwork, *, user: object) -> None:
    """Delete a network as ``user``, who must administer its vDC (or be a superuser)."""
    if not getattr(user, "is_superuser", False) and not (
        network.vdc_id and Vdc.objects.restrict(user).filter(pk=network.vdc_id).exists()
    ):
        raise PermissionDenied("You do not administer the vDC of this network.")
    delete(network)


@dataclass(frozen=True)
class AdminsSet:
    """What ``vdc_set_admins`` did: the admins' user names, and what changed."""

    usernames: tuple[str, ...]  # sorted
    changed: bool
    created_users: tuple[str, ...]  # in the order given


@transaction.atomic
def vdc_set_admins(vdc: Vdc, admins: Iterable[AbstractBaseUser | str], *,
                   create_missing_users: bool = False) -> AdminsSet:
    """Make exactly these users the admins of ``vdc``; everybody else loses the role there.

    Users are given as objects or by user name. A name without a user is refused on
    ``admins``, unless ``create_missing_users`` (the state-file import, which names admins
    before they ever log in): such a user is created with no usable password.
    """
    users = get_user_model()
    wanted: list[AbstractBaseUser] = []
    created: list[str] = []
    for admin in admins:
        if not isinstance(admin, str):
            wanted.append(admin)
            continue
        user = users.objects.filter(username=admin).first()
        if user is None:
            if not create_missing_users:
                raise ValidationError({"admins": f"No user named {admin}."})
            user = users(username=admin)
            user.set_unusable_password()
            user.save()
            created.append(admin)
        wanted.append(user)
    changed = set(vdc.admins.values_list("pk", flat=True)) != {u.pk for u in wanted}
    if changed:
        vdc.admins.set(wanted)
    return AdminsSet(usernames=tuple(sorted(u.get_username() for u in wanted)),
                     changed=changed, created_users=tuple(created))
