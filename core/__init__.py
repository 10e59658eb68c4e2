"""Foundations every app shares: validators, restricted querysets, admin glue, the API toolkit.

Also the rules about input as a whole: ``jsondoc`` (JSON documents from outside, within
limits) and ``models`` (``StrictTypesMixin``: a field takes values of its own JSON type).

``core`` sits below every project app. It may import Django, Django REST framework,
drf-spectacular and the standard library (``core.api.tasks`` also names kombu's broker
error, ``core.validators`` uses cryptography to parse SSH keys), and NO project app: not
``nodes``, ``vdc``, ``overlays`` or ``config``.

Where core must call project code (save and delete through the service layer, ask
whether a user administers a vDC), it calls ``core.hooks``, which resolves the
functions that ``settings.CORE_HOOKS`` names; see that module for why.

It is not a Django app (it has no models, templates or commands; ``core.models`` holds a
mixin for models, not models), so it is not in ``INSTALLED_APPS``.
"""
