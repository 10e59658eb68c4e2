"""Starting Celery tasks from the API: 202 with the task id, or 503 without a queue.

Tasks are named by dotted path, so core never imports the modules that define them.
Imports Django, Django REST framework, the ``core.api`` error and schema modules and
kombu's broker error (the library Celery sends tasks with; no project app).
"""

from __future__ import annotations

import importlib
import json
import uuid
from typing import Any

from django.urls import reverse
from kombu.exceptions import OperationalError as BrokerError
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.errors import ServiceUnavailable
from core.api.schema import error_response


class TaskAcceptedSerializer(serializers.Serializer):
    task_id = serializers.CharField(help_text="Celery task id.")
    state = serializers.CharField(help_text="Task state when the answer was sent.")
    status_url = serializers.CharField(help_text="Poll this for the state and the result.")


# The responses of an action that starts a task: accepted, or the queue is unavailable.
TASK_ACCEPTED = {202: TaskAcceptedSerializer, 503: error_response(503)}


def _load_task(dotted: str) -> Any:
    module_name, _, name = dotted.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        module = None
    task = getattr(module, name, None)
    if task is None:
        raise ServiceUnavailable(f"The distribution task {dotted} is not installed yet.")
    return task


def start_task(dotted: str, *args: Any, request: Request, **kwargs: Any) -> Response:
    """Queue a Celery task by its dotted path and answer 202 with its id.

    Without a broker (``CELERY_TASK_ALWAYS_EAGER``) the task runs now; a failure is
    stored as the task's FAILURE state, as a worker would, instead of turning this
    request into a 500.
    """
    task = _load_task(dotted)
    task_id = str(uuid.uuid4())
    if task.app.conf.task_always_eager:
        result = task.apply(args=args, kwargs=kwargs, task_id=task_id, throw=False)
    else:
        try:
            result = task.apply_async(args=args, kwargs=kwargs, task_id=task_id)
        except BrokerError as exc:
            raise ServiceUnavailable(f"The task queue is unreachable: {exc}") from exc
    status_url = request.build_absolute_uri(reverse("api-task-detail", args=[task_id]))
    return Response({"task_id": task_id, "state": result.state, "status_url": status_url},
                    status=status.HTTP_202_ACCEPTED)


def json_safe(value: Any) -> Any:
    """A value as plain JSON data (task results may hold anything)."""
    return json.loads(json.dumps(value, default=str))
