"""``RestrictedQuerySet``: what a user may see, with the roles handled in one place.

Imports Django only.
"""

from __future__ import annotations

from typing import Self

from django.db import models
from django.db.models import Q

from core.roles import sees_everything


class RestrictedQuerySet(models.QuerySet):
    """A queryset with ``restrict(user)``: the rows this user may see.

    Superusers and auditors (``core.roles``) see every row; anonymous and inactive users
    see none. Everybody else
    sees the rows ``visible_to(user)`` selects: each model's queryset supplies only
    that, its own restriction (for example ``Q(admins=user)`` for vDCs).
    """

    def restrict(self, user: object) -> Self:
        if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
            return self.none()
        if sees_everything(user):
            return self
        return self.filter(self.visible_to(user))

    def visible_to(self, user: object) -> Q:
        """The condition a signed-in user who is not a superuser must meet; subclasses say."""
        raise NotImplementedError(f"{type(self).__name__} must define visible_to(user)")
