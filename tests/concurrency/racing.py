"""Firing many requests at the same instant, each from its own thread and database connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connections
from rest_framework.test import APIClient

PARALLEL = 30  # requests per round, the "at least 30 parallel requests"
ROUNDS = 10


@dataclass(frozen=True)
class Outcome:
    """One request's answer: status and JSON body, or the exception it raised."""

    status: int | None
    body: Any
    error: BaseException | None = None

    def field_errors(self) -> dict[str, list[str]]:
        return (self.body or {}).get("errors", {}) if isinstance(self.body, dict) else {}


def race(calls: list[Callable[[], Any]], *, timeout: float = 60) -> list[Outcome]:
    """Run every call in its own thread, released together by a barrier; their outcomes.

    Each thread has its own database connection (Django's connections are per thread) and
    closes it when done. A call returns a response (status and JSON body are kept) or
    anything else (kept as the body).
    """
    barrier = threading.Barrier(len(calls))
    outcomes: list[Outcome | None] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout)
            result = call()
            status = getattr(result, "status_code", None)
            body = result.json() if status is not None and result.content else result
            outcomes[index] = Outcome(status, body)
        except BaseException as exc:  # noqa: BLE001 - reported by the test, not lost
            outcomes[index] = Outcome(None, None, exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, call), daemon=True)
               for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert all(not t.is_alive() for t in threads), "a request did not finish in time"
    return [o for o in outcomes if o is not None]


def client(user: object) -> APIClient:
    """An API client signed in as ``user``."""
    api = APIClient()
    api.force_authenticate(user)
    return api


def post(user: object, path: str, data: dict) -> Callable[[], Any]:
    """A call that POSTs ``data`` as ``user``; for ``race``."""
    return lambda: client(user).post(path, data, format="json")


def patch(user: object, path: str, data: dict) -> Callable[[], Any]:
    return lambda: client(user).patch(path, data, format="json")


def put(user: object, path: str, data: dict) -> Callable[[], Any]:
    return lambda: client(user).put(path, data, format="json")


def delete(user: object, path: str) -> Callable[[], Any]:
    return lambda: client(user).delete(path)


def statuses(outcomes: list[Outcome]) -> dict[int | None, int]:
    """How many outcomes had each status (None: the call raised)."""
    counts: dict[int | None, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts


def assert_clean(outcomes: list[Outcome], *, refused_on: str) -> None:
    """Every request either succeeded or was refused with a field error on ``refused_on``:
    no exception, no server error, no 409 from a constraint the validation missed."""
    raised = [repr(o.error) for o in outcomes if o.error is not None]
    assert not raised, raised
    for outcome in outcomes:
        assert outcome.status in (200, 201, 400), (outcome.status, outcome.body)
        if outcome.status == 400:
            assert refused_on in outcome.field_errors(), outcome.body
