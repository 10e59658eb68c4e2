"""The page tests' fixtures (the demo cluster's users, fast password hashing), reused by the
browser test of this directory."""

from tests.pages.conftest import page_settings, users  # noqa: F401 - fixtures
