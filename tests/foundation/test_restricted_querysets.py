"""RestrictedQuerySet: superusers see everything, anonymous and inactive users nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser

from overlays.models import VirtualNetwork, Vnic
from vdc.models import Vdc, is_vdc_admin

RESTRICTED = [Vdc, VirtualNetwork, Vnic]


@pytest.fixture
def vnic(web, make_vnic) -> Vnic:
    return make_vnic(web, "02:08:20:aa:00:01", "192.168.10.11")


@pytest.mark.parametrize("model", RESTRICTED, ids=lambda m: m.__name__)
def test_superusers_see_every_row(vnic, superuser, model):
    assert model.objects.restrict(superuser).count() == model.objects.count() > 0


@pytest.mark.parametrize("model", RESTRICTED, ids=lambda m: m.__name__)
def test_anonymous_and_inactive_users_see_no_row(vnic, alice, superuser, model):
    assert model.objects.restrict(alice).exists()
    alice.is_active = superuser.is_active = False
    for user in (AnonymousUser(), alice, superuser, None):
        assert not model.objects.restrict(user).exists()


def test_a_vdc_admin_is_an_active_user_with_a_vdc(acme, alice, bob):
    assert is_vdc_admin(alice)
    assert not is_vdc_admin(bob)
    assert not is_vdc_admin(AnonymousUser())
    alice.is_active = False
    assert not is_vdc_admin(alice)

