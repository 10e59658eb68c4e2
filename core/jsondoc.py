"""JSON documents from outside (API bodies, state files): parsed within limits, or one sentence.

Python's ``json`` has no limit of its own: a body of ten thousand ``[`` raises
RecursionError (an API 500, a command-line traceback), ``1e999`` becomes infinity, which
no database column or later export can hold, and text that is not UTF-8 raises
UnicodeDecodeError. ``parse_json`` turns each of these into a ``JsonDocumentError``
whose message is one sentence for the user, and ``check_depth`` bounds the nesting of a
document that is already parsed (a state file handed to the import as Python data).

Imports the standard library only.
"""

from __future__ import annotations

import json
import math
from typing import Any

# Deeper than any document this application reads (a state file needs 4 levels) and far
# below Python's recursion limit, so code that walks a document recursively is safe.
MAX_JSON_DEPTH = 32


class JsonDocumentError(ValueError):
    """The input is not a JSON document this application reads.

    ``str()`` says why in a phrase that follows "cannot be read as JSON:" or "JSON parse
    error -", e.g. "not UTF-8 text (byte 0 is 0xff)".
    """


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonDocumentError(f"the number {text[:40]} is too large")
    return value


def _constant(name: str) -> None:
    raise JsonDocumentError(f"{name} is not valid JSON")


def json_depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects (a scalar is 0); iterative, never recursive."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check_depth(value: Any, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise JsonDocumentError when ``value`` nests lists and objects deeper than ``max_depth``."""
    if json_depth(value) > max_depth:
        raise JsonDocumentError(_too_deep(max_depth))


def _too_deep(max_depth: int) -> str:
    return f"lists and objects nest more than {max_depth} levels deep"


def parse_json(data: bytes | str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """The document in ``data`` (UTF-8 bytes or text), or JsonDocumentError saying why not.

    Refused: bytes that are not UTF-8 (a byte-order mark included), anything that is not
    strict JSON (``NaN``, ``Infinity``), numbers too large for a float, and nesting deeper
    than ``max_depth``.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonDocumentError(
                f"not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})") from None
    else:
        text = data
    try:
        document = json.loads(text, parse_float=_finite, parse_constant=_constant)
    except JsonDocumentError:
        raise
    except RecursionError:
        raise JsonDocumentError(_too_deep(max_depth)) from None
    except json.JSONDecodeError as exc:
        raise JsonDocumentError(f"{exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except ValueError:  # an integer of more digits than Python converts (4300)
        raise JsonDocumentError("a number has too many digits") from None
    check_depth(document, max_depth)
    return document
