"""Form helpers shared by every app's forms."""

from __future__ import annotations

from typing import Any, TypeVar

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet

_M = TypeVar("_M", bound=Model)


class StyledFormMixin:
    """Give every widget its Bootstrap class, so templates render fields uniformly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():  # type: ignore[attr-defined]
            widget = field.widget
            if isinstance(
                widget, forms.CheckboxInput | forms.CheckboxSelectMultiple | forms.RadioSelect
            ):
                css = "form-check-input"
            elif isinstance(widget, forms.Select | forms.SelectMultiple):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format="%Y-%m-%d", **kwargs)


def form_add_service_errors(form: forms.BaseForm, error: ValidationError) -> None:
    """Show a service's ValidationError next to the fields it names, the rest above the form."""
    if hasattr(error, "error_dict"):
        for name, messages in error.message_dict.items():
            form.add_error(name if name in form.fields else None, messages)
    else:
        form.add_error(None, error.messages)


MAX_ID = 2**63 - 1


def object_id(value: str | None) -> int | None:
    """A database id from a URL or form value, or None: digits only, within BIGINT range."""
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 19:
        return None
    number = int(value)
    return number if 0 < number <= MAX_ID else None


class _IdCheckMixin(forms.Field):
    """Refuse values that cannot be ids before they reach the database, where an out-of-range
    integer is an error rather than "no such row"."""

    def _check_id(self, value: object) -> None:
        if value in self.empty_values:
            return
        if isinstance(value, Model):
            return
        if object_id(str(value)) is None:
            raise ValidationError(
                self.error_messages["invalid_choice"],
                code="invalid_choice",
                params={"value": value},
            )


class IdChoiceField(_IdCheckMixin, forms.ModelChoiceField[_M]):
    def to_python(self, value: Any) -> _M | None:
        self._check_id(value)
        return super().to_python(value)


class IdMultipleChoiceField(_IdCheckMixin, forms.ModelMultipleChoiceField[_M]):
    # Django's private hook for the submitted ids, not in its type stubs.
    def _check_values(self, value: Any) -> QuerySet[_M]:
        for item in value if isinstance(value, list | tuple) else [value]:
            self._check_id(item)
        return super()._check_values(value)  # type: ignore[misc,no-any-return]


class RemoteSelect(forms.Select):
    """A select whose choices are loaded on demand from `url` (a JSON list the page searches
    as the user types, `static/js/app.js`): the page carries only the empty choice and the
    selected one, not every row the field accepts. The field still validates against its
    whole queryset."""

    def __init__(self, *, url: str, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs={**(attrs or {}), "data-choices-url": url})

    def optgroups(self, name: str, value: Any, attrs: dict[str, Any] | None = None) -> Any:
        field = getattr(self.choices, "field", None)
        ids = [pk for pk in (object_id(str(v)) for v in value) if pk is not None]
        choices: list[tuple[Any, str]] = [("", str(getattr(field, "empty_label", "") or ""))]
        if field is not None and ids:
            choices += [
                (obj.pk, field.label_from_instance(obj))
                for obj in field.queryset.filter(pk__in=ids)
            ]
        all_choices, self.choices = self.choices, choices
        try:
            return super().optgroups(name, value, attrs)
        finally:
            self.choices = all_choices
