"""Foundations every app shares: validators, restricted querysets, admin glue, the API toolkit.

``core`` sits below every project app. It may import Django, Django REST framework,
drf-spectacular and the standard library (``core.api.tasks`` also names kombu's broker
error), and NO project app: not ``nodes``, ``vdc``, ``overlays`` or ``config``.

Where core must call project code (save and delete through the service layer, ask
whether a user administers a vDC), it calls ``core.hooks``, which resolves the
functions that ``settings.CORE_HOOKS`` names; see that module for why.

It is not a Django app (it has no models, templates or commands), so it is not in
``INSTALLED_APPS``.
"""
