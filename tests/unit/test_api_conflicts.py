"""A deadlock or serialization failure that PostgreSQL resolves by rolling back is a 409."""

from django.db import OperationalError

from core.api.errors import api_exception_handler


class _PgError(Exception):
    def __init__(self, pgcode: str) -> None:
        super().__init__("deadlock detected")
        self.pgcode = pgcode


def _database_error(pgcode: str) -> OperationalError:
    try:
        try:
            raise _PgError(pgcode)
        except _PgError as cause:
            raise OperationalError("deadlock detected") from cause
    except OperationalError as exc:
        return exc


def test_a_deadlock_is_a_conflict_the_client_may_retry():
    response = api_exception_handler(_database_error("40P01"), {})
    assert response.status_code == 409
    assert "Retry" in response.data["detail"]


def test_a_serialization_failure_is_a_conflict():
    assert api_exception_handler(_database_error("40001"), {}).status_code == 409


def test_other_database_errors_are_not_hidden_as_conflicts():
    assert api_exception_handler(_database_error("08006"), {}) is None
