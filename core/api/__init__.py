"""The REST API toolkit every app's ``api/`` package builds on.

Roles (``permissions``)
    *Superusers* may do everything. *vDC admins* (users in ``Vdc.admins`` of at
    least one vDC) see and change what the querysets' ``restrict(user)`` gives
    them. Everybody else who is logged in is refused with 403 on every endpoint
    except ``/me/``; anonymous requests get 401.

Errors (``errors``)
    One JSON shape for every error: ``{"detail": "<sentence>"}``, plus
    ``"errors": {"<field>": ["<sentence>", ...]}`` for invalid input (400). Django
    ``ValidationError``s raised by the model layer keep their words and field
    names (``__all__`` becomes ``non_field_errors``); nested fields are spelled
    ``addresses.cn01.ip`` or ``nodes[2]``; a ``core.exceptions.ProblemsError``
    (the state file's) lists its problems by path.

Input (``parsers``, ``pagination``, ``fields``)
    Bodies are strict JSON, nested at most 32 levels (a 400) and no larger than
    ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (a 413), both in the error shape with the reason
    under ``non_field_errors``. ``?limit=`` and ``?offset=`` out of range are 400s.
    Fields take their own JSON type only (``true`` is not an integer), with the words
    the model layer uses for the same mistake.

The rest: ``schema`` (error responses documented on every operation), ``filters``
(``?name=value`` list filters), ``fields`` (relations by name, strict JSON types),
``serializers`` (model serializers that write through the services), ``views`` (the base
view mixin), ``tasks`` (starting Celery tasks and answering 202).

Imports Django, DRF, drf-spectacular, the standard library and ``core``; ``tasks`` also
kombu's broker error. No project app: the service functions and the vDC-admin question
come through ``core.hooks``.
"""
