"""services.vdc_set_admins: the one way a vDC's admins are set (API and state file)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from overlays import services


def test_vdc_set_admins_takes_users_or_names_and_creates_names_only_when_asked(acme, alice, bob):
    result = services.vdc_set_admins(acme, [bob, "alice"])
    assert (result.usernames, result.changed, result.created_users) == (("alice", "bob"), True, ())
    assert not services.vdc_set_admins(acme, ["bob", alice]).changed
    with pytest.raises(ValidationError, match="No user named carol"):
        services.vdc_set_admins(acme, ["carol"])
    result = services.vdc_set_admins(acme, ["carol"], create_missing_users=True)
    assert result.created_users == ("carol",)
    carol = acme.admins.get()
    assert carol.username == "carol" and not carol.has_usable_password()
