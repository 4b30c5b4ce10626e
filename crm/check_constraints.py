"""A model's check constraints tested in Python when it is validated (`full_clean`).

Django tests each `CheckConstraint` of a model being validated with a query of its own
(`SELECT 1 WHERE <condition>`, inside a savepoint when a transaction is open: three statements
a constraint). Feedback has six, so every feedback form sent cost eighteen round trips before
its single INSERT. The conditions of this project are plain comparisons of a model's own
fields (ranges, choices, "set when that one is"), which Python evaluates exactly, with SQL's
rules for NULL: a comparison with NULL is unknown, and a constraint whose condition is unknown
holds (as in the database, and as Django's query treats it).

Nothing else changes: the database still holds every rule (the constraints themselves), a
violation gives the same message and code, and a condition this module does not evaluate
exactly (an expression other than a field or F(), a lookup it does not know, values of types
that SQL could compare differently, such as text ordered by a collation) goes to Django's query
as before.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS
from django.db.models import CheckConstraint, F, Model, Q, Value
from django.db.models.constraints import BaseConstraint


class Unsupported(Exception):
    """The condition needs the database to be evaluated exactly."""


# A field's value, or the marker of a value only the database can compute (an expression).
_EXPRESSION = object()

_ORDERED: dict[str, Callable[[Any, Any], Any]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
_LOOKUPS = {"exact", "in", "isnull", *_ORDERED}


def _kind(value: object) -> str:
    """The family of SQL types a value compares within."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | Decimal):
        return "number"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "text"
    if isinstance(value, datetime):
        return "datetime" if value.tzinfo is None else "aware datetime"
    if isinstance(value, date):
        return "date"
    raise Unsupported


def _value(values: Mapping[str, object], name: str) -> object:
    if name not in values:  # an excluded field: Django's query says what that means
        raise Unsupported
    value = values[name]
    if value is _EXPRESSION:
        raise Unsupported
    return value


def _compare(lookup: str, left: object, right: object) -> bool | None:
    """`left <lookup> right` with SQL's NULL: None when either side is NULL."""
    if left is None or right is None:
        return None
    kind = _kind(left)
    if kind != _kind(right):
        raise Unsupported
    if lookup == "exact":
        return left == right
    if kind in {"text", "bool"}:  # text orders by the database's collation
        raise Unsupported
    return bool(_ORDERED[lookup](left, right))


def _leaf(key: str, rhs: object, values: Mapping[str, object]) -> bool | None:
    name, _, lookup = key.partition("__")
    lookup = lookup or "exact"
    if lookup not in _LOOKUPS:
        raise Unsupported
    left = _value(values, name)
    if lookup == "isnull":
        if not isinstance(rhs, bool):
            raise Unsupported
        return (left is None) == rhs
    if lookup == "exact" and rhs is None:  # Django reads `field=None` as `field__isnull=True`
        return left is None
    if lookup == "in":
        if isinstance(rhs, str | bytes) or not isinstance(rhs, Iterable):
            raise Unsupported
        choices = list(rhs)
        if not choices or any(choice is None or isinstance(choice, F) for choice in choices):
            raise Unsupported
        verdicts = [_compare("exact", left, choice) for choice in choices]
        if left is None:
            return None
        return any(verdicts)
    if isinstance(rhs, F):
        rhs = _value(values, rhs.name)
    elif hasattr(rhs, "resolve_expression"):
        raise Unsupported
    return _compare(lookup, left, rhs)


def evaluate(condition: Q, values: Mapping[str, object]) -> bool | None:
    """The truth of `condition` for a row holding `values` (by field name): True, False, or
    None for SQL's unknown. Raises Unsupported for what only the database can evaluate."""
    if condition.connector not in {Q.AND, Q.OR}:
        raise Unsupported
    verdicts: list[bool | None] = []
    for child in condition.children:
        if isinstance(child, Q):
            verdicts.append(evaluate(child, values))
        elif isinstance(child, tuple) and len(child) == 2 and isinstance(child[0], str):
            verdicts.append(_leaf(child[0], child[1], values))
        else:
            raise Unsupported
    result: bool | None
    if condition.connector == Q.AND:
        result = False if False in verdicts else (None if None in verdicts else True)
    else:
        result = True if True in verdicts else (None if None in verdicts else False)
    if condition.negated and result is not None:
        result = not result
    return result


def field_values(instance: Model, exclude: Iterable[str] | None) -> dict[str, object]:
    """The values Django's own check would compare: each concrete field not excluded (a foreign
    key by its id), and the primary key as `pk`."""
    # Django's own map of what its query compares (not in the type stubs).
    against = instance._get_field_expression_map(  # type: ignore[attr-defined]
        meta=instance._meta, exclude=exclude
    )
    return {
        name: value.value if isinstance(value, Value) else _EXPRESSION
        for name, value in against.items()
    }


class PythonCheck:
    """A model's `CheckConstraint`, validated in Python where that is exact (`evaluate`), by
    Django's query otherwise. Everything else is the constraint's own."""

    def __init__(self, constraint: CheckConstraint) -> None:
        self.constraint = constraint

    def __getattr__(self, name: str) -> Any:
        return getattr(self.constraint, name)

    def validate(
        self,
        model: type[Model],
        instance: Model,
        exclude: Iterable[str] | None = None,
        using: str = DEFAULT_DB_ALIAS,
    ) -> None:
        try:
            verdict = evaluate(Q(self.constraint.condition), field_values(instance, exclude))
        except Unsupported:
            cast(Any, self.constraint).validate(model, instance, exclude=exclude, using=using)
            return
        if verdict is False:
            raise ValidationError(
                self.constraint.get_violation_error_message(),
                code=self.constraint.violation_error_code,
            )


def checked_in_python(
    constraints: list[tuple[type[Model], Sequence[BaseConstraint]]],
) -> list[tuple[type[Model], Sequence[BaseConstraint]]]:
    """`Model.get_constraints()` with each check constraint validated in Python."""
    return [
        (
            model,
            [
                cast(BaseConstraint, PythonCheck(constraint))
                if isinstance(constraint, CheckConstraint)
                else constraint
                for constraint in model_constraints
            ],
        )
        for model, model_constraints in constraints
    ]
