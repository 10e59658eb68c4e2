"""The API's one body parser: strict JSON within a nesting limit, or a 400 in the error shape.

DRF's ``JSONParser`` lets a deeply nested body raise RecursionError (a 500) and reads
``1e999`` as infinity, which no column or export can hold. This parser reads the body with
``core.jsondoc.parse_json`` instead. The body's size is bounded before any parser runs:
DRF reads JSON through ``request.body``, which refuses more than
``DATA_UPLOAD_MAX_MEMORY_SIZE`` bytes, and ``core.api.errors`` answers that with a 413.

Imports Django REST framework and ``core.jsondoc`` only.
"""

from __future__ import annotations

from typing import IO, Any

from rest_framework import parsers
from rest_framework.exceptions import ParseError

from core.jsondoc import JsonDocumentError, parse_json


class JsonParser(parsers.JSONParser):
    """``application/json`` bodies: UTF-8 (or the declared text charset), strict JSON, nested
    at most ``core.jsondoc.MAX_JSON_DEPTH`` levels; anything else is a ParseError (400)."""

    def parse(self, stream: IO[bytes], media_type: str | None = None,
              parser_context: dict[str, Any] | None = None) -> Any:
        encoding = parsers.get_encoding(parser_context or {})
        data = stream.read()
        if encoding.lower().replace("_", "-") not in ("utf-8", "utf8"):
            try:
                data = data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise ParseError(f"JSON parse error - not {encoding} text "
                                 f"(byte {exc.start} is 0x{data[exc.start]:02x}).") from None
        try:
            return parse_json(data)
        except JsonDocumentError as exc:
            raise ParseError(f"JSON parse error - {exc}.") from None
