"""Exceptions that domain code raises and the UI layers translate.

Imports the standard library only.
"""

from __future__ import annotations


class ProblemsError(Exception):
    """Input rejected as a whole; ``problems`` lists (path, sentence) pairs.

    A path names where in the input the problem is (for a JSON document: ``nodes[0].pdc``).
    Domain errors subclass it (the state file's ``StateFileError``) so that the API
    answers every one as a 400 with the problems keyed by path, without knowing the domain.
    """

    def __init__(self, problems: list[tuple[str, str]], message: str | None = None) -> None:
        self.problems = problems
        super().__init__(message or f"{len(problems)} problem(s) in the input")

    def lines(self) -> list[str]:
        """One ``path: sentence`` line per problem, for a terminal."""
        return [f"{path}: {message}" for path, message in self.problems]
