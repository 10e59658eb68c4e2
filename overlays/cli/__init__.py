"""Subcommands of ``manage.py overlay``; one module each."""


class CliError(Exception):
    """A refusal to show the operator, without a traceback."""

    def __init__(self, message: str, returncode: int = 1) -> None:
        super().__init__(message)
        self.returncode = returncode
