"""Roles: superusers, auditors (read-only, ``core.roles``), vDC admins (through
``core.hooks``), and everybody else refused.

Imports DRF, ``core.hooks`` and ``core.roles`` only.
"""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from core import hooks
from core.roles import AUDITOR_READ_ONLY, is_auditor, sees_everything

__all__ = ["AUDITOR_READ_ONLY", "NOT_A_VDC_ADMIN", "RolePermission", "is_auditor",
           "is_superuser", "is_vdc_admin", "sees_everything"]

NOT_A_VDC_ADMIN = (
    "You are neither a superuser nor an admin of any vDC; ask a superuser to make you "
    "an admin of a vDC."
)


def is_superuser(user: object) -> bool:
    """True for a logged-in superuser (AnonymousUser has no is_superuser to trust)."""
    return bool(getattr(user, "is_authenticated", False) and getattr(user, "is_superuser", False))


def is_vdc_admin(user: object) -> bool:
    """True for a logged-in user who administers at least one vDC."""
    if not getattr(user, "is_authenticated", False):
        return False
    return hooks.is_vdc_admin(user)


class RolePermission(BasePermission):
    """Superusers always; auditors every safe method, nothing else; vDC admins as the
    view's ``vdc_admin_access`` says.

    ``vdc_admin_access`` is ``"none"`` (superusers only), ``"read"`` (safe methods)
    or ``"write"`` (every method; the querysets and services keep them inside
    their vDCs). ``superuser_reason`` is the sentence a refused vDC admin reads.
    """

    message = "Only superusers may use this endpoint."

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        if is_superuser(user):
            return True
        if not getattr(user, "is_authenticated", False):
            return False  # DRF answers 401
        if is_auditor(user):
            if request.method in SAFE_METHODS:
                return True
            self.message = AUDITOR_READ_ONLY
            return False
        access = getattr(view, "vdc_admin_access", "none")
        reason = getattr(view, "superuser_reason", self.message)
        if not is_vdc_admin(user):
            self.message = NOT_A_VDC_ADMIN if access != "none" else reason
            return False
        if access == "write" or (access == "read" and request.method in SAFE_METHODS):
            return True
        self.message = reason
        return False
