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

The rest: ``schema`` (error responses documented on every operation), ``filters``
(``?name=value`` list filters), ``fields`` (relations by name), ``serializers``
(model serializers that write through the services), ``views`` (the base view mixin),
``tasks`` (starting Celery tasks and answering 202).

Imports Django, DRF, drf-spectacular, the standard library and ``core``; ``tasks`` also
kombu's broker error. No project app: the service functions and the vDC-admin question
come through ``core.hooks``.
"""
