"""Admin form helpers: lists edited as one item per line instead of raw JSON."""

from __future__ import annotations

from django import forms


class LineListField(forms.CharField):
    """A list of strings edited as one item per line (commas also separate)."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 40})

    def prepare_value(self, value: object) -> object:
        if isinstance(value, list):
            return "\n".join(str(v) for v in value)
        return value

    def to_python(self, value: object) -> list[str]:
        if isinstance(value, list):
            return value
        text = str(value or "").replace(",", "\n")
        return [line.strip() for line in text.splitlines() if line.strip()]

    def has_changed(self, initial: object, data: object) -> bool:
        return self.to_python(initial) != self.to_python(data)
