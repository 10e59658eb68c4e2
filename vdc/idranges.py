"""Lists of ids and id ranges, as written by operators: ``"100-199, 250"``.

A virtual datacenter limits the VXLAN ids (``VMS_NET_VXLAN_ALLOWED``) and the
VLAN ids (``VMS_NET_VLAN_ALLOWED``) its admins may use with such a list.  This
module parses the text strictly (every mistake is reported with the offending
item named), keeps the result as sorted, disjoint, inclusive spans, and answers
the questions the model layer asks: is an id allowed, how many ids are there,
where do two lists overlap, which is the lowest id still free.

Pure Python: no Django, no database.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field

VXLAN_MIN, VXLAN_MAX = 1, 16777215
VLAN_MIN, VLAN_MAX = 0, 4095

# One item: a number, or two numbers joined by a dash; blanks allowed around the dash.
# ASCII digits only (``\d`` would also accept other scripts' digits).
_ITEM_RE = re.compile(r"^([0-9]+)(?:\s*-\s*([0-9]+))?$")
# Longer than any bound we use; keeps int() away from absurdly long digit strings.
_MAX_DIGITS = 30
# How much of a bad item to quote back in a message.
_QUOTE_MAX = 40


class IdRangeError(ValueError):
    """The text is not a valid id-range list; the message names the bad item."""


def _quote(item: str) -> str:
    if len(item) > _QUOTE_MAX:
        item = item[: _QUOTE_MAX - 3] + "..."
    return f"'{item}'"


def _span_text(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


def _noun(label: str) -> str:
    """``"VXLAN"`` -> ``"VXLAN id"``; the default label ``"id"`` stays ``"id"``."""
    label = label.strip()
    if not label or label.lower() == "id":
        return "id"
    return f"{label} id"


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _normalise(spans: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Sort spans and merge the overlapping or adjacent ones."""
    merged: list[list[int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1] + 1:
            if hi > merged[-1][1]:
                merged[-1][1] = hi
        else:
            merged.append([lo, hi])
    return tuple((lo, hi) for lo, hi in merged)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class IdRanges:
    """A set of integer ids held as sorted, disjoint, inclusive ``(lo, hi)`` spans.

    Adjacent spans are merged, so two equal sets always compare equal and print
    the same.  Build one with :meth:`parse`; constructing directly from spans is
    allowed too (they are sorted and merged, overlaps included, without bounds
    checks).  An empty instance allows nothing.
    """

    spans: tuple[tuple[int, int], ...] = ()
    # Low ends of the spans, for bisect; derived, so not part of equality or repr.
    _los: tuple[int, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        spans = tuple(tuple(span) for span in self.spans)
        for span in spans:
            if len(span) != 2 or not all(_is_int(v) for v in span):
                raise TypeError(f"a span must be a pair of ints, not {span!r}")
            if span[0] > span[1]:
                raise ValueError(f"span {span[0]}-{span[1]} is reversed")
        spans = _normalise(spans)
        object.__setattr__(self, "spans", spans)
        object.__setattr__(self, "_los", tuple(lo for lo, _ in spans))

    # ------------------------------------------------------------------ parsing

    @classmethod
    def parse(cls, text: str, *, minimum: int, maximum: int, label: str = "id") -> IdRanges:
        """Parse ``"100-199, 250"``; raise :class:`IdRangeError` on any mistake.

        Empty or blank text gives the empty set.  Items are separated by commas;
        each is one id or ``lo-hi`` (inclusive), blanks allowed around items and
        dashes.  Rejected: anything that is not such an item (including empty
        items such as in ``"1,,2"``), reversed ranges, ids outside
        ``minimum..maximum``, and items that overlap another item of the same
        list (``"5,5"`` too).  Adjacent items (``"1-5,6-9"``) are fine and merge.
        ``label`` names the kind of id in messages (``"VXLAN"`` gives
        "VXLAN id 0 is out of range 1-16777215").
        """
        if not isinstance(text, str):
            raise TypeError(f"expected the id list as a string, not {type(text).__name__}")
        if not text.strip():
            return cls()
        noun = _noun(label)
        bounds = _span_text(minimum, maximum)
        items: list[tuple[int, int, str]] = []
        for position, raw in enumerate(text.split(","), start=1):
            item = raw.strip()
            if not item:
                raise IdRangeError(
                    f"Item {position} of the {noun} list is empty: remove the extra comma "
                    "(items are separated by single commas, e.g. 100-199,250)."
                )
            match = _ITEM_RE.match(item)
            if match is None:
                raise IdRangeError(
                    f"{_quote(item)} is not a valid {noun} or range: write a single id "
                    "such as 250 or a range such as 100-199."
                )
            lo_text, hi_text = match.group(1), match.group(2)
            if hi_text is None:
                hi_text = lo_text
            if len(lo_text) > _MAX_DIGITS or len(hi_text) > _MAX_DIGITS:
                raise IdRangeError(f"{_upper_first(noun)} {_quote(item)} is out of range {bounds}.")
            lo, hi = int(lo_text), int(hi_text)
            if lo > hi:
                raise IdRangeError(f"Range {lo}-{hi} is reversed; write {hi}-{lo}.")
            if lo < minimum or hi > maximum:
                what = f"{noun} {lo}" if lo == hi else f"{noun} range {lo}-{hi}"
                raise IdRangeError(f"{_upper_first(what)} is out of range {bounds}.")
            items.append((lo, hi, _span_text(lo, hi)))

        # Overlaps inside the one list: after sorting by the low end, an item
        # overlaps an earlier one exactly when it starts at or before the highest
        # end seen so far.  Name the two items as the operator wrote them, the
        # one written later first.
        order = sorted(range(len(items)), key=lambda i: (items[i][0], items[i][1]))
        widest: int | None = None  # index of the item reaching highest so far
        for index in order:
            lo, hi, _ = items[index]
            if widest is not None and lo <= items[widest][1]:
                first, second = sorted((index, widest))
                if items[first][:2] == items[second][:2]:
                    raise IdRangeError(
                        f"{items[first][2]} is listed twice: "
                        f"each {noun} may appear only once in the list."
                    )
                raise IdRangeError(
                    f"{items[second][2]} overlaps {items[first][2]}: "
                    f"each {noun} may appear only once in the list."
                )
            if widest is None or hi > items[widest][1]:
                widest = index
        return cls(tuple((lo, hi) for lo, hi, _ in items))

    # ---------------------------------------------------------------- queries

    def __contains__(self, value: object) -> bool:
        if not _is_int(value):
            return False
        index = bisect_right(self._los, value) - 1  # last span starting at or below value
        return index >= 0 and value <= self.spans[index][1]

    def __str__(self) -> str:
        return ",".join(_span_text(lo, hi) for lo, hi in self.spans)

    def is_empty(self) -> bool:
        """True when no id at all is allowed."""
        return not self.spans

    def count(self) -> int:
        """How many ids the ranges hold in total."""
        return sum(hi - lo + 1 for lo, hi in self.spans)

    def overlaps(self, other: IdRanges) -> IdRanges:
        """The ids both hold (their intersection); empty when they are disjoint."""
        result: list[tuple[int, int]] = []
        a, b = self.spans, other.spans
        i = j = 0
        while i < len(a) and j < len(b):
            lo = max(a[i][0], b[j][0])
            hi = min(a[i][1], b[j][1])
            if lo <= hi:
                result.append((lo, hi))
            # Advance whichever span ends first; the other may still meet the next one.
            if a[i][1] < b[j][1]:
                i += 1
            else:
                j += 1
        return IdRanges(tuple(result))

    def _used_inside(self, used: Iterable[int]) -> list[int]:
        return sorted({u for u in used if u in self})

    def first_free(self, used: Iterable[int]) -> int | None:
        """The lowest id inside the ranges that is not in ``used``; None if all are used."""
        taken = self._used_inside(used)
        position = 0
        for lo, hi in self.spans:
            candidate = lo
            # Skip the used ids below this span (they belong to earlier spans).
            while position < len(taken) and taken[position] < lo:
                position += 1
            while position < len(taken) and taken[position] == candidate:
                candidate += 1
                position += 1
            if candidate <= hi:
                return candidate
        return None

    def free_count(self, used: Iterable[int]) -> int:
        """How many ids inside the ranges are not in ``used``."""
        return self.count() - len(self._used_inside(used))
