"""Bad input, refused cleanly: the API's clients per role and a picture of the whole state.

The API fixtures (the demo cluster, ``su``, ``alice``, automatic sync off) are the API
suite's own; ``picture()`` is what "nothing changed" compares.
"""

from __future__ import annotations

import pytest

from tests.api.conftest import alice, api_settings, client_for, su, users  # noqa: F401
from tests.input.helpers import picture


@pytest.fixture
def unchanged(demo_cluster):
    """Call it at the end of a test: asserts that the state equals the one at the start."""
    before = picture()

    def check() -> None:
        assert picture() == before

    return check
