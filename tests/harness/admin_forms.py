"""What a browser posts back from a Django admin change form, for tests that edit through it."""

from __future__ import annotations


def change_form_data(response) -> dict[str, object]:
    """The change form's current values and its inlines' management forms and rows.

    A ticked checkbox posts "on" and an unticked one nothing; a line-list field posts its
    lines joined, as its textarea holds them; other lists (multiple choices) post each value.
    """
    data: dict[str, object] = {}

    def add(form) -> None:
        for bound in form:
            value = bound.value()
            if bound.field.widget.__class__.__name__ == "CheckboxInput":
                if value:
                    data[bound.html_name] = "on"
                continue
            if value is None:
                value = ""
            if isinstance(value, list) and bound.field.__class__.__name__ == "LineListField":
                value = "\n".join(value)
            data[bound.html_name] = value

    add(response.context["adminform"].form)
    for inline in response.context.get("inline_admin_formsets", []):
        formset = inline.formset
        for key, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{key}"] = value
        for form in formset.forms:
            add(form)
    return data
